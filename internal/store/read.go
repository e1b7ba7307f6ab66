package store

import (
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Contents is what a keystore or truststore holds, decoded.
type Contents struct {
	Type    Type
	Keys    []KeyEntry
	Trusted []TrustedEntry
}

// KeyEntry is a private key with its certificate chain (leaf first).
type KeyEntry struct {
	Alias string // empty for PKCS#12, whose key bags go-pkcs12 writes without a friendly name
	Key   crypto.PrivateKey
	Chain []*x509.Certificate
}

// TrustedEntry is a trusted certificate.
type TrustedEntry struct {
	Alias string
	Cert  *x509.Certificate
}

const jksMagic = 0xFEEDFEED

// DetectType tells JKS from PKCS#12 by the first bytes.
func DetectType(data []byte) (Type, error) {
	switch {
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic:
		return JKS, nil
	case len(data) > 0 && data[0] == 0x30: // DER SEQUENCE: a PFX
		return PKCS12, nil
	}
	return "", errors.New("neither a JKS (magic FEEDFEED) nor a PKCS#12 (DER) store")
}

// Decode reads a JKS or PKCS#12 store, checking its integrity with password.
func Decode(data []byte, password []byte) (*Contents, error) {
	t, err := DetectType(data)
	if err != nil {
		return nil, err
	}
	if t == JKS {
		return decodeJKS(data, password)
	}
	return decodePKCS12(data, password)
}

func decodeJKS(data, password []byte) (*Contents, error) {
	entries, err := decodeJKSEntries(data, password)
	if err != nil {
		return nil, err
	}
	c := &Contents{Type: JKS}
	for _, e := range entries {
		var certs []*x509.Certificate
		for i, der := range e.certs {
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("JKS entry %q: certificate %d: %w", e.alias, i+1, err)
			}
			certs = append(certs, cert)
		}
		if e.key == nil {
			c.Trusted = append(c.Trusted, TrustedEntry{Alias: e.alias, Cert: certs[0]})
			continue
		}
		key, err := x509.ParsePKCS8PrivateKey(e.key)
		if err != nil {
			return nil, fmt.Errorf("JKS entry %q: private key: %w", e.alias, err)
		}
		c.Keys = append(c.Keys, KeyEntry{Alias: e.alias, Key: key, Chain: certs})
	}
	return c, nil
}

func decodePKCS12(data, password []byte) (*Contents, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, string(password))
	if err == nil {
		return &Contents{Type: PKCS12, Keys: []KeyEntry{{Key: key, Chain: append([]*x509.Certificate{leaf}, cas...)}}}, nil
	}
	certs, terr := pkcs12.DecodeTrustStore(data, string(password))
	if terr != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(terr, pkcs12.ErrIncorrectPassword) {
			return nil, errors.New("PKCS#12: wrong password")
		}
		return nil, fmt.Errorf("PKCS#12: neither a keystore (%v) nor a truststore (%v)", err, terr)
	}
	c := &Contents{Type: PKCS12}
	for _, cert := range certs {
		c.Trusted = append(c.Trusted, TrustedEntry{Cert: cert})
	}
	return c, nil
}

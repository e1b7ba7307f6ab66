package store

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Type is a store format.
type Type string

const (
	JKS    Type = "jks"
	PKCS12 Type = "pkcs12"
)

// ParseType accepts the names operators use for the two formats.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "", "jks":
		return JKS, nil
	case "pkcs12", "p12", "pfx":
		return PKCS12, nil
	}
	return "", fmt.Errorf("unknown store type %q (want jks or pkcs12)", s)
}

// Profile selects the PKCS#12 encryption algorithms.
type Profile string

const (
	// Modern2023 (AES-256-CBC, PBKDF2, SHA-256 MAC) is read by Java 12+ and
	// OpenSSL 1.1.1+; the default.
	Modern2023 Profile = "modern2023"
	// LegacyDES (3DES, SHA-1 MAC) is read by Java 8 — Cassandra 3.11.
	LegacyDES Profile = "legacydes"
)

// ParseProfile accepts "" as the default.
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(s) {
	case "", "modern2023", "modern":
		return Modern2023, nil
	case "legacydes", "legacy":
		return LegacyDES, nil
	}
	return "", fmt.Errorf("unknown PKCS#12 profile %q (want modern2023 or legacydes)", s)
}

func (p Profile) encoder() *pkcs12.Encoder {
	if p == LegacyDES {
		return pkcs12.LegacyDES
	}
	return pkcs12.Modern2023
}

// DefaultAlias is cert-manager's alias for the private-key entry.
const DefaultAlias = "certificate"

// caAlias follows cert-manager's convention: ca, ca-1, ca-2, …
func caAlias(i int) string {
	if i == 0 {
		return "ca"
	}
	return fmt.Sprintf("ca-%d", i)
}

func encodeKeystore(m *pki.Material, t Type, p Profile, alias string, password []byte, now time.Time) ([]byte, error) {
	if t == PKCS12 {
		return p.encoder().Encode(m.Key, m.Leaf, m.Chain, string(password))
	}
	der, err := x509.MarshalPKCS8PrivateKey(m.Key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	certs := [][]byte{m.Leaf.Raw}
	for _, c := range m.Chain {
		certs = append(certs, c.Raw)
	}
	data, err := encodeJKS([]jksEntry{{alias: alias, key: der, certs: certs}}, password, now)
	if err != nil {
		return nil, fmt.Errorf("encode keystore: %w", err)
	}
	return data, nil
}

func encodeTruststore(cas []*x509.Certificate, t Type, p Profile, password []byte, now time.Time) ([]byte, error) {
	if t == PKCS12 {
		entries := make([]pkcs12.TrustStoreEntry, len(cas))
		for i, c := range cas {
			entries[i] = pkcs12.TrustStoreEntry{Cert: c, FriendlyName: caAlias(i)}
		}
		return p.encoder().EncodeTrustStoreEntries(entries, string(password))
	}
	entries := make([]jksEntry, len(cas))
	for i, c := range cas {
		entries[i] = jksEntry{alias: caAlias(i), certs: [][]byte{c.Raw}}
	}
	data, err := encodeJKS(entries, password, now)
	if err != nil {
		return nil, fmt.Errorf("encode truststore: %w", err)
	}
	return data, nil
}

// pemCerts concatenates certificates as PEM.
func pemCerts(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

func pemKey(m *pki.Material) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(m.Key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

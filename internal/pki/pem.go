package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// decodeBlocks splits data into PEM blocks and refuses anything that is not
// PEM: a truncated block or trailing garbage would otherwise be silently
// dropped by pem.Decode, and a half-written file would look valid.
func decodeBlocks(data []byte, name string) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if trailing := bytes.TrimSpace(rest); len(trailing) > 0 {
		if len(blocks) == 0 {
			return nil, refuse(ReasonMalformed, "%s: no PEM data found (is the file truncated or not PEM?)", name)
		}
		return nil, refuse(ReasonMalformed, "%s: %d bytes after PEM block %d are not valid PEM (truncated or corrupt block?)", name, len(trailing), len(blocks))
	}
	if len(blocks) == 0 {
		return nil, refuse(ReasonMalformed, "%s: no PEM data found", name)
	}
	return blocks, nil
}

// ParseCertificates parses every block of data as an X.509 certificate.
// Other PEM types are an error, since a key or CSR in a certificate file
// means the files were mixed up.
func ParseCertificates(data []byte, name string) ([]*x509.Certificate, error) {
	blocks, err := decodeBlocks(data, name)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, refuse(ReasonMalformed, "%s: PEM block %d is %q, expected CERTIFICATE", name, i+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, refuse(ReasonMalformed, "%s: PEM block %d: %w", name, i+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// ParsePrivateKey parses exactly one private key in PKCS#1, PKCS#8 or SEC1
// form. Encrypted keys are refused with a clear error: the agent has no
// passphrase for them and cert-manager never writes them.
func ParsePrivateKey(data []byte, name string) (crypto.Signer, error) {
	blocks, err := decodeBlocks(data, name)
	if err != nil {
		return nil, err
	}
	k := keyReader{name: name}
	for i, b := range blocks {
		if err := k.add(i+1, b); err != nil {
			return nil, err
		}
	}
	return k.result()
}

// ParseCredentialBundle parses one PEM file holding a private key and its
// certificate chain: Kubernetes' podCertificate projection
// (credentialBundlePath: a PKCS#8 key, then the chain) and cert-manager's
// CombinedPEM (tls-combined.pem). The key is read exactly as ParsePrivateKey
// reads tls.key (any of its forms, same refusals); the CERTIFICATE blocks,
// wherever the key sits among them, are the chain in file order: leaf first,
// then each issuer. Any other block is refused, as are no key, two keys and
// no certificate.
func ParseCredentialBundle(data []byte, name string) (crypto.Signer, []*x509.Certificate, error) {
	blocks, err := decodeBlocks(data, name)
	if err != nil {
		return nil, nil, err
	}
	k := keyReader{name: name}
	var certs []*x509.Certificate
	for i, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, refuse(ReasonMalformed, "%s: PEM block %d: %w", name, i+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PARAMETERS":
			if err := k.add(i+1, b); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, refuse(ReasonMalformed, "%s: PEM block %d is %q: a credential bundle holds one private key and CERTIFICATE blocks", name, i+1, b.Type)
		}
	}
	key, err := k.result()
	if err != nil {
		return nil, nil, err
	}
	if len(certs) == 0 {
		return nil, nil, refuse(ReasonMalformed, "%s: no certificate found: a credential bundle holds the private key and its certificate chain (leaf first)", name)
	}
	return key, certs, nil
}

// keyReader collects the one private key of a file, block by block.
type keyReader struct {
	name string
	key  crypto.Signer
}

// add reads PEM block number n (from 1).
func (k *keyReader) add(n int, b *pem.Block) error {
	if b.Type == "EC PARAMETERS" { // openssl ecparam -genkey writes one before the key
		return nil
	}
	if _, ok := b.Headers["Proc-Type"]; ok || b.Type == "ENCRYPTED PRIVATE KEY" {
		return refuse(ReasonUnsupportedKey, "%s: PEM block %d is an encrypted private key; provide it unencrypted (as cert-manager writes it)", k.name, n)
	}
	if k.key != nil {
		return refuse(ReasonMalformed, "%s: more than one private key (PEM block %d)", k.name, n)
	}
	key, err := parseKeyBlock(b)
	if err != nil {
		return &SourceError{Reason: ReasonOf(err), Err: fmt.Errorf("%s: PEM block %d: %w", k.name, n, err)}
	}
	k.key = key
	return nil
}

func (k *keyReader) result() (crypto.Signer, error) {
	if k.key == nil {
		return nil, refuse(ReasonMalformed, "%s: no private key found", k.name)
	}
	return k.key, nil
}

func parseKeyBlock(b *pem.Block) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, refuse(ReasonMalformed, "type %q is not a private key (want RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)", b.Type)
	}
	if err != nil {
		return nil, refuse(ReasonMalformed, "parse %s: %w", b.Type, err)
	}
	if err := checkKeyType(k); err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

// checkKeyType accepts the key types both Go and the JDK's TLS stack handle:
// RSA ≥ 2048 bits, ECDSA on P-256/P-384/P-521, and Ed25519.
func checkKeyType(k any) error {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return refuse(ReasonUnsupportedKey, "RSA key of %d bits is too weak (want at least 2048)", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return refuse(ReasonUnsupportedKey, "ECDSA curve %s is not supported (want P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
	default:
		return refuse(ReasonUnsupportedKey, "unsupported private key type %T (want RSA, ECDSA or Ed25519)", k)
	}
	return nil
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

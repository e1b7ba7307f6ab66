// Package selfsigned makes a private key and a self-signed client
// certificate — what managed Cassandra services (Azure Managed Instance for
// Apache Cassandra and the like) ask a team to upload: the service adds the
// certificate to every node's truststore and requires client certificates,
// and the client presents it with its key.
package selfsigned

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
)

// File names in the output directory: cert-manager's Secret layout, so the
// other commands (stores, cqlshrc, wait --cert/--key) take the directory as is.
const (
	KeyFile  = "tls.key"
	CertFile = "tls.crt"
)

// KeyType names a key algorithm and size.
type KeyType string

// The key types offered. RSA 2048 is the default because it is what the
// managed services document and what every client stack accepts.
const (
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
	P256    KeyType = "p256"
	P384    KeyType = "p384"
)

// KeyTypes lists the accepted key types, default first.
var KeyTypes = []KeyType{RSA2048, RSA3072, RSA4096, P256, P384}

// ParseKeyType accepts the names in KeyTypes, case-insensitively, and a few
// common spellings ("rsa-2048", "ecdsa-p256", "P-384"); "" is RSA2048.
func ParseKeyType(s string) (KeyType, error) {
	n := strings.NewReplacer("-", "", "_", "", "ecdsa", "", "secp256r1", "p256", "secp384r1", "p384", "prime256v1", "p256").Replace(strings.ToLower(strings.TrimSpace(s)))
	if n == "" {
		return RSA2048, nil
	}
	for _, k := range KeyTypes {
		if string(k) == n {
			return k, nil
		}
	}
	names := make([]string, len(KeyTypes))
	for i, k := range KeyTypes {
		names[i] = string(k)
	}
	return "", fmt.Errorf("key type %q: want one of %s", s, strings.Join(names, ", "))
}

// NewKey generates a key of type t from random.
func NewKey(t KeyType, random io.Reader) (crypto.Signer, error) {
	switch t {
	case RSA2048, "":
		return rsa.GenerateKey(random, 2048)
	case RSA3072:
		return rsa.GenerateKey(random, 3072)
	case RSA4096:
		return rsa.GenerateKey(random, 4096)
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	}
	return nil, fmt.Errorf("key type %q is not supported", t)
}

// Options shape the certificate.
type Options struct {
	// Subject is the distinguished name, in order (see ParseSubject); it is
	// both subject and issuer. At least one attribute is required.
	Subject pkix.RDNSequence
	KeyType KeyType
	// Days is the validity from NotBefore; at least 1.
	Days int
	// Now is the moment of creation; zero means time.Now(). NotBefore is set
	// Backdate earlier, so a client whose clock is a little ahead of the
	// server's is not refused as "not yet valid".
	Now      time.Time
	Backdate time.Duration
	// Random is the source of randomness; nil means crypto/rand.
	Random io.Reader
}

// DefaultBackdate is how far NotBefore lies before the moment of creation.
const DefaultBackdate = 5 * time.Minute

// Result is a generated key and certificate.
type Result struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// Generate makes a key and a self-signed certificate for TLS client
// authentication: key usage digitalSignature (plus keyEncipherment for RSA,
// which older servers look for), extended key usage clientAuth, basic
// constraints CA:FALSE, a random positive 128-bit serial, and a subject key
// identifier. It carries no SANs: a server identifies a client by its
// certificate, not by a name.
func Generate(o Options) (*Result, error) {
	if len(o.Subject) == 0 {
		return nil, errors.New("a subject is required (e.g. /CN=my-app/O=My Org)")
	}
	if o.Days < 1 {
		return nil, fmt.Errorf("validity of %d days: want at least 1", o.Days)
	}
	if o.Days > 3650*3 {
		return nil, fmt.Errorf("validity of %d days is beyond 30 years; pick a shorter one and rotate", o.Days)
	}
	random := o.Random
	if random == nil {
		random = rand.Reader
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Backdate < 0 {
		return nil, errors.New("backdate must not be negative")
	}
	rawSubject, err := asn1.Marshal(o.Subject)
	if err != nil {
		return nil, fmt.Errorf("encode subject: %w", err)
	}
	key, err := NewKey(o.KeyType, random)
	if err != nil {
		return nil, err
	}
	serial, err := Serial(random)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	notBefore := now.Add(-o.Backdate).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            rawSubject,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(o.Backdate).Add(time.Duration(o.Days) * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          keyID(spki),
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the new certificate: %w", err)
	}
	return &Result{Key: key, Cert: cert}, nil
}

// Serial returns a random positive serial of at most 128 bits (RFC 5280
// allows 20 octets; CA/Browser Forum practice is at least 64 random bits).
func Serial(random io.Reader) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(random, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// keyID is the SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1).
func keyID(spki []byte) []byte {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		sum := sha1.Sum(spki)
		return sum[:]
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:]
}

// KeyPEM is the key as PKCS#8 ("PRIVATE KEY"), the form Cassandra's PEM
// factory, the JDK, OpenSSL and Python read without options.
func (r *Result) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("encode key as PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// CertPEM is the certificate as PEM.
func (r *Result) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Cert.Raw})
}

// ErrExists is returned by Write when it would replace an existing file.
var ErrExists = errors.New("already exists")

// Write stores the key as dir/tls.key (mode 0600) and the certificate as
// dir/tls.crt (mode 0644), each atomically (temp file, fsync, rename). Unless
// force is set it refuses to replace either file: a key that was uploaded to
// a service is not thrown away by a second run. The key is written first; a
// crash between the two renames leaves a new key beside the old certificate,
// which every consumer refuses as a mismatch rather than using silently.
func Write(dir string, r *Result, force bool) (keyPath, certPath string, err error) {
	keyPath, certPath = filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	if !force {
		for _, p := range []string{keyPath, certPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", fmt.Errorf("%s: %w; refusing to overwrite it (use --force to replace the key and certificate)", p, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	keyPEM, err := r.KeyPEM()
	if err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(certPath, r.CertPEM(), 0o644); err != nil {
		return "", "", err
	}
	return keyPath, certPath, nil
}

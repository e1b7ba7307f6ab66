// Package pkitest makes CAs and leaf certificates for tests, benchmarks and
// the demo, and writes them in cert-manager's Secret layout.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// KeyType selects the key algorithm.
type KeyType string

const (
	RSA2048 KeyType = "rsa2048"
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	Ed25519 KeyType = "ed25519"
)

// NewKey generates a key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "", P256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// Cert is a certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options shape a certificate. Zero values give a one-day certificate valid
// from an hour ago, with a P-256 key.
type Options struct {
	CN        string
	KeyType   KeyType
	NotBefore time.Time
	NotAfter  time.Time
	DNSNames  []string
	IPs       []net.IP
	URIs      []*url.URL // e.g. a SPIFFE ID, spiffe://cluster.local/ns/apps/sa/reaper
	IsCA      bool
}

// New issues a certificate signed by parent (self-signed when parent is nil).
func New(parent *Cert, o Options) (*Cert, error) {
	key, err := NewKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(25 * time.Hour)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: o.CN, Organization: []string{"cassandra-tls-agent test"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		URIs:         o.URIs,
	}
	if o.IsCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if _, isRSA := key.(*rsa.PrivateKey); isRSA {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, Key: key}, nil
}

// CA makes a self-signed CA.
func CA(cn string) (*Cert, error) {
	return New(nil, Options{CN: cn, IsCA: true, NotAfter: time.Now().Add(24 * 365 * time.Hour)})
}

// LoopbackIPs is the IP SAN every test leaf carries.
func LoopbackIPs() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1)} }

// Leaf makes a server+client leaf for 127.0.0.1 and localhost.
func Leaf(ca *Cert, cn string, kt KeyType) (*Cert, error) {
	return New(ca, Options{CN: cn, KeyType: kt, DNSNames: []string{"localhost", cn}, IPs: LoopbackIPs()})
}

// CertPEM encodes certificates as PEM.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteDir writes dir/tls.crt (leaf then chain), dir/tls.key and dir/ca.crt
// the way cert-manager lays out a Secret.
func WriteDir(dir string, leaf *Cert, chain []*x509.Certificate, cas ...*x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"tls.crt": CertPEM(append([]*x509.Certificate{leaf.Cert}, chain...)...),
		"tls.key": KeyPEM(leaf.Key),
		"ca.crt":  CertPEM(cas...),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// ServeTCP listens on a loopback port from the kernel and runs handle, in
// its own goroutine, for every connection; handle owns (and closes) the
// connection. The listener closes when the test ends. It returns host:port.
// Test peers that misbehave below TLS (silent, garbage, huge frames) use it.
func ServeTCP(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// ServeSilent listens on a loopback port from the kernel, accepts every
// connection and never writes to or closes one until the test ends: a peer
// that hangs a client's handshake or query. It returns host:port.
func ServeSilent(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// ServeTLS listens on a loopback port with cfg and runs handle for every
// connection (after which it is closed); a nil handle just completes the
// handshake. The listener closes when the test ends. It returns host:port.
func ServeTLS(tb testing.TB, cfg *tls.Config, handle func(*tls.Conn)) string {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	if handle == nil {
		handle = func(c *tls.Conn) { c.Handshake() }
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *tls.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				handle(c)
			}(c.(*tls.Conn))
		}
	}()
	return ln.Addr().String()
}

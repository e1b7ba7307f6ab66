package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func TestParsePrivateKeyFormats(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edKey, _ := pkitest.NewKey(pkitest.Ed25519)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"PKCS#1 RSA", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{"PKCS#8 RSA", pkitest.KeyPEM(rsaKey), ""},
		{"SEC1 P-384", enc("EC PRIVATE KEY", ecDER), ""},
		{"SEC1 with EC PARAMETERS", append(enc("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), enc("EC PRIVATE KEY", ecDER)...), ""},
		{"PKCS#8 P-384", pkitest.KeyPEM(ecKey), ""},
		{"PKCS#8 Ed25519", pkitest.KeyPEM(edKey), ""},
		{"encrypted PKCS#8", enc("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "encrypted private key"},
		{"legacy encrypted", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}), "encrypted private key"},
		{"certificate instead of key", enc("CERTIFICATE", []byte{1}), "is not a private key"},
		{"two keys", append(pkitest.KeyPEM(ecKey), pkitest.KeyPEM(ecKey)...), "more than one private key"},
		{"garbage", []byte("hello world"), "no PEM data"},
		{"truncated", pkitest.KeyPEM(ecKey)[:100], "no PEM data"},
		{"weak RSA", pkitest.KeyPEM(small), "too weak"},
		{"P-224", enc("EC PRIVATE KEY", p224DER), "not supported"},
		{"corrupt DER", enc("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), "parse PRIVATE KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := pki.ParsePrivateKey(tc.data, "tls.key")
			if tc.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "tls.key: ") {
				t.Fatalf("error = %v, want one naming tls.key and containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadValidatesChainAndDedupesCAs(t *testing.T) {
	root, _ := pkitest.CA("root")
	inter, _ := pkitest.New(root, pkitest.Options{CN: "intermediate", IsCA: true})
	leaf, _ := pkitest.Leaf(inter, "node1", pkitest.P256)
	other, _ := pkitest.CA("other")

	dir := t.TempDir()
	if err := pkitest.WriteDir(dir, leaf, []*x509.Certificate{inter.Cert}, root.Cert, root.Cert); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	os.WriteFile(bundle, pkitest.CertPEM(other.Cert, root.Cert), 0o600)

	m, err := pki.Load(pki.Source{Dir: dir, TrustBundles: []string{bundle}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Chain) != 1 || !m.Chain[0].Equal(inter.Cert) {
		t.Errorf("chain = %d certs, want the intermediate", len(m.Chain))
	}
	if len(m.CAs) != 2 || !m.CAs[0].Equal(root.Cert) || !m.CAs[1].Equal(other.Cert) {
		t.Errorf("CAs = %d, want root then other (deduplicated, in order)", len(m.CAs))
	}

	// The leaf is valid for a day; a day later it must be refused.
	if _, err := pki.Load(pki.Source{Dir: dir}, time.Now().Add(48*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("expired leaf: err = %v", err)
	}
	if _, err := pki.Load(pki.Source{Dir: dir}, time.Now().Add(-48*time.Hour)); err == nil || !strings.Contains(err.Error(), "not valid until") {
		t.Errorf("future leaf: err = %v", err)
	}
}

// An ACME issuer leaves ca.crt empty: trust then comes from the bundles.
func TestEmptyCAFileUsesBundles(t *testing.T) {
	root, _ := pkitest.CA("root")
	leaf, _ := pkitest.Leaf(root, "node1", pkitest.P256)
	dir := t.TempDir()
	pkitest.WriteDir(dir, leaf, nil)
	bundle := filepath.Join(dir, "bundle.pem")
	os.WriteFile(bundle, pkitest.CertPEM(root.Cert), 0o600)
	if _, err := pki.Load(pki.Source{Dir: dir}, time.Now()); err == nil || !strings.Contains(err.Error(), "no trusted CA") {
		t.Fatalf("empty ca.crt and no bundle: err = %v", err)
	}
	if m, err := pki.Load(pki.Source{Dir: dir, TrustBundles: []string{bundle}}, time.Now()); err != nil || len(m.CAs) != 1 {
		t.Fatalf("empty ca.crt with a bundle: %v", err)
	}
}

func TestFingerprintMatchesKeytoolForm(t *testing.T) {
	ca, _ := pkitest.CA("x")
	fp := pki.Fingerprint(ca.Cert)
	if len(fp) != 32*3-1 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Fatalf("fingerprint %q is not 32 colon-separated uppercase hex pairs", fp)
	}
}

package store_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

func material(tb testing.TB, nCAs int) *pki.Material {
	tb.Helper()
	root, err := pkitest.CA("root")
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := pkitest.Leaf(root, "node1", pkitest.P256)
	if err != nil {
		tb.Fatal(err)
	}
	cas := []*x509.Certificate{root.Cert}
	for i := 1; i < nCAs; i++ {
		// Self-signed certificates are cheap to make and as large as real CAs.
		ca, err := pkitest.New(nil, pkitest.Options{CN: "ca", IsCA: true})
		if err != nil {
			tb.Fatal(err)
		}
		cas = append(cas, ca.Cert)
	}
	return &pki.Material{Key: leaf.Key, Leaf: leaf.Cert, CAs: cas}
}

func TestPublishRoundTripAndSkip(t *testing.T) {
	m := material(t, 12)
	for _, typ := range []store.Type{store.JKS, store.PKCS12} {
		t.Run(string(typ), func(t *testing.T) {
			dir := t.TempDir()
			spec := store.Spec{
				Keystore: filepath.Join(dir, "ks"), KeystoreType: typ,
				Truststore: filepath.Join(dir, "ts"), TruststoreType: typ,
				Password: []byte("pw123456"), Alias: "node",
			}
			res, err := store.Publish(m, spec, time.Now())
			if err != nil || len(res.Written) != 2 {
				t.Fatalf("first publish: %v %+v", err, res)
			}
			// More than ten CAs: JKS sorts aliases as strings (ca-10 before
			// ca-2); the comparison must still see the store as current.
			res, err = store.Publish(m, spec, time.Now())
			if err != nil || res.Changed() || len(res.Unchanged) != 2 {
				t.Fatalf("second publish rewrote: %v %+v", err, res)
			}
			data, _ := os.ReadFile(spec.Truststore)
			c, err := store.Decode(data, spec.Password)
			if err != nil || len(c.Trusted) != 12 {
				t.Fatalf("truststore decode: %v, %d entries", err, len(c.Trusted))
			}
			if _, err := store.Decode(data, []byte("wrong")); err == nil {
				t.Fatal("decode with a wrong password succeeded")
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec store.Spec
		ok   bool
	}{
		{"no outputs", store.Spec{}, false},
		{"store without password", store.Spec{Keystore: "k"}, false},
		{"pem only needs no password", store.Spec{PEMDir: "d"}, true},
		{"bad mode", store.Spec{PEMDir: "d", Mode: os.ModeDir | 0o700}, false},
		{"ok", store.Spec{Keystore: "k", Password: []byte("x")}, true},
	}
	for _, tc := range tests {
		if err := tc.spec.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// BenchmarkPublishPair builds and writes one JKS keystore + truststore pair,
// the unit of work the manual openssl+keytool pipeline does.
func BenchmarkPublishPair(b *testing.B) {
	benchPublish(b, material(b, 1), store.JKS)
}

func BenchmarkPublishPairPKCS12(b *testing.B) {
	benchPublish(b, material(b, 1), store.PKCS12)
}

// BenchmarkTruststore1000CAs writes a truststore of 1,000 CAs, the size of a
// large trust-manager bundle.
func BenchmarkTruststore1000CAs(b *testing.B) {
	m := material(b, 1000)
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spec := store.Spec{Truststore: filepath.Join(dir, "ts"), TruststoreType: store.JKS, Password: []byte("changeit")}
		os.Remove(spec.Truststore)
		if _, err := store.Publish(m, spec, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishUnchanged is the sidecar's common case: nothing changed,
// so the stores are decoded, compared and left alone.
func BenchmarkPublishUnchanged(b *testing.B) {
	m := material(b, 1)
	dir := b.TempDir()
	spec := store.Spec{Keystore: filepath.Join(dir, "ks"), Truststore: filepath.Join(dir, "ts"), Password: []byte("changeit")}
	if _, err := store.Publish(m, spec, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := store.Publish(m, spec, time.Now()); err != nil || res.Changed() {
			b.Fatal(err, res)
		}
	}
}

func benchPublish(b *testing.B, m *pki.Material, typ store.Type) {
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spec := store.Spec{
			Keystore: filepath.Join(dir, "ks"), KeystoreType: typ,
			Truststore: filepath.Join(dir, "ts"), TruststoreType: typ,
			Password: []byte("changeit"),
		}
		os.Remove(spec.Keystore)
		os.Remove(spec.Truststore)
		if _, err := store.Publish(m, spec, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

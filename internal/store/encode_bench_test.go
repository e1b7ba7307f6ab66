package store

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// benchMaterial is a P-256 leaf under an intermediate, trusting the root and
// nCAs-1 more CAs.
func benchMaterial(b *testing.B, nCAs int) *pki.Material {
	b.Helper()
	root, err := pkitest.CA("root")
	if err != nil {
		b.Fatal(err)
	}
	inter, err := pkitest.New(root, pkitest.Options{CN: "inter", IsCA: true})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := pkitest.Leaf(inter, "node1", pkitest.P256)
	if err != nil {
		b.Fatal(err)
	}
	cas := []*x509.Certificate{root.Cert}
	for i := 1; i < nCAs; i++ {
		ca, err := pkitest.New(nil, pkitest.Options{CN: "ca", IsCA: true})
		if err != nil {
			b.Fatal(err)
		}
		cas = append(cas, ca.Cert)
	}
	return &pki.Material{Key: leaf.Key, Leaf: leaf.Cert, Chain: []*x509.Certificate{inter.Cert}, CAs: cas}
}

// The encoders alone, in memory: what a rebuild costs before the atomic write.
func BenchmarkEncodeKeystore(b *testing.B) {
	m := benchMaterial(b, 1)
	for _, tc := range []struct {
		name string
		t    Type
		p    Profile
	}{{"JKS", JKS, ""}, {"PKCS12-Modern2023", PKCS12, Modern2023}, {"PKCS12-LegacyDES", PKCS12, LegacyDES}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := encodeKeystore(m, tc.t, tc.p, DefaultAlias, []byte("changeit"), time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeTruststore(b *testing.B) {
	for _, n := range []int{1, 1000} {
		m := benchMaterial(b, n)
		for _, tc := range []struct {
			name string
			t    Type
			p    Profile
		}{{"JKS", JKS, ""}, {"PKCS12-Modern2023", PKCS12, Modern2023}} {
			b.Run(tc.name+"-"+map[int]string{1: "1CA", 1000: "1000CAs"}[n], func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := encodeTruststore(m.CAs, tc.t, tc.p, []byte("changeit"), time.Now()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

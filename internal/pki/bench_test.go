package pki_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// BenchmarkLoad reads and validates a cert-manager source directory (key
// match, chain order, chain to a trusted CA, validity), with and without a
// 1,000-CA trust bundle.
func BenchmarkLoad(b *testing.B) {
	for _, kt := range []pkitest.KeyType{pkitest.P256, pkitest.RSA2048} {
		for _, nCAs := range []int{0, 1000} {
			b.Run(fmt.Sprintf("%s-bundle%d", kt, nCAs), func(b *testing.B) {
				dir := b.TempDir()
				root, _ := pkitest.CA("root")
				inter, _ := pkitest.New(root, pkitest.Options{CN: "inter", IsCA: true})
				leaf, err := pkitest.Leaf(inter, "node1", kt)
				if err != nil {
					b.Fatal(err)
				}
				if err := pkitest.WriteDir(dir, leaf, []*x509.Certificate{inter.Cert}, root.Cert); err != nil {
					b.Fatal(err)
				}
				src := pki.Source{Dir: dir}
				if nCAs > 0 {
					var many []*x509.Certificate
					for i := 0; i < nCAs; i++ {
						ca, _ := pkitest.New(nil, pkitest.Options{CN: "bundle", IsCA: true})
						many = append(many, ca.Cert)
					}
					bundle := filepath.Join(b.TempDir(), "bundle.pem")
					os.WriteFile(bundle, pkitest.CertPEM(many...), 0o600)
					src.TrustBundles = []string{bundle}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := pki.Load(src, time.Now()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

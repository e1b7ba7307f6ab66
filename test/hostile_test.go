package test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// TestHostileInputsLeaveOutputsUntouched builds good stores, then feeds the
// stores command one broken source after another. Each must fail with a
// clear error naming the cause, and every existing output must stay byte for
// byte (and mtime for mtime) what it was.
func TestHostileInputsLeaveOutputsUntouched(t *testing.T) {
	f := newFixture(t, pkitest.P256)
	good := func(dir string) { f.writeSource(t, dir) }
	otherLeaf, _ := pkitest.Leaf(f.inter, "impostor", pkitest.P256)
	strangerCA, _ := pkitest.CA("stranger")
	expired, _ := pkitest.New(f.inter, pkitest.Options{CN: "old", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	future, _ := pkitest.New(f.inter, pkitest.Options{CN: "future", NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour)})
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)
	certPEM := pkitest.CertPEM(f.leaf.Cert, f.inter.Cert)
	keyPEM := pkitest.KeyPEM(f.leaf.Key)

	set := func(name string, data []byte) func(dir string) {
		return func(dir string) { writeFile(t, filepath.Join(dir, name), data) }
	}
	cases := []struct {
		name    string
		mutate  func(dir string)
		wantErr string
	}{
		{"truncated tls.crt", set("tls.crt", certPEM[:len(certPEM)/2]), "truncated"},
		{"garbage tls.crt", set("tls.crt", []byte("this is not a certificate\n")), "no PEM data found"},
		{"trailing garbage after the chain", set("tls.crt", append(append([]byte{}, certPEM...), "junk"...)), "not valid PEM"},
		{"key does not match certificate", set("tls.key", pkitest.KeyPEM(otherLeaf.Key)), "does not match the leaf certificate"},
		{"expired leaf", func(dir string) {
			writeFile(t, filepath.Join(dir, "tls.crt"), pkitest.CertPEM(expired.Cert, f.inter.Cert))
			writeFile(t, filepath.Join(dir, "tls.key"), pkitest.KeyPEM(expired.Key))
		}, "expired at"},
		{"leaf not yet valid", func(dir string) {
			writeFile(t, filepath.Join(dir, "tls.crt"), pkitest.CertPEM(future.Cert, f.inter.Cert))
			writeFile(t, filepath.Join(dir, "tls.key"), pkitest.KeyPEM(future.Key))
		}, "not valid until"},
		{"unknown CA", set("ca.crt", pkitest.CertPEM(strangerCA.Cert)), "does not chain to any of the 1 trusted CAs"},
		{"encrypted key", set("tls.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}})), "encrypted private key"},
		{"empty tls.key", set("tls.key", nil), "file is empty"},
		{"empty tls.crt (whitespace only)", set("tls.crt", []byte("\n\n  \n")), "file is empty"},
		{"missing tls.key", func(dir string) { os.Remove(filepath.Join(dir, "tls.key")) }, "tls.key: file does not exist"},
		{"directory instead of tls.crt", func(dir string) {
			os.Remove(filepath.Join(dir, "tls.crt"))
			os.Mkdir(filepath.Join(dir, "tls.crt"), 0o755)
		}, "is a directory"},
		{"50 MB tls.crt", set("tls.crt", bytes.Repeat([]byte("A"), 50<<20)), "larger than the 16777216-byte limit"},
		{"wrong PEM type in tls.crt", set("tls.crt", keyPEM), `PEM block 1 is \"PRIVATE KEY\", expected CERTIFICATE`},
		{"chain in the wrong order", set("tls.crt", pkitest.CertPEM(f.inter.Cert, f.leaf.Cert)), "chain is out of order"},
		{"intermediates in the wrong order", set("tls.crt", pkitest.CertPEM(f.leaf.Cert, f.root.Cert, f.inter.Cert)), "did not issue certificate 1"},
		{"unsupported key type (P-224)", set("tls.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p224DER})), "not supported"},
		{"no trusted CA at all", func(dir string) { os.Remove(filepath.Join(dir, "ca.crt")) }, "no trusted CA"},
		{"CSR instead of a certificate", set("tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}})), "expected CERTIFICATE"},
		{"corrupt certificate DER", set("tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x82, 0, 1, 0}})), "PEM block 1"},
		{"tls.crt is a dangling symlink", func(dir string) {
			os.Remove(filepath.Join(dir, "tls.crt"))
			os.Symlink(filepath.Join(dir, "..data", "tls.crt"), filepath.Join(dir, "tls.crt"))
		}, "tls.crt: file does not exist"},
	}

	root := t.TempDir()
	out := filepath.Join(root, "out")
	pw := filepath.Join(root, "pw")
	writeFile(t, pw, []byte("changeit\n"))
	args := func(src string, extra ...string) []string {
		return append([]string{"stores", "--source", src, "--password-file", pw,
			"--keystore", filepath.Join(out, "keystore.jks"), "--truststore", filepath.Join(out, "truststore.jks"),
			"--pem-dir", filepath.Join(out, "pem")}, extra...)
	}
	goodSrc := filepath.Join(root, "good")
	good(goodSrc)
	if r := agent(t, nil, args(goodSrc)...); r.code != 0 {
		t.Fatalf("good build failed: %s", r.stderr)
	}
	before := snapshot(t, out)
	if n := len(visible(t, out)); n != 6 {
		t.Fatalf("expected 6 outputs, got %d", n)
	}

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(root, "case", string(rune('a'+i)))
			good(src)
			tc.mutate(src)
			r := agent(t, nil, args(src)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("error does not say %q:\n%s", tc.wantErr, r.stderr)
			}
			if strings.Contains(r.stderr, "changeit") {
				t.Errorf("the password leaked into the log")
			}
			assertSame(t, before, snapshot(t, out))
		})
	}

	// Bad trust bundles and bad passwords fail the same way.
	extra := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"missing trust bundle", []string{"--trust-bundle", filepath.Join(root, "nope.pem")}, 1, "trust bundle: " + filepath.Join(root, "nope.pem") + ": file does not exist"},
		{"garbage trust bundle", []string{"--trust-bundle", pw}, 1, "trust bundle: " + pw + ": no PEM data found"},
		{"empty password file", []string{"--password-file", filepath.Join(root, "empty")}, 2, "empty: file is empty"},
		{"unknown store type", []string{"--store-type", "bks"}, 2, `unknown store type "bks"`},
	}
	writeFile(t, filepath.Join(root, "empty"), []byte("\n"))
	for _, tc := range extra {
		t.Run(tc.name, func(t *testing.T) {
			r := agent(t, nil, args(goodSrc, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("exit %d (want %d), stderr does not say %q:\n%s", r.code, tc.code, tc.wantErr, r.stderr)
			}
			assertSame(t, before, snapshot(t, out))
		})
	}

	// Duplicate CAs are not an error: they collapse to one truststore entry.
	dup := filepath.Join(root, "dup")
	good(dup)
	writeFile(t, filepath.Join(dup, "ca.crt"), pkitest.CertPEM(f.root.Cert, f.root.Cert, f.root.Cert))
	if r := agent(t, nil, args(dup, "--trust-bundle", filepath.Join(dup, "ca.crt"))...); r.code != 0 || !strings.Contains(r.stderr, `"trusted_cas":1`) {
		t.Errorf("duplicate CAs: exit %d, want 1 trusted CA: %s", r.code, r.stderr)
	}
}

func assertSame(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("outputs changed: %d files before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s was modified", p)
		}
	}
}

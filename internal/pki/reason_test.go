package pki_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// TestLoadReasons: every refusal carries its reason as a value (the
// source_errors_total label), never derived from the message.
func TestLoadReasons(t *testing.T) {
	must := func(c *pkitest.Cert, err error) *pkitest.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := must(pkitest.CA("ca"))
	other := must(pkitest.CA("other"))
	leaf := must(pkitest.Leaf(ca, "node1", pkitest.P256))
	stranger := must(pkitest.Leaf(other, "node1", pkitest.P256))
	inter := must(pkitest.New(ca, pkitest.Options{CN: "inter", IsCA: true}))
	viaInter := must(pkitest.Leaf(inter, "node1", pkitest.P256))
	expired := must(pkitest.New(ca, pkitest.Options{CN: "old", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-48 * time.Hour)}))

	type files map[string][]byte
	good := func() files {
		return files{"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}
	}
	with := func(name string, data []byte) files {
		f := good()
		if data == nil {
			delete(f, name)
		} else {
			f[name] = data
		}
		return f
	}
	tests := []struct {
		name  string
		files files
		want  pki.Reason
	}{
		{"missing key", with("tls.key", nil), pki.ReasonMissing},
		{"empty certificate", with("tls.crt", []byte("\n \n")), pki.ReasonMissing},
		{"not PEM", with("tls.crt", []byte("hello")), pki.ReasonMalformed},
		{"key mismatch", with("tls.key", pkitest.KeyPEM(stranger.Key)), pki.ReasonKeyMismatch},
		{"untrusted", files{"tls.crt": pkitest.CertPEM(stranger.Cert), "tls.key": pkitest.KeyPEM(stranger.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}, pki.ReasonUntrusted},
		{"chain out of order", files{"tls.crt": pkitest.CertPEM(inter.Cert, viaInter.Cert), "tls.key": pkitest.KeyPEM(viaInter.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}, pki.ReasonChainOrder},
		{"expired", files{"tls.crt": pkitest.CertPEM(expired.Cert), "tls.key": pkitest.KeyPEM(expired.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}, pki.ReasonExpired},
		{"key in the certificate file", with("tls.crt", pkitest.KeyPEM(leaf.Key)), pki.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, d := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), d, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := pki.Load(pki.Source{Dir: dir}, time.Now())
			if got := pki.ReasonOf(err); got != tc.want {
				t.Errorf("reason = %q, want %q (error: %v)", got, tc.want, err)
			}
		})
	}

	t.Run("a directory where the key should be is unreadable, not malformed", func(t *testing.T) {
		dir := t.TempDir()
		for n, d := range with("tls.key", nil) {
			os.WriteFile(filepath.Join(dir, n), d, 0o600)
		}
		os.Mkdir(filepath.Join(dir, "tls.key"), 0o755)
		_, err := pki.Load(pki.Source{Dir: dir}, time.Now())
		if got := pki.ReasonOf(err); got != pki.ReasonUnreadable {
			t.Errorf("reason = %q (%v)", got, err)
		}
	})
	t.Run("a FIFO is refused at once, not waited on", func(t *testing.T) {
		dir := t.TempDir()
		for n, d := range with("tls.crt", nil) {
			os.WriteFile(filepath.Join(dir, n), d, 0o600)
		}
		if err := syscall.Mkfifo(filepath.Join(dir, "tls.crt"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pki.Load(pki.Source{Dir: dir}, time.Now())
		if got := pki.ReasonOf(err); got != pki.ReasonUnreadable {
			t.Errorf("reason = %q (%v)", got, err)
		}
	})
	t.Run("reasons survive wrapping", func(t *testing.T) {
		err := &pki.SourceError{Reason: pki.ReasonPassword, Err: errors.New("x")}
		if pki.ReasonOf(errors.Join(errors.New("store a"), err)) != pki.ReasonPassword || pki.ReasonOf(errors.New("plain")) != pki.ReasonOther {
			t.Error("ReasonOf does not follow the error chain")
		}
	})
}

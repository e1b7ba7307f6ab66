package cli

import (
	"crypto/ecdsa"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

func TestCertsSelfSigned(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"no subcommand", nil, []string{"certs"}, ExitUsage, []string{"self-signed"}},
		{"unknown subcommand", nil, []string{"certs", "ca"}, ExitUsage, []string{`unknown subcommand "ca"`}},
		{"help", nil, []string{"certs", "self-signed", "--help"}, ExitOK, []string{"upload tls.crt", "[CASSANDRA_TLS_AGENT_SUBJECT]", "rsa2048"}},
		{"no out", nil, []string{"certs", "self-signed", "--cn", "x"}, ExitUsage, []string{"--out is required"}},
		{"no subject", nil, []string{"certs", "self-signed", "--out", dir + "/a"}, ExitUsage, []string{"a subject is required"}},
		{"both subject forms", nil, []string{"certs", "self-signed", "--out", dir + "/a", "--subject", "/CN=x", "--cn", "y"}, ExitUsage, []string{"not both"}},
		{"bad subject", nil, []string{"certs", "self-signed", "--out", dir + "/a", "--subject", "CN=x"}, ExitUsage, []string{"must start with /"}},
		{"bad key type", nil, []string{"certs", "self-signed", "--out", dir + "/a", "--cn", "x", "--key-type", "rsa1024"}, ExitUsage, []string{"want one of"}},
		{"bad days", nil, []string{"certs", "self-signed", "--out", dir + "/a", "--cn", "x", "--days", "0"}, ExitUsage, []string{"want at least 1"}},
		{"stray argument", nil, []string{"certs", "self-signed", "--out", dir + "/a", "--cn", "x", "extra"}, ExitUsage, []string{`unexpected argument "extra"`}},
		{"ok from flags", nil, []string{"certs", "self-signed", "--out", dir + "/flags", "--subject", "/CN=orders/O=Example/C=DE", "--days", "30"},
			ExitOK, []string{"/CN=orders/O=Example/C=DE", "SHA-256:    ", "(30 days)", "RSA 2048, PKCS#8, mode 0600"}},
		{"refuses to overwrite", nil, []string{"certs", "self-signed", "--out", dir + "/flags", "--cn", "again"}, ExitFailed, []string{"already exists", "--force"}},
		{"ok from env", map[string]string{"CASSANDRA_TLS_AGENT_OUT": dir + "/env", "CASSANDRA_TLS_AGENT_CN": "from-env",
			"CASSANDRA_TLS_AGENT_COUNTRY": "us", "CASSANDRA_TLS_AGENT_KEY_TYPE": "p256"}, []string{"certs", "self-signed"}, ExitOK, []string{"/C=US/CN=from-env", "ECDSA P-256"}},
		{"force from env", map[string]string{"CASSANDRA_TLS_AGENT_FORCE": "true"}, []string{"certs", "self-signed", "--out", dir + "/flags", "--cn", "replaced", "--key-type", "p384"}, ExitOK, []string{"/CN=replaced", "ECDSA P-384"}},
	}
	printed := map[string]string{}
	for _, tc := range tests {
		code, out, errs := runWith(tc.env, tc.args...)
		printed[tc.name] = out
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out+errs, w) {
				t.Errorf("%s: output lacks %q:\n%s%s", tc.name, w, out, errs)
			}
		}
	}
	// What the commands wrote is a usable client key pair.
	for sub, run := range map[string]struct{ cn, test string }{"env": {"from-env", "ok from env"}, "flags": {"replaced", "force from env"}} {
		cn := run.cn
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, sub, "tls.crt"), filepath.Join(dir, sub, "tls.key"))
		if err != nil {
			t.Fatalf("%s: %v", sub, err)
		}
		if pair.Leaf.Subject.CommonName != cn {
			t.Errorf("%s: CN %q, want %q", sub, pair.Leaf.Subject.CommonName, cn)
		}
		if _, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok {
			t.Errorf("%s: key %T, want ECDSA", sub, pair.PrivateKey)
		}
		if st, _ := os.Stat(filepath.Join(dir, sub, "tls.key")); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v", sub, st.Mode().Perm())
		}
		// The fingerprint and expiry printed are the certificate's.
		if out := printed[run.test]; !strings.Contains(out, pki.Fingerprint(pair.Leaf)) || !strings.Contains(out, pair.Leaf.NotAfter.UTC().Format(time.RFC3339)) {
			t.Errorf("%s: printed fingerprint or notAfter is not %s / %s:\n%s", sub, pki.Fingerprint(pair.Leaf), pair.Leaf.NotAfter, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("a failed run created its output directory")
	}
}

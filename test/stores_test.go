package test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// pkiFixture is a root CA, an intermediate and a leaf issued by it.
type pkiFixture struct {
	root, inter, leaf *pkitest.Cert
}

func newFixture(t *testing.T, kt pkitest.KeyType) pkiFixture {
	t.Helper()
	root, err := pkitest.CA("test root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := pkitest.New(root, pkitest.Options{CN: "test intermediate", IsCA: true, NotAfter: time.Now().Add(24 * 300 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pkitest.Leaf(inter, "node1", kt)
	if err != nil {
		t.Fatal(err)
	}
	return pkiFixture{root, inter, leaf}
}

func (f pkiFixture) writeSource(t *testing.T, dir string) {
	t.Helper()
	if err := pkitest.WriteDir(dir, f.leaf, []*x509.Certificate{f.inter.Cert}, f.root.Cert); err != nil {
		t.Fatal(err)
	}
}

// tlsServer accepts mutual-TLS connections with the fixture's leaf and
// records the client certificate each handshake presented.
type tlsServer struct {
	addr    string
	mu      sync.Mutex
	clients []string // SHA-256 of client leaves
}

func startTLSServer(t *testing.T, f pkiFixture) *tlsServer {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(f.root.Cert)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{f.leaf.Cert.Raw, f.inter.Cert.Raw}, PrivateKey: f.leaf.Key}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	s := &tlsServer{}
	s.addr = pkitest.ServeTLS(t, cfg, func(tc *tls.Conn) {
		if tc.Handshake() != nil {
			return
		}
		buf := make([]byte, 1)
		if _, err := tc.Read(buf); err != nil || buf[0] != 'x' {
			return
		}
		s.mu.Lock()
		s.clients = append(s.clients, pki.Fingerprint(tc.ConnectionState().PeerCertificates[0]))
		s.mu.Unlock()
		tc.Write([]byte{'y'})
	})
	return s
}

// TestStoresReadByTheJDK builds every key type in every store format and
// proves the JDK reads each one: keytool lists the expected entries with the
// PEM input's fingerprints, and a Java client using KeyManagerFactory and
// TrustManagerFactory, as Cassandra does, completes a mutual-TLS handshake.
func TestStoresReadByTheJDK(t *testing.T) {
	need(t, "keytool", "java", "openssl")
	formats := []struct{ storeType, profile, javaType string }{
		{"jks", "", "JKS"},
		{"pkcs12", "modern2023", "PKCS12"},
		{"pkcs12", "legacydes", "PKCS12"},
	}
	keyTypes := []pkitest.KeyType{pkitest.RSA2048, pkitest.P256, pkitest.P384, pkitest.Ed25519}

	type javaCase struct {
		srv *tlsServer
		f   pkiFixture
		arg string
	}
	var cases []javaCase
	for _, kt := range keyTypes {
		for _, ft := range formats {
			name := fmt.Sprintf("%s-%s%s", kt, ft.storeType, ft.profile)
			f := newFixture(t, kt)
			dir := t.TempDir()
			f.writeSource(t, filepath.Join(dir, "src"))
			pw := filepath.Join(dir, "password")
			writeFile(t, pw, []byte("s3cret-password\n"))
			ks, ts := filepath.Join(dir, "out", "keystore"), filepath.Join(dir, "out", "truststore")
			os.MkdirAll(filepath.Dir(ks), 0o755)
			args := []string{"stores", "--source", filepath.Join(dir, "src"), "--keystore", ks, "--truststore", ts,
				"--store-type", ft.storeType, "--password-file", pw, "--alias", "cassandra"}
			if ft.profile != "" {
				args = append(args, "--pkcs12-profile", ft.profile)
			}
			if r := agent(t, nil, args...); r.code != 0 {
				t.Fatalf("%s: stores exit %d: %s", name, r.code, r.stderr)
			}
			for _, p := range []string{ks, ts} {
				if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %s has mode %v, want 0600", name, p, st.Mode().Perm())
				}
			}

			// keytool: entry type, chain length, fingerprints equal to the PEM input.
			out := run(t, "keytool", "-list", "-v", "-keystore", ks, "-storetype", ft.javaType, "-storepass", "s3cret-password")
			if !strings.Contains(out, "Entry type: PrivateKeyEntry") || !strings.Contains(out, "Certificate chain length: 2") {
				t.Errorf("%s: keytool keystore listing lacks a PrivateKeyEntry with a chain of 2:\n%s", name, out)
			}
			if ft.storeType == "jks" && !strings.Contains(out, "Alias name: cassandra") {
				t.Errorf("%s: alias cassandra missing:\n%s", name, out)
			}
			fps := sha256Lines(out)
			if len(fps) != 2 || fps[0] != pki.Fingerprint(f.leaf.Cert) || fps[1] != pki.Fingerprint(f.inter.Cert) {
				t.Errorf("%s: keystore fingerprints %v, want leaf then intermediate", name, fps)
			}
			out = run(t, "keytool", "-list", "-v", "-keystore", ts, "-storetype", ft.javaType, "-storepass", "s3cret-password")
			if !strings.Contains(out, "Entry type: trustedCertEntry") || strings.Count(out, "Entry type:") != 1 {
				t.Errorf("%s: truststore should hold one trustedCertEntry:\n%s", name, out)
			}
			if fps := sha256Lines(out); len(fps) != 1 || fps[0] != pki.Fingerprint(f.root.Cert) {
				t.Errorf("%s: truststore fingerprints %v, want the root's", name, fps)
			}
			// OpenSSL 3 reads the modern PKCS#12 without -legacy.
			if ft.profile == "modern2023" {
				out := run(t, "openssl", "pkcs12", "-in", ks, "-passin", "file:"+pw, "-nodes")
				if !strings.Contains(out, "PRIVATE KEY-----") || strings.Count(out, "BEGIN CERTIFICATE") != 2 {
					t.Errorf("%s: openssl pkcs12 output lacks the key and 2 certificates:\n%s", name, out)
				}
				run(t, "openssl", "pkcs12", "-in", ts, "-passin", "file:"+pw, "-nokeys")
			}
			srv := startTLSServer(t, f)
			cases = append(cases, javaCase{srv, f, strings.Join([]string{srv.addr, ft.javaType, ks, ts, pw}, ",")})
		}
	}

	args := []string{filepath.Join(repoRoot(), "test", "java", "TLSCheck.java")}
	for _, c := range cases {
		args = append(args, c.arg)
	}
	out := run(t, "java", args...)
	for _, c := range cases {
		want := fmt.Sprintf("OK %s %s", c.srv.addr, pki.Fingerprint(c.f.leaf.Cert))
		if !strings.Contains(out, want) {
			t.Errorf("Java handshake for %s: want %q in:\n%s", c.arg, want, out)
		}
		c.srv.mu.Lock()
		if len(c.srv.clients) != 1 || c.srv.clients[0] != pki.Fingerprint(c.f.leaf.Cert) {
			t.Errorf("server %s saw client certificates %v, want the keystore's leaf", c.srv.addr, c.srv.clients)
		}
		c.srv.mu.Unlock()
	}
}

var sha256Line = regexp.MustCompile(`(?m)^\s*SHA256: ([0-9A-F:]{95})\s*$`)

func sha256Lines(s string) []string {
	var out []string
	for _, m := range sha256Line.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestStoresSkipUnchangedAndPEMOutputs: a second run with the same inputs
// writes nothing; a new trust bundle rewrites only the trust outputs.
func TestStoresSkipUnchangedAndPEMOutputs(t *testing.T) {
	need(t, "openssl")
	f := newFixture(t, pkitest.P256)
	dir := t.TempDir()
	f.writeSource(t, filepath.Join(dir, "src"))
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	env := []string{"CASSANDRA_TLS_AGENT_STORE_PASSWORD=from-env-pw",
		"CASSANDRA_TLS_AGENT_SOURCE=" + filepath.Join(dir, "src"),
		"CASSANDRA_TLS_AGENT_KEYSTORE=" + filepath.Join(out, "keystore.jks"),
		"CASSANDRA_TLS_AGENT_TRUSTSTORE=" + filepath.Join(out, "truststore.jks"),
		"CASSANDRA_TLS_AGENT_PEM_DIR=" + filepath.Join(out, "pem"),
		"CASSANDRA_TLS_AGENT_MODE=0640"}
	if r := agent(t, env, "stores"); r.code != 0 {
		t.Fatalf("first build: %d %s", r.code, r.stderr)
	}
	if st, _ := os.Stat(filepath.Join(out, "keystore.jks")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode from env not applied: %v", st.Mode().Perm())
	}
	// The PEM outputs are usable by OpenSSL: chain verifies, key matches.
	pemDir := filepath.Join(out, "pem")
	run(t, "openssl", "verify", "-CAfile", filepath.Join(pemDir, "ca.crt"), "-untrusted", filepath.Join(pemDir, "tls.crt"), filepath.Join(pemDir, "tls.crt"))
	ks := run(t, "openssl", "pkey", "-in", filepath.Join(pemDir, "keystore.pem"), "-pubout")
	crt := run(t, "openssl", "x509", "-in", filepath.Join(pemDir, "tls.crt"), "-pubkey", "-noout")
	if ks != crt {
		t.Errorf("keystore.pem key does not match tls.crt")
	}

	before, beforeVisible := snapshot(t, out), visible(t, out)
	r := agent(t, env, "stores")
	if r.code != 0 || !strings.Contains(r.stderr, `"msg":"stores unchanged"`) {
		t.Fatalf("second build: %d %s", r.code, r.stderr)
	}
	if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("unchanged inputs rewrote outputs")
	}

	// A new CA in a trust bundle: only truststore.jks and pem/ca.crt change.
	other, _ := pkitest.CA("next root")
	bundle := filepath.Join(dir, "bundle.pem")
	writeFile(t, bundle, pkitest.CertPEM(other.Cert))
	r = agent(t, append(env, "CASSANDRA_TLS_AGENT_TRUST_BUNDLE="+bundle), "stores")
	if r.code != 0 {
		t.Fatalf("bundle build: %d %s", r.code, r.stderr)
	}
	var changed []string
	for p, h := range visible(t, out) {
		if beforeVisible[p] != h {
			changed = append(changed, filepath.Base(p))
		}
	}
	// The PEM pair and ca.crt are one generation of pem/..data: a new CA
	// publishes all three together (tls.key and tls.crt keep their content).
	if fmt.Sprint(sortStrings(changed)) != "[ca.crt tls.crt tls.key truststore.jks]" {
		t.Errorf("files rewritten for a new trust bundle = %v, want [ca.crt tls.crt tls.key truststore.jks]", changed)
	}
	// A password change must rebuild the keystore (Cassandra would fail to open it otherwise).
	r = agent(t, append(env, "CASSANDRA_TLS_AGENT_STORE_PASSWORD=another-pw", "CASSANDRA_TLS_AGENT_TRUST_BUNDLE="+bundle), "stores")
	if r.code != 0 || !strings.Contains(r.stderr, "keystore.jks") || !strings.Contains(r.stderr, `"msg":"stores published"`) {
		t.Errorf("password change did not rebuild: %s", r.stderr)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestInspect(t *testing.T) {
	f := newFixture(t, pkitest.RSA2048)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f.writeSource(t, src)
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, []byte("changeit"))
	p12 := filepath.Join(dir, "keystore.p12")
	if r := agent(t, nil, "stores", "--source", src, "--keystore", p12, "--store-type", "pkcs12", "--password-file", pw); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, path := range []string{src, p12, filepath.Join(src, "tls.crt")} {
		r := agent(t, nil, "inspect", "--password-file", pw, "--output", "json", path)
		if r.code != 0 {
			t.Fatalf("inspect %s: %d %s %s", path, r.code, r.stdout, r.stderr)
		}
		var rep struct {
			Kind         string
			Certificates []struct {
				Role, SHA256 string
				SANs         []string
			}
			KeyMatches *bool `json:"key_matches_leaf"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("inspect json: %v\n%s", err, r.stdout)
		}
		if len(rep.Certificates) < 2 || rep.Certificates[0].Role != "leaf" || rep.Certificates[0].SHA256 != pki.Fingerprint(f.leaf.Cert) ||
			fmt.Sprint(rep.Certificates[0].SANs) != "[DNS:localhost DNS:node1 IP:127.0.0.1]" {
			t.Errorf("inspect %s (%s): unexpected certificates %+v", path, rep.Kind, rep.Certificates)
		}
		if path != filepath.Join(src, "tls.crt") && (rep.KeyMatches == nil || !*rep.KeyMatches) {
			t.Errorf("inspect %s: key_matches_leaf = %v, want true", path, rep.KeyMatches)
		}
	}
	// The leaf lives 25 h: a 48 h window flags it, a 1 h window does not.
	if r := agent(t, nil, "inspect", "--expiring-within", "48h", src); r.code != 1 || !strings.Contains(r.stdout, "within 48h0m0s") {
		t.Errorf("expiring-within 48h: exit %d\n%s", r.code, r.stdout)
	}
	if r := agent(t, nil, "inspect", "--expiring-within", "1h", src); r.code != 0 || !strings.Contains(r.stdout, "status: OK") {
		t.Errorf("expiring-within 1h: exit %d\n%s", r.code, r.stdout)
	}
	// A mismatched key is reported and fails.
	other, _ := pkitest.Leaf(f.inter, "other", pkitest.RSA2048)
	writeFile(t, filepath.Join(src, "tls.key"), pkitest.KeyPEM(other.Key))
	if r := agent(t, nil, "inspect", src); r.code != 1 || !strings.Contains(r.stdout, "private key matches leaf: false") {
		t.Errorf("mismatched key: exit %d\n%s", r.code, r.stdout)
	}
	if r := agent(t, nil, "inspect", p12); r.code != 1 || !strings.Contains(r.stderr, "password is needed") {
		t.Errorf("store without password: exit %d %s", r.code, r.stderr)
	}
}

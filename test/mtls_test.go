package test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// SPIFFE IDs of the client certificates, as csi-driver-spiffe issues them.
const (
	reaperID   = "spiffe://cluster.local/ns/apps/sa/reaper"
	strangerID = "spiffe://cluster.local/ns/apps/sa/stranger"
	adminID    = "spiffe://cluster.local/ns/ops/sa/admin"
)

// mtlsNode is a real Cassandra 5.0 node that authenticates CQL clients by
// their certificate (MutualTlsWithPasswordFallbackAuthenticator with the
// SPIFFE validator), from test/cassandra/cassandra-mtls.yaml.tmpl.
type mtlsNode struct {
	root, caFile, password, username string
	// client certificate dirs (tls.crt, tls.key, ca.crt)
	reaper, stranger, admin, noURI string
	native                         int
	node                           *cassnode.Node
}

func (m *mtlsNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.native)) }

func newMTLSNode(t *testing.T) *mtlsNode {
	t.Helper()
	if err := cassnode.Available(); err != nil {
		t.Fatalf("a real Cassandra is required (make deps): %v", err)
	}
	root := t.TempDir()
	m := &mtlsNode{root: root, caFile: filepath.Join(root, "ca.crt"),
		password: filepath.Join(root, "cql", "password"), username: filepath.Join(root, "cql", "username"),
		reaper: filepath.Join(root, "reaper"), stranger: filepath.Join(root, "stranger"),
		admin: filepath.Join(root, "admin"), noURI: filepath.Join(root, "no-uri")}
	ca, err := pkitest.CA("mtls test CA")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, m.caFile, pkitest.CertPEM(ca.Cert))
	nodeSrc := filepath.Join(root, "node-tls")
	leaf, err := pkitest.Leaf(ca, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkitest.WriteDir(nodeSrc, leaf, nil, ca.Cert); err != nil {
		t.Fatal(err)
	}
	for dir, id := range map[string]string{m.reaper: reaperID, m.stranger: strangerID, m.admin: adminID, m.noURI: ""} {
		o := pkitest.Options{CN: filepath.Base(dir)}
		if id != "" {
			u, err := url.Parse(id)
			if err != nil {
				t.Fatal(err)
			}
			o.URIs = []*url.URL{u}
		}
		c, err := pkitest.New(ca, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := pkitest.WriteDir(dir, c, nil, ca.Cert); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, m.username, []byte("cassandra\n"))
	writeFile(t, m.password, []byte("cassandra\n"))

	var took time.Duration
	m.node, m.native, took = agentNode{Root: root, Source: nodeSrc,
		Template: "cassandra-mtls.yaml.tmpl", StorePassword: "mtls-store-pw"}.start(t)
	t.Logf("MEASURED mTLS node up (CQL listening) after %v", took)
	return m
}

// waitArgs is a one-shot wait by dir's certificate, without a password.
func (m *mtlsNode) waitArgs(dir, timeout string) []string {
	return []string{"wait", "--hosts", m.addr(), "--ca", m.caFile, "--cert", filepath.Join(dir, "tls.crt"),
		"--key", filepath.Join(dir, "tls.key"), "--timeout", timeout}
}

// adminConfig is a schema job's init: the superuser's session over the
// password fallback (plaintext on loopback: Cassandra 5.0.9 takes the
// password only from a connection without a client certificate), then the
// identity mappings.
func (m *mtlsNode) adminConfig(t *testing.T, name, identities string) string {
	p := filepath.Join(m.root, name+".yaml")
	writeFile(t, p, []byte(fmt.Sprintf(`
wait:
  hosts: ["%s"]
  usernameFile: %s
  passwordFile: %s
  timeout: 2m
bootstrap:
  statements:
    - CREATE KEYSPACE IF NOT EXISTS reaper_db WITH replication = {'class':'SimpleStrategy','replication_factor':1}
  identities:
%s
log: {format: json}
`, m.addr(), m.username, m.password, identities)))
	return p
}

// TestMutualTLSClients: Cassandra 5.0.9 with certificate authentication.
// An unmapped identity is named; a superuser's init maps the identity
// idempotently and refuses a superuser role; then the client's own init,
// wait, cqlsh and the Python driver connect with no password at all.
func TestMutualTLSClients(t *testing.T) {
	need(t, "java")
	m := newMTLSNode(t)
	venv := filepath.Join(repoRoot(), ".cache", "venv", "bin")
	cqlsh, python := filepath.Join(venv, "cqlsh"), filepath.Join(venv, "python")

	t.Run("an identity mapped to no role is named", func(t *testing.T) {
		// The node is listening but still setting up its roles: poll until
		// the cause is the identity rather than a timeout.
		deadline := time.Now().Add(60 * time.Second)
		want := "the certificate's identity " + reaperID + " is not mapped to a role"
		var r result
		for time.Now().Before(deadline) {
			if r = agent(t, nil, m.waitArgs(m.reaper, "5s")...); strings.Contains(r.stderr, want) {
				break
			}
		}
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, want %q\n%s", r.code, want, r.stderr)
		}
		// What the node says, for the README.
		if !strings.Contains(r.stderr, "Certificate identity '"+reaperID+"' not authorized") {
			t.Errorf("the node's own words are missing:\n%s", r.stderr)
		}
	})

	t.Run("a certificate without a spiffe URI is named", func(t *testing.T) {
		r := agent(t, nil, m.waitArgs(m.noURI, "3s")...)
		if r.code != 1 || !strings.Contains(r.stderr, "the client certificate carries no identity the server's certificate validator accepts") ||
			!strings.Contains(r.stderr, "Unable to extract Spiffe from the certificate") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		t.Logf("the node to a certificate without a URI SAN:\n%s", lastLine(r.stderr))
	})

	t.Run("a client with neither a certificate nor a password is told the server requires a password", func(t *testing.T) {
		// Plaintext, no certificate: the fallback's password half answers.
		r := agent(t, nil, "wait", "--hosts", m.addr(), "--plaintext", "--timeout", "3s")
		if r.code != 1 || !strings.Contains(r.stderr, "the server requires a password; none is configured") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		t.Logf("the node to a client with neither:\n%s", lastLine(r.stderr))
	})

	t.Run("a password client works through the fallback", func(t *testing.T) {
		r := agent(t, nil, "wait", "--hosts", m.addr(), "--plaintext", "--username", "cassandra", "--password-file", m.password, "--timeout", "60s")
		if r.code != 0 || !strings.Contains(r.stderr, `"msg":"CQL ready"`) {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("a password client over TLS is known by its certificate", func(t *testing.T) {
		// Cassandra 5.0.9: a presented certificate always wins; the password
		// is not looked at, even when it is right.
		r := agent(t, nil, append(m.waitArgs(m.stranger, "3s"), "--username", "cassandra", "--password-file", m.password)...)
		if r.code != 1 || !strings.Contains(r.stderr, "the certificate's identity "+strangerID+" is not mapped to a role") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		// And a TLS client without a certificate is refused in the handshake.
		r = agent(t, nil, "wait", "--hosts", m.addr(), "--ca", m.caFile, "--username", "cassandra", "--password-file", m.password, "--timeout", "3s")
		if r.code != 1 || !strings.Contains(r.stderr, "TLS rejected by the server (client certificate missing or not trusted)") {
			t.Errorf("without a client certificate: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("init maps the identity once, with a role it creates", func(t *testing.T) {
		cfg := m.adminConfig(t, "admin-init", `    - {identity: "`+reaperID+`", role: reaper, createRole: true}`)
		r := agent(t, nil, "init", "--config", cfg)
		if r.code != 0 || !strings.Contains(r.stderr, `"msg":"bootstrap identity","identity":"`+reaperID+`","role":"reaper","result":"added"`) {
			t.Fatalf("first init: exit %d\n%s", r.code, r.stderr)
		}
		r = agent(t, nil, "init", "--config", cfg)
		if r.code != 0 || !strings.Contains(r.stderr, `"result":"unchanged"`) || strings.Contains(r.stderr, `"result":"added"`) {
			t.Fatalf("second init: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("init refuses to map an identity to a superuser role", func(t *testing.T) {
		cfg := m.adminConfig(t, "admin-super", `    - {identity: "`+adminID+`", role: cassandra}`)
		r := agent(t, nil, "init", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "role cassandra is a superuser: refused") || !strings.Contains(r.stderr, "CVE-2026-27314") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		// Nothing was added: the admin certificate is still nobody.
		r = agent(t, nil, m.waitArgs(m.admin, "3s")...)
		if r.code != 1 || !strings.Contains(r.stderr, "the certificate's identity "+adminID+" is not mapped to a role") {
			t.Errorf("after the refusal: exit %d\n%s", r.code, r.stderr)
		}
		// Nor through a role that is granted the superuser role.
		cfg = m.adminConfig(t, "admin-granted", `    - {identity: "`+adminID+`", role: ops, createRole: true}`)
		cfg0 := strings.Replace(readFile(t, cfg), "  statements:\n", "  statements:\n    - CREATE ROLE IF NOT EXISTS ops WITH LOGIN = true\n    - GRANT cassandra TO ops\n", 1)
		writeFile(t, cfg, []byte(cfg0))
		r = agent(t, nil, "init", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "role ops is granted superuser role cassandra: refused") {
			t.Errorf("a role granted the superuser role: exit %d\n%s", r.code, r.stderr)
		}
	})

	pemDir := filepath.Join(m.root, "reaper-pod")
	rc := filepath.Join(pemDir, "cqlshrc")
	t.Run("the client's init waits with no password and writes a password-less cqlshrc", func(t *testing.T) {
		cfg := filepath.Join(m.root, "reaper-init.yaml")
		writeFile(t, cfg, []byte(fmt.Sprintf(`
stores:
  - name: client
    source: %[1]s
    pem: {dir: %[2]s/pem}
cqlshrc: {out: %[3]s, host: 127.0.0.1, port: %[4]d, store: client, certificateAuth: true}
wait:
  hosts: ["%[5]s"]
  store: client
  timeout: 2m
log: {format: json}
`, m.reaper, pemDir, rc, m.native, m.addr())))
		start := time.Now()
		r := agent(t, nil, "init", "--config", cfg)
		if r.code != 0 || !strings.Contains(r.stderr, `"msg":"CQL ready"`) {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		t.Logf("MEASURED password-less client init (PEM outputs, cqlshrc, wait): %v", time.Since(start).Round(time.Millisecond))
		data := readFile(t, rc)
		if !strings.Contains(data, "classname = TransitionalModePlainTextAuthProvider") || strings.Contains(data, "[authentication]") {
			t.Errorf("cqlshrc:\n%s", data)
		}
		r = agent(t, nil, m.waitArgs(m.reaper, "30s")...)
		if r.code != 0 {
			t.Errorf("one-shot wait without a password: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("cqlsh connects by certificate alone, as the mapped role", func(t *testing.T) {
		o, code := out(t, exec.CommandContext(cmdCtx(t), cqlsh, "--cqlshrc", rc, "-e", "SELECT release_version FROM system.local"))
		if code != 0 || !strings.Contains(o, "5.0.") {
			t.Fatalf("cqlsh: exit %d\n%s", code, o)
		}
		o, code = out(t, exec.CommandContext(cmdCtx(t), cqlsh, "--cqlshrc", rc, "-e", "SELECT role FROM system_auth.roles"))
		if code == 0 || !strings.Contains(o, "User reaper has no SELECT permission") {
			t.Errorf("cqlsh is not the role reaper: exit %d\n%s", code, o)
		}
	})

	t.Run("the Python driver connects by certificate alone", func(t *testing.T) {
		driver := func(dir string) (string, int) {
			return out(t, exec.CommandContext(cmdCtx(t), python, filepath.Join(repoRoot(), "test", "python", "mtls_driver.py"),
				"--host", "127.0.0.1", "--port", strconv.Itoa(m.native), "--ca", m.caFile,
				"--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key")))
		}
		o, code := driver(m.reaper)
		if code != 0 || !strings.Contains(o, "release_version=5.0.") || !strings.Contains(o, "User reaper has no SELECT permission") {
			t.Errorf("reaper: exit %d\n%s", code, o)
		}
		o, code = driver(m.stranger)
		// The driver prints the server's message through repr(): quotes escaped.
		if code != 1 || !strings.Contains(o, `Certificate identity \'`+strangerID+`\' not authorized`) {
			t.Errorf("stranger: exit %d\n%s", code, o)
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(data)
}

package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
	"go.yaml.in/yaml/v3"
)

// hostilePassword is the keystore password of the real node: it holds every
// character that breaks a text-substituted cassandra.yaml. The node starting
// with it proves the rendered file carries it exactly.
const hostilePassword = `p"w: #x {} ${NOT_EXPANDED} &a *b 'q' \ true`

// cluster is one real Cassandra 5.0 node and the files around it.
type cluster struct {
	root                 string
	ca                   *pkitest.Cert
	nodeSrc, clientSrc   string // cert-manager style Secret dirs
	nodeDir, cryptoDir   string
	secretsDir, cqlDir   string // store passwords; CQL username/password
	clientDir            string // client pod outputs (PEM, cqlshrc)
	native, storage, jmx int
	jolokia              int
	node                 *cassnode.Node
	env                  []string
}

func (c *cluster) nativeAddr() string { return fmt.Sprintf("127.0.0.1:%d", c.native) }

func newCluster(t *testing.T) *cluster {
	t.Helper()
	if err := cassnode.Available(); err != nil {
		t.Fatalf("a real Cassandra is required (make deps): %v", err)
	}
	ports, err := cassnode.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c := &cluster{root: root,
		nodeSrc: filepath.Join(root, "secrets", "node-tls"), clientSrc: filepath.Join(root, "secrets", "client-tls"),
		nodeDir: filepath.Join(root, "node"), cryptoDir: filepath.Join(root, "node", "crypto"),
		secretsDir: filepath.Join(root, "secrets", "stores"), cqlDir: filepath.Join(root, "secrets", "cql"),
		clientDir: filepath.Join(root, "client"),
		native:    ports[0], storage: ports[1], jmx: ports[2], jolokia: ports[3]}
	if c.ca, err = pkitest.CA("test cluster CA"); err != nil {
		t.Fatal(err)
	}
	c.issue(t, c.nodeSrc, "node1")
	c.issue(t, c.clientSrc, "client")
	writeFile(t, filepath.Join(c.secretsDir, "keystore-password"), []byte(hostilePassword+"\n"))
	writeFile(t, filepath.Join(c.cqlDir, "username"), []byte("cassandra\n"))
	writeFile(t, filepath.Join(c.cqlDir, "password"), []byte("cassandra\n"))
	c.env = []string{"NODE_DIR=" + c.nodeDir, "CRYPTO_DIR=" + c.cryptoDir,
		"NATIVE_PORT=" + strconv.Itoa(c.native), "STORAGE_PORT=" + strconv.Itoa(c.storage)}
	t.Cleanup(func() {
		if c.node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := c.node.Stop(ctx); err != nil {
				t.Errorf("stopping the node: %v", err)
			}
		}
	})
	return c
}

// issue writes a new leaf from the cluster CA in cert-manager's layout.
func (c *cluster) issue(t *testing.T, dir, cn string) *pkitest.Cert {
	t.Helper()
	leaf, err := pkitest.Leaf(c.ca, cn, pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	// The way the kubelet updates a mounted Secret, so the sidecar sees the
	// real sequence of events.
	if err := kubeletfs.Write(dir, map[string][]byte{
		"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": pkitest.CertPEM(c.ca.Cert),
	}); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// nodeConfig is the Cassandra pod's init config: cassandra.yaml rendered
// with the store passwords, keystore and truststore built from the node's Secret.
func (c *cluster) nodeConfig(t *testing.T) string {
	cfg := fmt.Sprintf(`
templates:
  - template: %s
    out: ${NODE_DIR}/cassandra.yaml
    secretsDir: %s
stores:
  - name: node
    source: %s
    passwordFile: %s/keystore-password
    keystore:   {path: "${CRYPTO_DIR}/keystore.jks", type: jks, alias: cassandra}
    truststore: {path: "${CRYPTO_DIR}/truststore.jks", type: jks}
log: {format: json}
`, filepath.Join(repoRoot(), "test", "cassandra", "cassandra.yaml.tmpl"), c.secretsDir, c.nodeSrc, c.secretsDir)
	// The template's KEYSTORE_PASSWORD and TRUSTSTORE_PASSWORD both come
	// from the secrets dir: one file is named for each.
	data, _ := os.ReadFile(filepath.Join(c.secretsDir, "keystore-password"))
	writeFile(t, filepath.Join(c.secretsDir, "truststore-password"), data)
	p := filepath.Join(c.root, "node-init.yaml")
	writeFile(t, p, []byte(cfg))
	return p
}

// clientConfig is a client pod's init config (a schema job, Reaper): PEM
// outputs, cqlshrc, a real CQL wait, then idempotent bootstrap CQL.
func (c *cluster) clientConfig(t *testing.T) string {
	cfg := fmt.Sprintf(`
stores:
  - name: client
    source: %[1]s
    pem: {dir: %[2]s/pem}
cqlshrc:
  out: %[2]s/cqlshrc
  credentialsOut: %[2]s/credentials
  host: 127.0.0.1
  port: %[3]d
  store: client
  usernameFile: %[4]s/username
  passwordFile: %[4]s/password
wait:
  hosts: ["127.0.0.1:%[3]d"]
  store: client
  usernameFile: %[4]s/username
  passwordFile: %[4]s/password
  require: any
  timeout: 4m
bootstrap:
  - CREATE KEYSPACE IF NOT EXISTS reaper_db WITH replication = {'class':'NetworkTopologyStrategy','datacenter1':1}
  - CREATE TABLE IF NOT EXISTS reaper_db.probe (id int PRIMARY KEY, v text)
`, c.clientSrc, c.clientDir, c.native, c.cqlDir)
	p := filepath.Join(c.root, "client-init.yaml")
	writeFile(t, p, []byte(cfg))
	return p
}

// TestCassandra runs the agent against one real Cassandra 5.0 node: init
// renders its cassandra.yaml and builds its stores, a client init waits for
// it and bootstraps a keyspace, and cqlsh and the Python driver connect with
// what the agent generated. Sub-tests share the node and run in order.
func TestCassandra(t *testing.T) {
	need(t, "java")
	c := newCluster(t)

	t.Run("init renders cassandra.yaml with hostile passwords and builds stores", func(t *testing.T) {
		r := agent(t, c.env, "init", "--config", c.nodeConfig(t))
		if r.code != 0 {
			t.Fatalf("node init: exit %d\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, hostilePassword) || strings.Contains(r.stderr, "NOT_EXPANDED") {
			t.Errorf("a password reached the log:\n%s", r.stderr)
		}
		var y struct {
			Client map[string]any `yaml:"client_encryption_options"`
			Port   any            `yaml:"native_transport_port"`
		}
		data, _ := os.ReadFile(filepath.Join(c.nodeDir, "cassandra.yaml"))
		if err := yaml.Unmarshal(data, &y); err != nil {
			t.Fatalf("rendered cassandra.yaml does not parse: %v", err)
		}
		if y.Client["keystore_password"] != hostilePassword || y.Port != c.native {
			t.Errorf("rendered values: keystore_password=%#v native_transport_port=%#v", y.Client["keystore_password"], y.Port)
		}
		run(t, "keytool", "-list", "-keystore", filepath.Join(c.cryptoDir, "keystore.jks"), "-storepass", hostilePassword)
	})

	t.Run("a template value that would change the YAML is refused and the file kept", func(t *testing.T) {
		before := snapshot(t, c.nodeDir)
		env := append(append([]string{}, c.env...), "NATIVE_PORT=9042\nstart_rpc: true")
		r := agent(t, env, "init", "--config", c.nodeConfig(t))
		if r.code != 1 || !strings.Contains(r.stderr, "not of that type") {
			t.Errorf("exit %d, want 1 with a type error:\n%s", r.code, r.stderr)
		}
		env = []string{"NODE_DIR=" + c.nodeDir, "CRYPTO_DIR=" + c.cryptoDir}
		r = agent(t, env, "render", "--template", filepath.Join(repoRoot(), "test", "cassandra", "cassandra.yaml.tmpl"),
			"--out", filepath.Join(c.nodeDir, "cassandra.yaml"))
		if r.code != 1 || !strings.Contains(r.stderr, `"missing":["KEYSTORE_PASSWORD","NATIVE_PORT","STORAGE_PORT","TRUSTSTORE_PASSWORD"]`) {
			t.Errorf("missing variables: exit %d\n%s", r.code, r.stderr)
		}
		assertSame(t, before, snapshot(t, c.nodeDir))
	})

	t.Run("client init started before Cassandra exits right after CQL answers", func(t *testing.T) {
		cmd := exec.Command(agentBin, "init", "--config", c.clientConfig(t))
		cmd.Env = os.Environ()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan time.Time, 1)
		go func() { cmd.Wait(); done <- time.Now() }()

		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		node, err := cassnode.Start(ctx, c.nodeDir, cassnode.Options{NativePort: c.native, StoragePort: c.storage,
			JMXPort: c.jmx, JolokiaPort: c.jolokia, Wait: false, Timeout: 3 * time.Minute})
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("starting Cassandra: %v", err)
		}
		c.node = node
		var exited time.Time
		select {
		case exited = <-done:
		case <-ctx.Done():
			cmd.Process.Kill()
			t.Fatalf("client init did not finish:\n%s\n%s", stderr.String(), node.LogTail(30))
		}
		if cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("client init: exit %d\n%s\n%s", cmd.ProcessState.ExitCode(), stderr.String(), node.LogTail(30))
		}
		cqlReady, err := node.CQLReadyAt()
		if err != nil {
			t.Fatal(err)
		}
		agentReady := logTime(t, stderr.String(), "CQL ready")
		startup, _ := node.StartupDuration()
		readyLag, exitLag := agentReady.Sub(cqlReady), exited.Sub(cqlReady)
		t.Logf("MEASURED node startup %v; agent saw CQL ready %v after the node's \"listening for CQL clients\" line; init (with bootstrap) exited %v after it",
			startup.Round(time.Millisecond), readyLag.Round(time.Millisecond), exitLag.Round(time.Millisecond))
		writeMeasurement(t, "ready_lag", fmt.Sprintf("startup=%s ready_lag=%s exit_lag=%s", startup.Round(time.Millisecond), readyLag.Round(time.Millisecond), exitLag.Round(time.Millisecond)))
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		t.Logf("last init log lines:\n%s", strings.Join(lines[max(0, len(lines)-8):], "\n"))
		// The lag itself is a measurement (MEASURED above, the README's table),
		// not a timing assertion: what must hold is that the agent notices
		// within its retry pace plus one TLS session, never a sleep's worth.
		if readyLag < 0 || readyLag > 10*time.Second {
			t.Errorf("ready lag %v: the agent did not notice CQL within 10 s of the node's ready line", readyLag)
		}
		if !strings.Contains(stderr.String(), `"msg":"CQL not ready"`) {
			t.Errorf("init never logged a failed attempt: was it really started before Cassandra?\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), `"msg":"bootstrap statement applied","index":2`) {
			t.Errorf("bootstrap statements not applied:\n%s", stderr.String())
		}
	})
	if c.node == nil {
		t.Fatal("no node: the remaining sub-tests need it")
	}

	t.Run("cqlsh connects with the generated cqlshrc over mutual TLS", func(t *testing.T) {
		cqlsh := filepath.Join(repoRoot(), ".cache", "venv", "bin", "cqlsh")
		rc := filepath.Join(c.clientDir, "cqlshrc")
		if st, _ := os.Stat(filepath.Join(c.clientDir, "credentials")); st == nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("credentials file missing or not 0600")
		}
		if data, _ := os.ReadFile(rc); bytes.Contains(data, []byte("password")) {
			t.Errorf("cqlshrc holds a password:\n%s", data)
		}
		out := run(t, cqlsh, "--cqlshrc", rc, "-e", "SELECT release_version FROM system.local; DESCRIBE KEYSPACE reaper_db;")
		if !strings.Contains(out, "5.0.") || !strings.Contains(out, "CREATE TABLE reaper_db.probe") {
			t.Errorf("cqlsh output lacks the version or the bootstrapped table:\n%s", out)
		}
	})

	t.Run("the Python driver connects with the PEM outputs", func(t *testing.T) {
		py := filepath.Join(repoRoot(), ".cache", "venv", "bin", "python")
		out := run(t, py, filepath.Join(repoRoot(), "test", "python", "driver_check.py"),
			"127.0.0.1", strconv.Itoa(c.native), filepath.Join(c.clientDir, "pem"), "cassandra", filepath.Join(c.cqlDir, "password"))
		if !strings.Contains(out, "release_version=5.0.") || !strings.Contains(out, "reaper_db") {
			t.Errorf("driver output:\n%s", out)
		}
	})

	t.Run("wait ends with a clear cause, not a hang", func(t *testing.T) {
		pem := filepath.Join(c.clientDir, "pem")
		otherCA, _ := pkitest.CA("some other CA")
		wrongCA := filepath.Join(c.root, "wrong-ca.crt")
		writeFile(t, wrongCA, pkitest.CertPEM(otherCA.Cert))
		wrongPW := filepath.Join(c.root, "wrong-password")
		writeFile(t, wrongPW, []byte("not-the-password"))
		base := []string{"wait", "--hosts", c.nativeAddr(), "--timeout", "4s", "--username", "cassandra"}
		cases := []struct {
			name, cause string
			args        []string
		}{
			{"ok", "", []string{"--ca", pem + "/ca.crt", "--cert", pem + "/tls.crt", "--key", pem + "/tls.key", "--password-file", c.cqlDir + "/password"}},
			{"wrong CA", "server certificate not trusted (unknown CA)", []string{"--ca", wrongCA, "--cert", pem + "/tls.crt", "--key", pem + "/tls.key", "--password-file", c.cqlDir + "/password"}},
			{"missing client certificate", "TLS rejected by the server", []string{"--ca", pem + "/ca.crt", "--password-file", c.cqlDir + "/password"}},
			{"wrong password", "authentication failed", []string{"--ca", pem + "/ca.crt", "--cert", pem + "/tls.crt", "--key", pem + "/tls.key", "--password-file", wrongPW}},
			{"wrong server name", "server certificate does not match the server name", []string{"--ca", pem + "/ca.crt", "--cert", pem + "/tls.crt", "--key", pem + "/tls.key", "--password-file", c.cqlDir + "/password", "--server-name", "node2.example"}},
			{"nothing listening", "connection refused", []string{"--hosts", "127.0.0.1:1", "--ca", pem + "/ca.crt"}},
		}
		for _, tc := range cases {
			start := time.Now()
			r := agent(t, nil, append(append([]string{}, base...), tc.args...)...)
			took := time.Since(start)
			if tc.cause == "" {
				if r.code != 0 {
					t.Errorf("%s: exit %d\n%s", tc.name, r.code, r.stderr)
				}
				t.Logf("MEASURED a probe of the warm node (process start to exit, TLS + auth + query): %v", took.Round(time.Millisecond))
				writeMeasurement(t, "warm_wait", took.Round(time.Millisecond).String())
				continue
			}
			if r.code != 1 || !strings.Contains(r.stderr, tc.cause) || !strings.Contains(r.stderr, `"msg":"CQL not ready","error":"CQL not ready after`) {
				t.Errorf("%s: exit %d, want 1 with cause %q:\n%s", tc.name, r.code, tc.cause, r.stderr)
			}
			if took > 20*time.Second {
				t.Errorf("%s: took %v with a 4 s timeout", tc.name, took)
			}
		}
		// No password against PasswordAuthenticator: the node's AUTHENTICATE
		// names it, and the client says what is missing instead of sending nothing.
		r := agent(t, nil, "wait", "--hosts", c.nativeAddr(), "--timeout", "4s", "--ca", pem+"/ca.crt", "--cert", pem+"/tls.crt", "--key", pem+"/tls.key")
		if r.code != 1 || !strings.Contains(r.stderr, "the server requires a password; none is configured") ||
			!strings.Contains(r.stderr, "org.apache.cassandra.auth.PasswordAuthenticator") {
			t.Errorf("no password: exit %d\n%s", r.code, r.stderr)
		}
	})

	cassandraRotationTests(t, c)
}

// logTime finds the first JSON log line with msg and returns its time.
func logTime(t *testing.T, log, msg string) time.Time {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg {
			return l.Time
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, log)
	return time.Time{}
}

// writeMeasurement appends a figure to .cache/measurements.txt so the
// README's numbers can be traced to a run.
func writeMeasurement(t *testing.T, name, value string) {
	p := filepath.Join(repoRoot(), ".cache", "measurements.txt")
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339), name, value)
}

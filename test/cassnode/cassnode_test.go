package cassnode

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindLogLine(t *testing.T) {
	log := strings.Join([]string{
		"Jolokia: Agent 2.6.0 started with URL http://127.0.0.1:8778/jolokia and PID 1",
		"WARNING: Starting listening for CQL clients (no timestamp: ignored)",
		"2026-11-23T18:22:55.814Z INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T19:22:56.001+01:00 INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T18:22:57.000Z INFO  [main] Other - done",
	}, "\n") + "\n"
	p := filepath.Join(t.TempDir(), "stdout.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, line, err := FindLogLine(p, CQLReadyLine)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 23, 18, 22, 56, 1e6, time.UTC)
	if !ts.Equal(want) || !strings.Contains(line, "+01:00") {
		t.Fatalf("got %v %q, want %v (last match)", ts, line, want)
	}
	if _, _, err := FindLogLine(p, "never logged"); !errors.Is(err, ErrNoLogLine) {
		t.Fatalf("missing line: err = %v, want ErrNoLogLine", err)
	}
}

func TestJavaMajor(t *testing.T) {
	for in, want := range map[string]int{
		`openjdk version "17.0.15" 2025-04-15`: 17,
		`openjdk version "11.0.2" 2019-01-15`:  11,
		`java version "1.8.0_402"`:             8,
		`openjdk version "21" 2023-09-19`:      21,
		`garbage`:                              0,
	} {
		if got := javaMajor(in); got != want {
			t.Errorf("javaMajor(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "cassandra", "cassandra.yaml.tmpl")); err != nil {
		t.Fatal(err)
	}
}

// TestRealNode starts a real Cassandra (about 10-40 s). Opt in with CASSNODE_E2E=1.
func TestRealNode(t *testing.T) {
	if os.Getenv("CASSNODE_E2E") != "1" {
		t.Skip("set CASSNODE_E2E=1 to start a real Cassandra node")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	for _, tool := range []string{"openssl", "keytool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Fetch(ctx); err != nil {
		t.Fatal(err)
	}

	base := t.TempDir()
	crypto := filepath.Join(base, "crypto")
	nodeDir := filepath.Join(base, "node")
	for _, d := range []string{crypto, nodeDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sh := func(script string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = base
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s\n%s", err, script, out)
		}
	}
	sh(`
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -subj /CN=cassnode-ca -days 2 -out ca.crt \
  -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() {
  openssl req -newkey rsa:2048 -nodes -keyout $1.key -subj /CN=$1 -out $1.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > $1.ext
  openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile $1.ext -out $1.crt 2>/dev/null
  openssl pkcs12 -export -in $1.crt -certfile ca.crt -inkey $1.key -name cassandra -passout pass:changeit -out $1.p12
  keytool -importkeystore -noprompt -srckeystore $1.p12 -srcstoretype PKCS12 -srcstorepass changeit \
    -destkeystore $1.jks -deststoretype JKS -deststorepass changeit >/dev/null 2>&1
}
leaf node1; leaf node2; leaf client
keytool -importcert -noprompt -alias ca -file ca.crt -keystore crypto/truststore.jks -storetype JKS -storepass changeit >/dev/null 2>&1
cp node1.jks crypto/keystore.jks
`)

	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{NativePort: ports[0], StoragePort: ports[1], JMXPort: ports[2], JolokiaPort: ports[3],
		Wait: true, Timeout: 3 * time.Minute}
	tmplPath, err := TemplatePath()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(tmpl)
	for k, v := range opts.TemplateVars(nodeDir, crypto, "changeit", "changeit") {
		yaml = strings.ReplaceAll(yaml, "${"+k+"}", v)
	}
	if strings.Contains(yaml, "${") {
		t.Fatalf("unrendered placeholder in template")
	}
	if err := os.WriteFile(filepath.Join(nodeDir, "cassandra.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	n, err := Start(ctx, nodeDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if n.Running() {
			t.Error("node still running after Stop")
		}
	}()
	if pid, err := n.PID(); err != nil || pid <= 0 {
		t.Fatalf("PID: %d %v", pid, err)
	}
	d, err := n.StartupDuration()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("startup (launch -> CQL line): %v", d)

	served := func() string {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(filepath.Join(base, "client.crt"), filepath.Join(base, "client.key"))
		if err != nil {
			t.Fatal(err)
		}
		caPEM, _ := os.ReadFile(filepath.Join(base, "ca.crt"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		conn, err := tls.Dial("tcp", n.NativeAddr(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		leaf := conn.ConnectionState().PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		return leaf.Subject.CommonName + " " + hex.EncodeToString(sum[:])
	}
	before := served()
	if !strings.HasPrefix(before, "node1 ") {
		t.Fatalf("served %s, want node1", before)
	}

	// Hot reload: swap the keystore atomically, ask Cassandra to reload through Jolokia.
	sh(`cp node2.jks crypto/.keystore.tmp && mv crypto/.keystore.tmp crypto/keystore.jks`)
	body := `{"type":"exec","mbean":"org.apache.cassandra.net:type=MessagingService","operation":"reloadSslCertificates","arguments":[]}`
	resp, err := http.Post(n.JolokiaURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(rb), `"status":200`) {
		t.Fatalf("jolokia: %s", rb)
	}
	after := served()
	t.Logf("served before %s, after %s", before, after)
	if !strings.HasPrefix(after, "node2 ") {
		t.Fatalf("served %s after reload, want node2", after)
	}

	if out, err := n.Nodetool(ctx, "reloadssl"); err != nil {
		t.Fatalf("nodetool reloadssl: %v\n%s", err, out)
	}
}

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// benchRotationEnv names the JSON file TestBenchRotation writes; without it
// the test is skipped: it is a row of `make bench`'s table, not part of
// `make test`.
const benchRotationEnv = "CASSANDRA_TLS_AGENT_BENCH_ROTATION"

// BenchRotation is what TestBenchRotation writes (milliseconds).
type BenchRotation struct {
	Rotations int       `json:"rotations"`
	Debounce  string    `json:"debounce"`
	Served    []float64 `json:"served_ms"` // swap start → both ports serve the new leaf
	// From the node's "listening for CQL clients" line: the agent's init
	// logging "CQL ready" (TLS + auth + query answered), and a TCP-port
	// wait's port open and its first real query (same TLS and credentials,
	// retried every 100 ms) succeeding, with the failures before it.
	InitReadyLag float64 `json:"init_ready_lag_ms"`
	TCPOpenLag   float64 `json:"tcp_open_lag_ms"`
	TCPQueryLag  float64 `json:"tcp_first_query_ok_lag_ms"`
	TCPFailures  int     `json:"tcp_first_query_failures"`
}

type tcpWait struct {
	open, ok time.Time
	failures int
	err      error
}

// waitTCPThenQuery is what a script with a port check does: wait for the
// port, then run the real query, retrying it until it answers.
func waitTCPThenQuery(ctx context.Context, addr string, client *cql.Client) tcpWait {
	var r tcpWait
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			r.open = time.Now()
			break
		}
		select {
		case <-ctx.Done():
			r.err = ctx.Err()
			return r
		case <-time.After(10 * time.Millisecond):
		}
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := client.Probe(pctx, addr)
		cancel()
		if err == nil {
			r.ok = time.Now()
			return r
		}
		r.failures++
		select {
		case <-ctx.Done():
			r.err = fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			return r
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestBenchRotation times, on one real node, a kubelet-style swap of the
// node's Secret → the new leaf served on the CQL and the internode port
// (fresh handshakes of an independent client), through the sidecar with the
// minimum debounce and the Jolokia reload.
func TestBenchRotation(t *testing.T) {
	out := os.Getenv(benchRotationEnv)
	if out == "" {
		t.Skipf("a benchmark: set %s=FILE (make bench does)", benchRotationEnv)
	}
	need(t, "java")
	n := 20
	c := newCluster(t)
	if r := agent(t, c.env, "init", "--config", c.nodeConfig(t)); r.code != 0 {
		t.Fatalf("node init: exit %d\n%s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A client's init and a TCP-port wait, both started before the node.
	initCmd := exec.Command(agentBin, "init", "--config", c.clientConfig(t))
	initCmd.Env = os.Environ()
	var initLog bytes.Buffer
	initCmd.Stderr = &initLog
	if err := initCmd.Start(); err != nil {
		t.Fatal(err)
	}
	initDone := make(chan error, 1)
	go func() { initDone <- initCmd.Wait() }()
	qc := &cql.Client{TLS: cql.MaterialTLS(clientMaterial(t, c), ""), Username: "cassandra", Password: []byte("cassandra")}
	tcpDone := make(chan tcpWait, 1)
	go func() { tcpDone <- waitTCPThenQuery(ctx, c.nativeAddr(), qc) }()
	node, err := cassnode.Start(ctx, c.nodeDir, cassnode.Options{NativePort: c.native, StoragePort: c.storage,
		JMXPort: c.jmx, JolokiaPort: c.jolokia, Wait: false, Timeout: 4 * time.Minute})
	if err != nil {
		initCmd.Process.Kill()
		t.Fatalf("starting Cassandra: %v", err)
	}
	c.node = node
	if err := <-initDone; err != nil {
		t.Fatalf("client init: %v\n%s\n%s", err, initLog.String(), node.LogTail(30))
	}
	tw := <-tcpDone
	if tw.err != nil {
		t.Fatalf("TCP-port wait: %v", tw.err)
	}
	cqlReady, err := node.CQLReadyAt()
	if err != nil {
		t.Fatal(err)
	}
	lag := func(at time.Time) float64 { return float64(at.Sub(cqlReady).Microseconds()) / 1000 }
	addr := agentproc.FreeAddr(t)
	const debounce = "1ms"
	cfg := fmt.Sprintf(`
stores:
  - name: node
    source: %s
    passwordFile: %s/keystore-password
    keystore:   {path: "%s/keystore.jks", type: jks, alias: cassandra}
    truststore: {path: "%s/truststore.jks", type: jks}
watch: {debounce: %s, resync: 1m}
reload:
  - jolokia: {url: "http://127.0.0.1:%d/jolokia/"}
verify:
  endpoints: [{address: "127.0.0.1:%d", store: node}, {address: "127.0.0.1:%d", store: node}]
  deadline: 30s
http: {listen: "%s"}
log: {level: warn}
`, c.nodeSrc, c.secretsDir, c.cryptoDir, c.cryptoDir, debounce, c.jolokia, c.native, c.storage, addr)
	s := agentproc.Start(t, agentBin, "node", addr, cfg)
	s.WaitReady(t, true, 60*time.Second)
	client := clientMaterial(t, c).TLSCertificate()
	res := BenchRotation{Rotations: n, Debounce: debounce,
		InitReadyLag: lag(logTime(t, initLog.String(), "CQL ready")), TCPOpenLag: lag(tw.open), TCPQueryLag: lag(tw.ok), TCPFailures: tw.failures}
	t.Logf("MEASURED after the node's CQL line: init ready %.0f ms; TCP port open %.0f ms, its first query answered %.0f ms after %d failures",
		res.InitReadyLag, res.TCPOpenLag, res.TCPQueryLag, res.TCPFailures)
	for i := 0; i < n; i++ {
		leaf, err := pkitest.Leaf(c.ca, "node1", pkitest.P256)
		if err != nil {
			t.Fatal(err)
		}
		fp := pki.Fingerprint(leaf.Cert)
		start := time.Now()
		if err := kubeletfs.Write(c.nodeSrc, map[string][]byte{
			"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": pkitest.CertPEM(c.ca.Cert),
		}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{c.nativeAddr(), fmt.Sprintf("127.0.0.1:%d", c.storage)} {
			for {
				got, err := servedBy(a, client)
				if err == nil && got == fp {
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("rotation %d: %s serves %s (err %v), want %s", i, a, got, err, fp)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		res.Served = append(res.Served, float64(time.Since(start).Microseconds())/1000)
		time.Sleep(300 * time.Millisecond) // verify done, the next swap a separate event
	}
	sorted := append([]float64(nil), res.Served...)
	sort.Float64s(sorted)
	t.Logf("MEASURED swap → served via Jolokia over %d rotations: min %.0f ms, median %.0f ms, max %.0f ms", n, sorted[0], sorted[n/2], sorted[n-1])
	b, _ := json.Marshal(res)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

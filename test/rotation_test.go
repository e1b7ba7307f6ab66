package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
)

func startSidecar(t *testing.T, c *cluster, reload string) *agentproc.Sidecar {
	t.Helper()
	addr := agentproc.FreeAddr(t)
	cfg := fmt.Sprintf(`
stores:
  - name: node
    source: %s
    passwordFile: %s/keystore-password
    keystore:   {path: "%s/keystore.jks", type: jks, alias: cassandra}
    truststore: {path: "%s/truststore.jks", type: jks}
  - name: client
    source: %s
    pem: {dir: %s/sidecar-pem}
watch: {debounce: 200ms, resync: 5s}
reload:
%s
verify:
  endpoints: [{address: "127.0.0.1:%d", store: node}, {address: "127.0.0.1:%d", store: node}]
  deadline: 30s
wait:
  hosts: ["127.0.0.1:%d"]
  store: client
  usernameFile: %s/username
  passwordFile: %s/password
http: {listen: "%s"}
`, c.nodeSrc, c.secretsDir, c.cryptoDir, c.cryptoDir, c.clientSrc, c.root, reload, c.native, c.storage, c.native, c.cqlDir, c.cqlDir, addr)
	s := agentproc.Start(t, agentBin, "node", addr, cfg, "JMX_PORT="+strconv.Itoa(c.jmx))
	s.WaitReady(t, true, 60*time.Second)
	return s
}

// servedBy dials addr with the test's own TLS client — independent of the
// agent's verify package — and returns the leaf's fingerprint.
func servedBy(addr string, client tls.Certificate) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0]), nil
}

// clientMaterial is the client pod's certificate, for queries.
func clientMaterial(t *testing.T, c *cluster) *pki.Material {
	m, err := pki.Load(pki.Source{Dir: c.clientSrc}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// queryLoop runs queries on one session opened before the rotation until
// stopped, counting errors — bounded to 2,000 queries.
type queryLoop struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	stop       chan struct{}
	done       chan struct{}
}

func startQueries(t *testing.T, c *cluster) *queryLoop {
	m := clientMaterial(t, c)
	client := &cql.Client{TLS: cql.MaterialTLS(m, ""), Username: "cassandra", Password: []byte("cassandra")}
	sess, err := client.Session(t.Context(), c.nativeAddr())
	if err != nil {
		t.Fatal(err)
	}
	q := &queryLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		defer sess.Close()
		for i := 0; i < 2000; i++ {
			select {
			case <-q.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			var v string
			if err := sess.Query("SELECT release_version FROM system.local").Scan(&v); err != nil {
				q.failed.Add(1)
				q.lastErr.Store(err.Error())
			} else {
				q.ok.Add(1)
			}
		}
	}()
	return q
}

// waitOK returns once n queries have succeeded (or fails the test after within).
func (q *queryLoop) waitOK(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for q.ok.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d queries succeeded within %v (failed %d, last: %v)", q.ok.Load(), n, within, q.failed.Load(), q.lastErr.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (q *queryLoop) finish() (ok, failed int64, lastErr any) {
	close(q.stop)
	<-q.done
	return q.ok.Load(), q.failed.Load(), q.lastErr.Load()
}

// rotate publishes a new node leaf (or a broken one) the kubelet's way.
func rotate(t *testing.T, c *cluster, keyFrom *pkitest.Cert) *pkitest.Cert {
	leaf, err := pkitest.Leaf(c.ca, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	key := leaf.Key
	if keyFrom != nil {
		key = keyFrom.Key
	}
	if err := kubeletfs.Write(c.nodeSrc, map[string][]byte{
		"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(key), "ca.crt": pkitest.CertPEM(c.ca.Cert),
	}); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// waitServed polls both ports with an independent client until they serve
// fp, returning how long it took.
func waitServed(t *testing.T, c *cluster, fp string, within time.Duration) time.Duration {
	t.Helper()
	client := clientMaterial(t, c).TLSCertificate()
	start := time.Now()
	for _, addr := range []string{c.nativeAddr(), fmt.Sprintf("127.0.0.1:%d", c.storage)} {
		for {
			got, err := servedBy(addr, client)
			if err == nil && got == fp {
				break
			}
			if time.Since(start) > within {
				t.Fatalf("%s serves %s (err %v), want %s after %v", addr, got, err, fp, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(start)
}

func currentServed(t *testing.T, c *cluster) string {
	fp, err := servedBy(c.nativeAddr(), clientMaterial(t, c).TLSCertificate())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// cassandraRotationTests rotates the running node's certificate through the
// sidecar, once per reload path, and checks a refused rotation.
func cassandraRotationTests(t *testing.T, c *cluster) {
	paths := []struct{ name, reload string }{
		{"jolokia", fmt.Sprintf("  - jolokia: {url: \"http://127.0.0.1:%d/jolokia/\"}", c.jolokia)},
		{"exec nodetool reloadssl", fmt.Sprintf("  - exec: {command: [%q, reloadssl], timeout: 60s}", filepath.Join(repoRoot(), "test", "cassandra", "nodetool.sh"))},
	}
	for i, p := range paths {
		t.Run("sidecar rotates without restart via "+p.name, func(t *testing.T) {
			pid, _ := c.node.PID()
			sc := startSidecar(t, c, p.reload)
			if v := sc.Metric("cassandra_tls_agent_served_certificate_match", fmt.Sprintf(`endpoint="127.0.0.1:%d"`, c.native)); v != 1 {
				t.Errorf("served_certificate_match at start = %v, want 1", v)
			}
			deadline := time.Now().Add(15 * time.Second)
			for sc.Metric("cassandra_tls_agent_cql_up", c.nativeAddr()) != 1 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if v := sc.Metric("cassandra_tls_agent_cql_up", c.nativeAddr()); v != 1 {
				t.Errorf("cql_up = %v, want 1", v)
			}
			q := startQueries(t, c)
			q.waitOK(t, 5, 10*time.Second) // the session is in use before the rotation starts

			leaf := rotate(t, c, nil)
			took := waitServed(t, c, pki.Fingerprint(leaf.Cert), 30*time.Second)
			t.Logf("MEASURED %s: kubelet swap → new certificate served on native and storage ports in %v", p.name, took.Round(time.Millisecond))
			writeMeasurement(t, "rotation_"+strings.Fields(p.name)[0], took.Round(time.Millisecond).String())

			// New connections succeed with the new certificate.
			m := clientMaterial(t, c)
			client := &cql.Client{TLS: cql.MaterialTLS(m, ""), Username: "cassandra", Password: []byte("cassandra")}
			if _, err := client.Probe(context.Background(), c.nativeAddr()); err != nil {
				t.Errorf("new connection after rotation: %v", err)
			}
			q.waitOK(t, q.ok.Load()+5, 10*time.Second) // and keeps answering after it
			ok, failed, lastErr := q.finish()
			if failed != 0 || ok < 5 {
				t.Errorf("queries on the pre-rotation session: %d ok, %d failed (last: %v)", ok, failed, lastErr)
			}
			if after, _ := c.node.PID(); after != pid || !c.node.Running() {
				t.Errorf("Cassandra pid %d → %d: the node was restarted", pid, after)
			}
			action := strings.Fields(p.name)[0]
			deadline = time.Now().Add(10 * time.Second)
			for sc.Metric("cassandra_tls_agent_rotation_seconds_count", `store="node"`) < 1 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if v := sc.Metric("cassandra_tls_agent_rotation_seconds_count", `store="node"`); v < 1 {
				t.Errorf("rotation_seconds_count = %v", v)
			}
			if v := sc.Metric("cassandra_tls_agent_reloads_total", fmt.Sprintf(`action="%s",result="success"`, action)); v < 1 {
				t.Errorf("reloads_total{action=%q,result=success} = %v", action, v)
			}
			if i > 0 {
				return
			}

			// A rotation to a mismatched key is refused: the node keeps
			// serving the last good certificate, the error is counted and
			// /readyz turns unready; the next good rotation recovers.
			good := currentServed(t, c)
			reloads := sc.Metric("cassandra_tls_agent_reloads_total", fmt.Sprintf(`action="%s",result="success"`, action))
			other, err := pkitest.Leaf(c.ca, "impostor", pkitest.P256)
			if err != nil {
				t.Fatal(err)
			}
			rotate(t, c, other)
			// Unready means the sync that refused the change is over: what
			// follows is the state it left, not a race with it.
			sc.WaitReady(t, false, 15*time.Second)
			if v := sc.Metric("cassandra_tls_agent_source_errors_total", `store="node",reason="key_mismatch"`); v < 1 {
				t.Errorf("source_errors_total{store=node,reason=key_mismatch} = %v", v)
			}
			if v := sc.Metric("cassandra_tls_agent_reloads_total", fmt.Sprintf(`action="%s",result="success"`, action)); v != reloads {
				t.Errorf("a refused rotation ran the reload action (%v → %v)", reloads, v)
			}
			if got := currentServed(t, c); got != good {
				t.Errorf("after a refused rotation the node serves %s, want the last good %s", got, good)
			}
			leaf = rotate(t, c, nil)
			waitServed(t, c, pki.Fingerprint(leaf.Cert), 30*time.Second)
			sc.WaitReady(t, true, 30*time.Second)
		})
	}
}

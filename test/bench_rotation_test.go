package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// BenchRotation is what TestBenchRotation writes (milliseconds; instants
// are relative to the node's "listening for CQL clients" line unless named
// otherwise).
type BenchRotation struct {
	Rotations int    `json:"rotations"`
	Debounce  string `json:"debounce"`
	// Swap start → both ports serve the new leaf, per reload path.
	Served         []float64 `json:"served_ms"`          // Jolokia
	ServedNodetool []float64 `json:"served_nodetool_ms"` // exec nodetool reloadssl
	// The agent's init logging "CQL ready" (TLS + auth + query answered),
	// and a TCP-port wait's port open and its first real query (same TLS
	// and credentials, retried every 100 ms) succeeding, with the failures
	// before it.
	InitReadyLag float64 `json:"init_ready_lag_ms"`
	TCPOpenLag   float64 `json:"tcp_open_lag_ms"`
	TCPQueryLag  float64 `json:"tcp_first_query_ok_lag_ms"`
	TCPFailures  int     `json:"tcp_first_query_failures"`
	// FirstAnswer is the earliest moment any client (the agent's init, the
	// TCP-port wait, the phase prober) had an authenticated query answered.
	FirstAnswer float64 `json:"first_answer_lag_ms"`
	// Cold is a raw CQL session started as the port opened, phase by phase;
	// Warm the same on the warm node (medians of 5).
	Cold Phases `json:"cold_phases"`
	Warm Phases `json:"warm_phases"`
	// WarmProbe is the agent's own probe (cql.Client.Probe, in process: a
	// gocql session, then the SELECT) of the warm node, median of 5;
	// InitAttempts the init's probe attempts until CQL answered.
	WarmProbe    float64 `json:"warm_agent_probe_ms"`
	InitAttempts int     `json:"init_attempts"`
	// LastFailed is when the init's last failed probe ended and why: the
	// next began 50–150 ms later (its backoff while the port refuses).
	LastFailed      float64 `json:"init_last_failed_lag_ms"`
	LastFailedCause string  `json:"init_last_failed_cause"`
	// Against the seed's `sleep 840` (from the client init's start, which
	// is before the node's launch): the node's launch and CQL line, and the
	// agent's ready, all from that start.
	LaunchAfterInitStart float64 `json:"launch_after_init_start_ms"`
	NodeStart            float64 `json:"node_start_ms"` // launch → CQL line
	InitReadyFromStart   float64 `json:"init_ready_from_start_ms"`
}

// Phases are the instants of one raw CQL session, each from the same origin
// (ms): TCP connected, TLS handshake done, STARTUP answered (AUTHENTICATE),
// credentials accepted (AUTH_SUCCESS), SELECT answered.
type Phases struct {
	Start, TCP, TLS, Startup, Auth, Query float64
	Err                                   string `json:",omitempty"`
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

// phaseProbe opens one raw CQL v4 session over TLS and timestamps each
// step, from origin: the driver-free view of where a session's time goes.
func phaseProbe(ctx context.Context, addr string, cfg *tls.Config, user, pass string, origin time.Time) Phases {
	since := func() float64 { return float64(time.Since(origin).Microseconds()) / 1000 }
	ph := Phases{Start: since()}
	fail := func(step string, err error) Phases { ph.Err = step + ": " + err.Error(); return ph }
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail("tcp", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ph.TCP = since()
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail("tls", err)
	}
	ph.TLS = since()
	// One request, one response frame: v4 header (version, flags, stream,
	// opcode, length), then the body.
	exchange := func(op byte, body []byte) (byte, []byte, error) {
		h := []byte{0x04, 0, 0, 1, op, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[5:], uint32(len(body)))
		if _, err := tc.Write(append(h, body...)); err != nil {
			return 0, nil, err
		}
		if _, err := io.ReadFull(tc, h); err != nil {
			return 0, nil, err
		}
		n := binary.BigEndian.Uint32(h[5:])
		if n > 1<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes", n)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(tc, b)
		if err == nil && h[4] == 0x00 { // ERROR: [int code][string message]
			err = fmt.Errorf("server error: %q", b[min(6, len(b)):])
		}
		return h[4], b, err
	}
	str := func(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }
	startup := append([]byte{0, 1}, append(str("CQL_VERSION"), str("3.0.0")...)...)
	op, _, err := exchange(0x01, startup)
	if err != nil {
		return fail("startup", err)
	}
	ph.Startup = since()
	if op == 0x03 { // AUTHENTICATE: SASL PLAIN
		tok := []byte("\x00" + user + "\x00" + pass)
		if op, _, err = exchange(0x0F, append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)); err != nil {
			return fail("auth", err)
		}
		if op != 0x10 {
			return fail("auth", fmt.Errorf("opcode %#x, want AUTH_SUCCESS", op))
		}
	}
	ph.Auth = since()
	q := "SELECT release_version FROM system.local"
	body := append(binary.BigEndian.AppendUint32(nil, uint32(len(q))), q...)
	body = append(body, 0, 1, 0) // consistency ONE, no flags
	if op, _, err = exchange(0x07, body); err != nil {
		return fail("query", err)
	}
	if op != 0x08 {
		return fail("query", fmt.Errorf("opcode %#x, want RESULT", op))
	}
	ph.Query = since()
	return ph
}

// phaseProbeAtOpen waits for the port to open, then runs phase probes until
// one succeeds (100 ms apart, for up to a minute): the first session the
// node answers, step by step.
func phaseProbeAtOpen(ctx context.Context, addr string, cfg *tls.Config, user, pass string, origin time.Time) (Phases, int) {
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case <-ctx.Done():
			return Phases{Err: ctx.Err().Error()}, 0
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for failed := 0; ; failed++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ph := phaseProbe(pctx, addr, cfg, user, pass, origin)
		cancel()
		if ph.Err == "" || ctx.Err() != nil {
			return ph, failed
		}
		select {
		case <-ctx.Done():
			return ph, failed
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// relative shifts p so its instants count from the node's CQL line rather
// than from origin.
func (p Phases) relative(shift float64) Phases {
	if p.Err != "" {
		return p
	}
	return Phases{Start: p.Start - shift, TCP: p.TCP - shift, TLS: p.TLS - shift, Startup: p.Startup - shift, Auth: p.Auth - shift, Query: p.Query - shift}
}

// warmPhases is the median of n phase probes of the warm node, each from its own start.
func warmPhases(ctx context.Context, t *testing.T, addr string, cfg *tls.Config, user, pass string, n int) Phases {
	var runs []Phases
	for i := 0; i < n; i++ {
		origin := time.Now()
		ph := phaseProbe(ctx, addr, cfg, user, pass, origin)
		if ph.Err != "" {
			t.Fatalf("warm phase probe: %s", ph.Err)
		}
		runs = append(runs, ph)
	}
	med := func(f func(Phases) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	return Phases{TCP: med(func(p Phases) float64 { return p.TCP }), TLS: med(func(p Phases) float64 { return p.TLS }),
		Startup: med(func(p Phases) float64 { return p.Startup }), Auth: med(func(p Phases) float64 { return p.Auth }),
		Query: med(func(p Phases) float64 { return p.Query })}
}

// warmAgentProbe times the agent's probe (a gocql session per probe, then the
// SELECT) of the warm node in process, median of n.
func warmAgentProbe(ctx context.Context, t *testing.T, qc *cql.Client, addr string, n int) float64 {
	var xs []float64
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := qc.Probe(ctx, addr); err != nil {
			t.Fatalf("warm probe: %v", err)
		}
		xs = append(xs, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// lastFailedProbe finds the init's last "CQL not ready" line: when and why.
func lastFailedProbe(log string) (time.Time, string) {
	var at time.Time
	var cause string
	for _, l := range strings.Split(log, "\n") {
		var v struct {
			Time  time.Time `json:"time"`
			Msg   string    `json:"msg"`
			Cause string    `json:"cause"`
		}
		if json.Unmarshal([]byte(l), &v) == nil && v.Msg == "CQL not ready" {
			at, cause = v.Time, v.Cause
		}
	}
	return at, cause
}

// initAttempts reads the attempt count from the init's "CQL ready" line.
func initAttempts(log string) int {
	for _, l := range strings.Split(log, "\n") {
		var v struct {
			Msg      string `json:"msg"`
			Attempts int    `json:"attempts"`
		}
		if json.Unmarshal([]byte(l), &v) == nil && v.Msg == "CQL ready" {
			return v.Attempts
		}
	}
	return 0
}

// TestBenchRotation times, on one real node:
//   - a client init started before the node: its ready lag after the node's
//     "listening for CQL clients" line, against a TCP-port wait and its first
//     real query; when the node first answered any client; a raw session's
//     steps, cold and warm; and the whole from the init's start, against the
//     seed's `sleep 840`;
//   - a kubelet-style swap of the node's Secret → the new leaf served on the
//     CQL and the internode port (fresh handshakes of an independent client),
//     through the sidecar with the minimum debounce, reloading through
//     Jolokia, then through `exec nodetool reloadssl`.
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
	// A client's init, a TCP-port wait and a raw phase prober, all started
	// before the node.
	m := clientMaterial(t, c)
	initCmd := exec.Command(agentBin, "init", "--config", c.clientConfig(t))
	// At debug level the init logs every probe attempt: when the last
	// refused one ended bounds what its backoff added.
	initCmd.Env = append(os.Environ(), "CASSANDRA_TLS_AGENT_LOG_LEVEL=debug")
	var initLog bytes.Buffer
	initCmd.Stderr = &initLog
	initStart := time.Now()
	if err := initCmd.Start(); err != nil {
		t.Fatal(err)
	}
	initDone := make(chan error, 1)
	go func() { initDone <- initCmd.Wait() }()
	qc := &cql.Client{TLS: cql.MaterialTLS(m, ""), Username: "cassandra", Password: []byte("cassandra")}
	tcpDone := make(chan tcpWait, 1)
	go func() { tcpDone <- waitTCPThenQuery(ctx, c.nativeAddr(), qc) }()
	type phaseResult struct {
		ph     Phases
		failed int
	}
	phaseDone := make(chan phaseResult, 1)
	go func() {
		ph, failed := phaseProbeAtOpen(ctx, c.nativeAddr(), cql.MaterialTLS(m, ""), "cassandra", "cassandra", initStart)
		phaseDone <- phaseResult{ph, failed}
	}()
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
	pr := <-phaseDone
	if pr.ph.Err != "" {
		t.Fatalf("phase prober: %s", pr.ph.Err)
	}
	cqlReady, err := node.CQLReadyAt()
	if err != nil {
		t.Fatal(err)
	}
	launched, err := node.LaunchedAt()
	if err != nil {
		t.Fatal(err)
	}
	lag := func(at time.Time) float64 { return float64(at.Sub(cqlReady).Microseconds()) / 1000 }
	fromStart := func(at time.Time) float64 { return float64(at.Sub(initStart).Microseconds()) / 1000 }
	initReady := logTime(t, initLog.String(), "CQL ready")
	res := BenchRotation{Rotations: n,
		InitReadyLag: lag(initReady), TCPOpenLag: lag(tw.open), TCPQueryLag: lag(tw.ok), TCPFailures: tw.failures,
		Cold: pr.ph.relative(fromStart(cqlReady)), Warm: warmPhases(ctx, t, c.nativeAddr(), cql.MaterialTLS(m, ""), "cassandra", "cassandra", 5),
		LaunchAfterInitStart: fromStart(launched), NodeStart: float64(cqlReady.Sub(launched).Microseconds()) / 1000,
		InitReadyFromStart: fromStart(initReady)}
	res.FirstAnswer = min(res.InitReadyLag, res.TCPQueryLag, res.Cold.Query)
	res.WarmProbe, res.InitAttempts = warmAgentProbe(ctx, t, qc, c.nativeAddr(), 5), initAttempts(initLog.String())
	if at, cause := lastFailedProbe(initLog.String()); !at.IsZero() {
		res.LastFailed, res.LastFailedCause = lag(at), cause
	}
	for _, l := range strings.Split(initLog.String(), "\n") {
		var v struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(l), &v) == nil && v.Time.After(cqlReady.Add(-time.Second)) && (strings.HasPrefix(v.Msg, "CQL") || strings.HasPrefix(v.Msg, "gocql")) {
			t.Logf("init %+.0f ms: %s", lag(v.Time), l)
		}
	}
	t.Logf("MEASURED after the node's CQL line: init ready %.0f ms; TCP port open %.0f ms, its first query answered %.0f ms after %d failures; "+
		"first answer to any client %.0f ms; raw session started at the port's opening (%d failed before): %+v; warm: %+v",
		res.InitReadyLag, res.TCPOpenLag, res.TCPQueryLag, res.TCPFailures, res.FirstAnswer, pr.failed, res.Cold, res.Warm)
	t.Logf("MEASURED from the client init's start: node launched %.0f ms, its CQL line %.0f ms later, init ready at %.0f ms (a sleep 840 ends at 840000 ms)",
		res.LaunchAfterInitStart, res.NodeStart, res.InitReadyFromStart)

	const debounce = "1ms"
	res.Debounce = debounce
	jolokia := fmt.Sprintf(`  - jolokia: {url: "http://127.0.0.1:%d/jolokia/"}`, c.jolokia)
	nodetool := fmt.Sprintf("  - exec: {command: [%q, reloadssl], timeout: 60s}", filepath.Join(repoRoot(), "test", "cassandra", "nodetool.sh"))
	res.Served = benchServed(t, c, debounce, jolokia, n, "jolokia")
	res.ServedNodetool = benchServed(t, c, debounce, nodetool, n, "nodetool")
	b, _ := json.Marshal(res)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// benchServed runs the node's sidecar with reload (a YAML list entry) and
// swaps the node's Secret n times, returning for each the time from the
// swap's start until both ports serve the new leaf to fresh handshakes.
func benchServed(t *testing.T, c *cluster, debounce, reload string, n int, name string) []float64 {
	addr := agentproc.FreeAddr(t)
	cfg := fmt.Sprintf(`
stores:
  - name: node
    source: %s
    passwordFile: %s/keystore-password
    keystore:   {path: "%s/keystore.jks", type: jks, alias: cassandra}
    truststore: {path: "%s/truststore.jks", type: jks}
watch: {debounce: %s, resync: 1m}
reload:
%s
verify:
  endpoints: [{address: "127.0.0.1:%d", store: node}, {address: "127.0.0.1:%d", store: node}]
  deadline: 30s
http: {listen: "%s"}
log: {level: warn}
`, c.nodeSrc, c.secretsDir, c.cryptoDir, c.cryptoDir, debounce, reload, c.native, c.storage, addr)
	s := agentproc.Start(t, agentBin, "node-"+name, addr, cfg, "JMX_PORT="+strconv.Itoa(c.jmx))
	defer s.Stop(t)
	s.WaitReady(t, true, 60*time.Second)
	client := clientMaterial(t, c).TLSCertificate()
	var served []float64
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
				if time.Since(start) > 60*time.Second {
					t.Fatalf("%s rotation %d: %s serves %s (err %v), want %s", name, i, a, got, err, fp)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		served = append(served, float64(time.Since(start).Microseconds())/1000)
		// The sidecar's verify done and ready again: the next swap is a
		// separate event, not one more file of this one.
		s.WaitReady(t, true, 60*time.Second)
		time.Sleep(300 * time.Millisecond)
	}
	sorted := append([]float64(nil), served...)
	sort.Float64s(sorted)
	t.Logf("MEASURED swap → served via %s over %d rotations: min %.0f ms, median %.0f ms, max %.0f ms", name, n, sorted[0], sorted[n/2], sorted[n-1])
	return served
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// phases mirrors the test's Phases: one raw CQL session's instants (ms).
type phases struct {
	Start, TCP, TLS, Startup, Auth, Query float64
}

// steps describes a session's steps as durations.
func (p phases) steps() string {
	return fmt.Sprintf("TCP %.0f, TLS handshake %.0f, STARTUP %.0f, auth %.0f, SELECT %.0f ms",
		p.TCP-p.Start, p.TLS-p.TCP, p.Startup-p.TLS, p.Auth-p.Startup, p.Query-p.Auth)
}

// benchTest runs one end-to-end benchmark test (it starts real Cassandra
// nodes) with env set to a JSON file it fills, under flock(1) on lock when
// lock is set, and decodes that file into v.
func benchTest(dir, lock, pkg, test, env, timeout string, v any) error {
	out := filepath.Join(dir, test+".json")
	argv := []string{"go", "test", "-count=1", "-v", "-run", "^" + test + "$", "-timeout", timeout, pkg}
	if lock != "" {
		argv = append([]string{"flock", lock}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env+"="+out)
	logs, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, "MEASURED") {
			fmt.Fprintln(os.Stderr, strings.TrimSpace(l))
		}
	}
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(out); err == nil {
			err = json.Unmarshal(b, v)
		}
	}
	if err != nil {
		tail := string(logs)
		if i := strings.LastIndex(tail, "\n---"); i > 0 {
			tail = tail[i:]
		}
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		fmt.Fprintf(os.Stderr, "bench: %s not measured: %v\n%s\n", test, err, tail)
	}
	return err
}

// rotationRows runs the end-to-end package's TestBenchRotation (one real
// Cassandra 5.0 node: a client init started before it, then the sidecar
// reloading through Jolokia and through nodetool) and turns what it writes
// into rows. A node that cannot be started (no JDK or jars, the lock held
// too long) makes rows that say so rather than failing the whole table.
func rotationRows(dir, lock string) []Row {
	const timer = "Cassandra's own keystore reload timer (600 s, a constant of Cassandra, not measured)"
	var res struct {
		Rotations      int       `json:"rotations"`
		Debounce       string    `json:"debounce"`
		Served         []float64 `json:"served_ms"`
		ServedNodetool []float64 `json:"served_nodetool_ms"`
		InitReady      float64   `json:"init_ready_lag_ms"`
		TCPOpen        float64   `json:"tcp_open_lag_ms"`
		TCPQuery       float64   `json:"tcp_first_query_ok_lag_ms"`
		TCPFails       int       `json:"tcp_first_query_failures"`
		FirstAnswer    float64   `json:"first_answer_lag_ms"`
		Cold           phases    `json:"cold_phases"`
		Warm           phases    `json:"warm_phases"`
		Launch         float64   `json:"launch_after_init_start_ms"`
		NodeStart      float64   `json:"node_start_ms"`
		InitFromStart  float64   `json:"init_ready_from_start_ms"`
		WarmProbe      float64   `json:"warm_agent_probe_ms"`
		InitAttempts   int       `json:"init_attempts"`
		LastFailed     float64   `json:"init_last_failed_lag_ms"`
		LastCause      string    `json:"init_last_failed_cause"`
	}
	if err := benchTest(dir, lock, "./test/", "TestBenchRotation", "CASSANDRA_TLS_AGENT_BENCH_ROTATION", "30m", &res); err != nil || len(res.Served) == 0 {
		return []Row{{Section: "rotation", Measure: "source swap → new leaf served by a real node", Alternative: timer,
			Other: 600000, Unit: "ms", Note: fmt.Sprintf("NOT MEASURED in this run: %v", err)}}
	}
	rows := []Row{
		{Section: "init", Measure: "init ready lag after the node's \"listening for CQL clients\" line (TLS + auth + query answered), one node start",
			Agent: res.InitReady, Alternative: "TCP-port wait, then the real query retried every 100 ms",
			Other: res.TCPQuery, Unit: "ms", Ratio: res.TCPQuery / res.InitReady,
			Note: fmt.Sprintf("the port answered at %+.0f ms and the first real query failed %d times before answering; the node first answered any client at %+.0f ms, so the agent's own share is %.0f ms: its last failed probe (%s) ended at %+.0f ms and its backoff began the next 50–150 ms later (%d attempts in all); each probe is a gocql session (a control and a pool connection, each TLS + auth, then the SELECT)",
				res.TCPOpen, res.TCPFails, res.FirstAnswer, res.InitReady-res.FirstAnswer, res.LastCause, res.LastFailed, res.InitAttempts)},
		{Section: "init", Measure: "where the ready lag goes: a raw CQL session begun as the port opened (cold node), begin → SELECT answered",
			Agent: res.Cold.Query - res.Cold.Start, Alternative: "the same session on the warm node (median of 5)", Other: res.Warm.Query - res.Warm.Start, Unit: "ms",
			Note: fmt.Sprintf("begun at %+.0f ms; cold: %s; warm: %s (auth is PasswordAuthenticator's bcrypt, at every login); the agent's own probe of the warm node, a gocql session then the SELECT: %.0f ms",
				res.Cold.Start, res.Cold.steps(), res.Warm.steps(), res.WarmProbe)},
		{Section: "init", Measure: "client ready after its pod started (the client init started before the node)",
			Agent: res.InitFromStart, Alternative: "the seed's `sleep 840`", Other: 840000, Unit: "ms", Ratio: 840000 / res.InitFromStart,
			Note: fmt.Sprintf("= node launched %.0f ms after the init + node start (launch → CQL line) %.0f ms + ready lag %.0f ms; the sleep idles %.0f s longer, and a node slower than 840 s fails blind",
				res.Launch, res.NodeStart, res.InitReady, (840000-res.InitFromStart)/1000)},
	}
	served := func(name string, xs []float64, first bool) []Row {
		p50, p99 := quantile(xs, 0.5), quantile(xs, 0.99)
		m := "source swap → new leaf served by a real node (" + name + ")"
		r := []Row{
			{Section: "rotation", Measure: m + ", p50", Agent: p50, Alternative: timer, Other: 600000, Unit: "ms", Ratio: 600000 / p50},
			{Section: "rotation", Measure: m + ", p99", Agent: p99, Alternative: timer, Other: 600000, Unit: "ms", Ratio: 600000 / p99},
		}
		if first {
			r[0].Note = fmt.Sprintf("Cassandra 5.0.9, %d rotations per path, debounce %s, fresh TLS handshakes on the CQL and internode ports; p99 of 20 is the slowest", len(xs), res.Debounce)
		}
		return r
	}
	rows = append(rows, served("Jolokia", res.Served, true)...)
	if len(res.ServedNodetool) > 0 {
		rows = append(rows, served("exec `nodetool reloadssl`", res.ServedNodetool, false)...)
	}
	return rows
}

// clusterRows runs test/cluster's TestBenchCARotation (a 3-node cluster on
// 127.0.0.11–13, one gated sidecar per node) and turns it into a row against
// a rolling restart measured in the same run.
func clusterRows(dir, lock string) []Row {
	var res struct {
		Nodes     int       `json:"nodes"`
		Converged []float64 `json:"converged_ms"`
		Restart   float64   `json:"restart_ms"`
	}
	const m = "3-node CA rotation: every node's Secret and trust bundle switched → every node serves the new CA on both ports"
	if err := benchTest(dir, lock, "./test/cluster/", "TestBenchCARotation", "CASSANDRA_TLS_AGENT_BENCH_CLUSTER", "40m", &res); err != nil || len(res.Converged) == 0 {
		return []Row{{Section: "cluster", Measure: m, Alternative: "rolling restarts", Unit: "ms", Note: fmt.Sprintf("NOT MEASURED in this run: %v", err)}}
	}
	alt := fmt.Sprintf("two rolling restarts (trust, then leaves): 2 × %d × one node restart measured in this run (%.1f s)", res.Nodes, res.Restart/1000)
	other := 2 * float64(res.Nodes) * res.Restart
	p50, worst := quantile(res.Converged, 0.5), quantile(res.Converged, 1)
	return []Row{
		{Section: "cluster", Measure: m + ", p50", Agent: p50, Alternative: alt, Other: other, Unit: "ms", Ratio: other / p50,
			Note: fmt.Sprintf("%d rotations, gates on (trust widened first, leaves held until every peer trusts the new CA, re-probed every 1 s), debounce 200 ms, Jolokia reload; Cassandra's timer alone would take up to 2 × 600 s and partitions the cluster unless trust is everywhere first", len(res.Converged))},
		{Section: "cluster", Measure: m + ", slowest", Agent: worst, Alternative: alt, Other: other, Unit: "ms", Ratio: other / worst},
	}
}

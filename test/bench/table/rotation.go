package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// rotationRows runs the end-to-end package's TestBenchRotation (one real
// Cassandra 5.0 node, the sidecar reloading through Jolokia) and turns what
// it writes into rows. A node that cannot be started (no JDK or jars, the
// machine's node lock held too long) makes a row that says so rather than
// failing the whole table.
func rotationRows(dir string) []Row {
	out := filepath.Join(dir, "rotation.json")
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestBenchRotation$", "-timeout", "20m", "./test/")
	cmd.Env = append(os.Environ(), "CASSANDRA_TLS_AGENT_BENCH_ROTATION="+out)
	const alt = "Cassandra's own keystore reload timer (600 s, a constant of Cassandra, not measured)"
	logs, err := cmd.CombinedOutput()
	var res struct {
		Rotations int       `json:"rotations"`
		Debounce  string    `json:"debounce"`
		Served    []float64 `json:"served_ms"`
		InitReady float64   `json:"init_ready_lag_ms"`
		TCPOpen   float64   `json:"tcp_open_lag_ms"`
		TCPQuery  float64   `json:"tcp_first_query_ok_lag_ms"`
		TCPFails  int       `json:"tcp_first_query_failures"`
	}
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(out); err == nil {
			err = json.Unmarshal(b, &res)
		}
	}
	if err != nil || len(res.Served) == 0 {
		tail := string(logs)
		if i := strings.LastIndex(tail, "\n---"); i > 0 {
			tail = tail[i:]
		}
		fmt.Fprintf(os.Stderr, "bench: rotation on a real node not measured: %v\n%s\n", err, tail)
		return []Row{{Section: "rotation", Measure: "source swap → new leaf served by a real node (Jolokia)", Alternative: alt,
			Other: 600000, Unit: "ms", Note: fmt.Sprintf("NOT MEASURED in this run: %v", err)}}
	}
	p50, p99 := quantile(res.Served, 0.5), quantile(res.Served, 0.99)
	note := fmt.Sprintf("Cassandra 5.0.9, %d rotations, debounce %s, fresh TLS handshakes on the CQL and internode ports; p99 of 20 is the slowest",
		len(res.Served), res.Debounce)
	rows := []Row{}
	if res.InitReady != 0 {
		rows = append(rows, Row{Section: "init", Measure: "init ready lag after the node's \"listening for CQL clients\" line (TLS + auth + query answered), one node start",
			Agent: res.InitReady, Alternative: "TCP-port wait, then the real query retried every 100 ms",
			Other: res.TCPQuery, Unit: "ms", Ratio: res.TCPQuery / res.InitReady,
			Note: fmt.Sprintf("the port answered at %+.0f ms and the first real query failed %d times before answering; a seed's sleep 840 waits 840 s from pod start", res.TCPOpen, res.TCPFails)})
	}
	return append(rows, []Row{
		{Section: "rotation", Measure: "source swap → new leaf served by a real node (Jolokia), p50", Agent: p50, Alternative: alt,
			Other: 600000, Unit: "ms", Ratio: 600000 / p50, Note: note},
		{Section: "rotation", Measure: "source swap → new leaf served by a real node (Jolokia), p99", Agent: p99, Alternative: alt,
			Other: 600000, Unit: "ms", Ratio: 600000 / p99},
	}...)
}

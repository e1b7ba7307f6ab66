package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
)

// benchClusterEnv names the JSON file TestBenchCARotation writes; without it
// the test is skipped: it is a row of `make bench`'s table, not part of
// `make test`.
const benchClusterEnv = "CASSANDRA_TLS_AGENT_BENCH_CLUSTER"

// BenchCARotation is what TestBenchCARotation writes (milliseconds).
type BenchCARotation struct {
	Nodes int `json:"nodes"`
	// Converged is, per rotation, from the first source file written (every
	// node's Secret and trust bundle switched to the new CA at once, as
	// cert-manager and trust-manager do) until every node serves a leaf of
	// the new CA on its CQL and its internode port.
	Converged []float64 `json:"converged_ms"`
	// Restart is one rolling-restart step measured in the same run: SIGTERM
	// to one node → every node sees every node live again.
	Restart float64 `json:"restart_ms"`
}

// TestBenchCARotation switches the running cluster's CA several times with
// one gated sidecar per node (trust widened first, leaves held until every
// peer trusts the new CA) and times sources switched → every node serves the
// new CA, then measures one node restart, the step a rolling restart repeats.
// It ends on the fixture's CA, so the cluster is left as it was found.
func TestBenchCARotation(t *testing.T) {
	out := os.Getenv(benchClusterEnv)
	if out == "" {
		t.Skipf("a benchmark: set %s=FILE (make bench does)", benchClusterEnv)
	}
	rotations := 10
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	mustAllUp(ctx, t)
	res := BenchCARotation{Nodes: len(fx.Nodes)}

	// The alternative's unit step first, while no sidecar runs: the last
	// node (not the seed) restarted until all see all again.
	rt, err := fx.Cluster.Restart(ctx, len(fx.Nodes)-1)
	if err != nil {
		t.Fatal(err)
	}
	res.Restart = float64(rt.AllUp.Sub(rt.Begin).Microseconds()) / 1000
	t.Logf("MEASURED one node restart (SIGTERM → all see all): %.1f s", res.Restart/1000)

	root := t.TempDir()
	trustDir := make([]string, len(fx.Nodes))
	for i, n := range fx.Nodes {
		trustDir[i] = filepath.Join(root, n.Name+"-trust")
		bundle(t, trustDir[i], fx.CA)
	}
	var sidecars []*agentproc.Sidecar
	for i, n := range fx.Nodes {
		addr := agentproc.FreeAddr(t)
		sidecars = append(sidecars, agentproc.Start(t, fx.Agent, n.Name, addr, nodeConfig(n, trustDir[i], addr, true)))
	}
	for _, sc := range sidecars {
		sc.WaitReady(t, true, 90*time.Second)
	}

	prev := fx.CA
	for k := 0; k <= rotations; k++ {
		next := fx.CA // the last switch returns to the fixture's CA
		if k < rotations {
			next = newCA(t, string(rune('B'+k)))
		}
		begin := time.Now()
		for i, n := range fx.Nodes {
			bundle(t, trustDir[i], prev, next)
			if _, err := fx.IssueNode(n, next, next); err != nil {
				t.Fatal(err)
			}
		}
		done := waitAllIssuedBy(ctx, t, next.Cert.Subject.CommonName, 3*time.Minute)
		if k < rotations {
			res.Converged = append(res.Converged, float64(done.Sub(begin).Microseconds())/1000)
			t.Logf("MEASURED rotation %d to %s: sources switched → every node serves it on both ports in %v",
				k+1, next.Cert.Subject.CommonName, done.Sub(begin).Round(time.Millisecond))
		}
		mustAllUp(ctx, t)
		for _, sc := range sidecars {
			sc.WaitReady(t, true, 90*time.Second)
		}
		prev = next
	}
	sorted := append([]float64(nil), res.Converged...)
	sort.Float64s(sorted)
	t.Logf("MEASURED %d CA rotations of %d nodes: min %.0f ms, median %.0f ms, max %.0f ms", rotations, len(fx.Nodes),
		sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1])
	b, _ := json.Marshal(res)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitAllIssuedBy polls every node's CQL and internode port (fresh
// handshakes, 20 ms apart) until each serves a leaf issued by issuerCN,
// returning when the last one did.
func waitAllIssuedBy(ctx context.Context, t *testing.T, issuerCN string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	var pending []string
	for _, n := range fx.Nodes {
		pending = append(pending, n.Node.NativeAddr(), n.Node.StorageAddr())
	}
	for {
		var still []string
		for _, addr := range pending {
			if servedIssuerCN(ctx, addr) != issuerCN {
				still = append(still, addr)
			}
		}
		if len(still) == 0 {
			return time.Now()
		}
		pending = still
		if time.Now().After(deadline) {
			t.Fatalf("not every node serves a leaf of %q within %v: %v still do not", issuerCN, within, pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func servedIssuerCN(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if o := peers.Probe(ctx, addr, peers.ProbeOptions{}); len(o.Chain) > 0 {
		return o.Chain[0].Issuer.CommonName
	}
	return fmt.Sprintf("(nothing served on %s)", addr)
}

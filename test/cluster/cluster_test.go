package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/workload"
)

// TestClusterUp: every node's gossip (Jolokia, StorageService) sees all three nodes live and
// normal, they agree on the host ids, and each node serves its own certificate on CQL.
func TestClusterUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	views, err := fx.Cluster.WaitAllUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eps := fx.Cluster.Endpoints()
	var hostIDs map[string]string
	for i, v := range views {
		n := fx.Nodes[i]
		t.Logf("%s", v)
		if !slices.Equal(v.Live, eps) || len(v.Unreachable) != 0 {
			t.Errorf("%s: LiveNodesWithPort %q UnreachableNodesWithPort %q, want %q and none", n.Name, v.Live, v.Unreachable, eps)
		}
		if !slices.Equal(v.LiveHosts, fx.Coordinators()) {
			t.Errorf("%s: LiveNodes %q, want %q", n.Name, v.LiveHosts, fx.Coordinators())
		}
		for _, ep := range eps {
			if st := v.Status(ep); st != "UN" {
				t.Errorf("%s sees %s as %s, want UN", n.Name, ep, st)
			}
		}
		if len(v.HostIDs) != len(eps) {
			t.Errorf("%s knows %d host ids, want %d: %v", n.Name, len(v.HostIDs), len(eps), v.HostIDs)
		}
		if hostIDs == nil {
			hostIDs = v.HostIDs
		} else if !mapsEqual(hostIDs, v.HostIDs) {
			t.Errorf("%s's host ids %v differ from %s's %v", n.Name, v.HostIDs, fx.Nodes[0].Name, hostIDs)
		}
	}
	// The raw attribute values, as another component parsing them will get them.
	raw, err := cassnode.ReadAttributes(ctx, fx.Nodes[0].Node.JolokiaURL(), cassnode.StorageServiceMBean,
		"LiveNodesWithPort", "UnreachableNodesWithPort", "LiveNodes")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(raw)
	t.Logf("raw from %s: %s", fx.Nodes[0].Node.JolokiaURL(), b)

	pids := map[int]bool{}
	for _, n := range fx.Nodes {
		pid, err := n.Node.PID()
		if err != nil || !n.Node.Running() || pids[pid] {
			t.Errorf("%s: pid %d (%v), running %v", n.Name, pid, err, n.Node.Running())
		}
		pids[pid] = true
		// Each node serves its own leaf on its own address.
		conn, err := tls.Dial("tcp", n.Node.NativeAddr(), &tls.Config{InsecureSkipVerify: true,
			Certificates: []tls.Certificate{{Certificate: [][]byte{fx.Client.Leaf.Cert.Raw}, PrivateKey: fx.Client.Leaf.Key}}})
		if err != nil {
			t.Errorf("%s: TLS to %s: %v", n.Name, n.Node.NativeAddr(), err)
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !leaf.Equal(n.Leaf.Cert) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP(n.Addr)) {
			t.Errorf("%s serves %s with IPs %v, want its own leaf for %s", n.Name, leaf.Subject, leaf.IPAddresses, n.Addr)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestWorkloadSteady: ~15 s of writes and reads at QUORUM and ALL through each coordinator,
// no retries: not one may fail, and every coordinator and level must have been exercised.
func TestWorkloadSteady(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mustAllUp(ctx, t)
	opts := fx.WorkloadOptions()
	opts.Duration = 15 * time.Second
	opts.Rate = 20
	w, err := workload.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("the workload did not end after its 15 s: %v", ctx.Err())
	}
	r := w.Stop()
	t.Logf("%s", r.Summary())
	measure("steady_workload", "%d queries in %v, %d failed", r.Total, r.End.Sub(r.Start).Round(time.Millisecond), len(r.Failures))
	for _, f := range r.Failures {
		t.Errorf("failed: %s", f)
	}
	// 20/s for 15 s is 300. The rate is a ceiling: a query slower than its slot delays the
	// next one (no pile-up), and this 2-core machine is often shared; half is plenty to show
	// that the workload ran.
	if r.Total < 150 {
		t.Errorf("only %d queries in 15 s at 20/s", r.Total)
	}
	for _, c := range fx.Coordinators() {
		for _, cl := range []string{"QUORUM", "ALL"} {
			if n := r.Counts[workload.Key{Coordinator: c, Consistency: cl}].Total; n < 20 {
				t.Errorf("%s at %s: %d queries, want at least 20", c, cl, n)
			}
		}
	}
}

// TestInternodeSocketsKilled: destroying internode connections (ss -K) — first every socket of
// node 2, then every socket of the cluster — is absorbed: Cassandra reconnects, every node keeps
// (or regains) seeing all live, and no QUORUM query fails.
func TestInternodeSocketsKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustAllUp(ctx, t)
	w, err := workload.Start(ctx, fx.WorkloadOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitServing(ctx, t, w, time.Now())

	rounds := []struct {
		name  string
		nodes []int // whose connections die; nil: every node's
	}{
		{"node2", []int{1}},
		{"all", nil},
	}
	for _, round := range rounds {
		killedNode := func(i int) bool { return round.nodes == nil || slices.Contains(round.nodes, i) }
		affected := func(i, j int) bool { return killedNode(i) || killedNode(j) }
		before, _ := waitMesh(ctx, t, nil, nil)
		t.Logf("%s: internode sockets before: %v", round.name, before)
		old := map[Conn]bool{}
		for _, c := range before {
			old[c] = true
		}
		t0 := time.Now()
		killed, err := fx.KillInternode(ctx, round.nodes...)
		if err != nil {
			t.Fatal(err)
		}
		// Every connection that existed between affected pairs must be gone: a survivor means
		// the filter misses a direction. (ss counts fewer sockets than twice the connections:
		// on loopback, destroying one end resets the other before ss reaches it.)
		after, err := fx.InternodeConns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		afterSet := map[Conn]bool{}
		for _, c := range after {
			afterSet[c] = true
		}
		var gone, survived int
		for i, row := range fx.MeshEdges(before) {
			for j, conns := range row {
				for _, c := range conns {
					if i == j || !affected(i, j) {
						continue
					}
					if afterSet[c] {
						survived++
						t.Errorf("%s: %s→%s connection %s → %s survived ss -K", round.name, fx.Nodes[i].Name, fx.Nodes[j].Name, c.Local, c.Peer)
					} else {
						gone++
					}
				}
			}
		}
		if killed == 0 || gone == 0 {
			t.Errorf("%s: ss -K killed %d sockets, %d connections gone: nothing was cut", round.name, killed, gone)
		}
		_, meshAt := waitMesh(ctx, t, old, affected)
		upCtx, upCancel := context.WithTimeout(ctx, time.Minute)
		_, err = fx.Cluster.WaitAllUp(upCtx)
		upCancel()
		if err != nil {
			t.Fatalf("%s: after ss -K: %v", round.name, err)
		}
		allUp := time.Since(t0)
		t.Logf("%s: ss -K killed %d sockets (%d connections gone); every pair reconnected in %v; every node saw all live %v after the kill",
			round.name, killed, gone, meshAt.Sub(t0).Round(time.Millisecond), allUp.Round(time.Millisecond))
		measure("sskill_"+round.name, "%d connections cut (%d sockets killed); mesh reconnected in %v; all see all after %v",
			gone, killed, meshAt.Sub(t0).Round(time.Millisecond), allUp.Round(time.Millisecond))
		// Watch ~3 s more of traffic (60 queries at 20/s): late failures count too.
		waitServing(ctx, t, w, time.Now())
		waitQueries(ctx, t, w, 60)
	}
	r := w.Stop()
	t.Logf("%s", r.Summary())
	if fs := r.FailuresOf("", "QUORUM"); len(fs) > 0 {
		for _, f := range fs {
			t.Errorf("QUORUM query failed: %s", f)
		}
	}
	for _, f := range r.FailuresOf("", "ALL") {
		t.Logf("ALL query failed (allowed: a message in flight on a killed socket is lost): %s", f)
	}
	measure("sskill_workload", "%d queries, %d failed at QUORUM, %d at ALL", r.Total, r.Failed["QUORUM"], r.Failed["ALL"])
}

// TestRestartNode2: restarting node 2 through the harness leaves nodes 1 and 3 running (same
// PIDs) while node 2 gets a new one; no QUORUM query through nodes 1 and 3 fails; ALL queries
// fail only while node 2 is down, and coordinator 2 serves again once it is back.
func TestRestartNode2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mustAllUp(ctx, t)
	pids := pids(t)
	w, err := workload.Start(ctx, fx.WorkloadOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitServing(ctx, t, w, time.Now())

	// What the others' gossip says while node 2 is down, for the record.
	downSeen := make(chan string, 1)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			raw, err := cassnode.ReadAttributes(ctx, fx.Nodes[0].Node.JolokiaURL(), cassnode.StorageServiceMBean,
				"LiveNodesWithPort", "UnreachableNodesWithPort")
			if err == nil && !strings.Contains(string(raw["UnreachableNodesWithPort"]), "[]") {
				b, _ := json.Marshal(raw)
				downSeen <- string(b)
				return
			}
		}
	}()

	rt, err := fx.Cluster.Restart(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-downSeen:
		t.Logf("node1's gossip while node2 was down: %s", s)
	default:
		t.Errorf("node1's gossip never reported node2 unreachable during its restart")
	}
	measure("restart_node2", "stop %v, start to CQL %v, all see all %v after CQL; down window (stop begun → all see all) %v",
		rt.Stopped.Sub(rt.Begin).Round(time.Millisecond), rt.CQLUp.Sub(rt.Stopped).Round(time.Millisecond),
		rt.AllUp.Sub(rt.CQLUp).Round(time.Millisecond), rt.AllUp.Sub(rt.Begin).Round(time.Millisecond))
	// Coordinator 2's session finds its node again (the driver re-dials every second).
	waitServing(ctx, t, w, rt.AllUp)
	r := w.Stop()
	t.Logf("%s", r.Summary())

	for i, n := range fx.Nodes {
		pid, err := n.Node.PID()
		switch {
		case err != nil || !n.Node.Running():
			t.Errorf("%s is not running after the restart (pid %d, %v)", n.Name, pid, err)
		case i == 1 && pid == pids[i]:
			t.Errorf("%s kept pid %d: it was not restarted", n.Name, pid)
		case i != 1 && pid != pids[i]:
			t.Errorf("%s's pid changed %d → %d: only node2 was to restart", n.Name, pids[i], pid)
		}
	}
	node2 := fx.Nodes[1].Addr
	for _, f := range r.FailuresOf("", "QUORUM") {
		if f.Coordinator != node2 {
			t.Errorf("QUORUM query through a live coordinator failed: %s", f)
		}
	}
	// A query sent before the restart began or after every node saw all live again must not
	// fail through nodes 1 and 3; through node 2 the driver needs up to its reconnect
	// interval (1 s) plus a handshake to notice the node is back.
	var first, last time.Time
	for _, f := range r.Failures {
		end := rt.AllUp
		if f.Coordinator == node2 {
			end = rt.AllUp.Add(3 * time.Second)
		}
		if f.At.Before(rt.Begin) || f.At.After(end) {
			t.Errorf("failure outside node2's down window [%s, %s]: %s", rt.Begin.Format("15:04:05.000"), end.Format("15:04:05.000"), f)
		}
		if f.Consistency == "ALL" && f.Coordinator != node2 {
			if first.IsZero() {
				first = f.At
			}
			last = f.At
		}
	}
	if first.IsZero() {
		t.Errorf("no ALL query failed through nodes 1 and 3 while node 2 was down: was it really down?")
	} else {
		measure("restart_failures", "ALL through nodes 1,3: %d failed, from %v to %v after the stop began; coordinator 2: %d failed; QUORUM through 1,3: %d failed",
			len(r.FailuresOf(fx.Nodes[0].Addr, "ALL"))+len(r.FailuresOf(fx.Nodes[2].Addr, "ALL")),
			first.Sub(rt.Begin).Round(time.Millisecond), last.Sub(rt.Begin).Round(time.Millisecond),
			len(r.FailuresOf(node2, "")),
			len(r.FailuresOf(fx.Nodes[0].Addr, "QUORUM"))+len(r.FailuresOf(fx.Nodes[2].Addr, "QUORUM")))
	}
}

// waitQueries waits until the workload has sent n more queries.
func waitQueries(ctx context.Context, t *testing.T, w *workload.Workload, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	want := w.Snapshot().Total + n
	for {
		r := w.Snapshot()
		if r.Total >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the workload sent %d of %d queries: %v", r.Total, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// mustAllUp fails the test unless every node sees all live within a minute.
func mustAllUp(ctx context.Context, t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := fx.Cluster.WaitAllUp(ctx); err != nil {
		t.Fatalf("the cluster is not healthy at the start of the test: %v", err)
	}
}

// waitServing waits until every coordinator has answered a query at every level sent after
// since.
func waitServing(ctx context.Context, t *testing.T, w *workload.Workload, since time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		r := w.Snapshot()
		var missing []string
		for _, c := range fx.Coordinators() {
			for _, cl := range []string{"QUORUM", "ALL"} {
				if at, ok := r.LastOK[workload.Key{Coordinator: c, Consistency: cl}]; !ok || at.Before(since) {
					missing = append(missing, c+"/"+cl)
				}
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no successful query since %s through %v: %v\n%s", since.Format("15:04:05.000"), missing, ctx.Err(), r.Summary())
		case <-tick.C:
		}
	}
}

// waitMesh polls ss until every node has a connection open to every other node's storage
// port; for the pairs where affected says so, it must be a connection not in old (a new one).
// It returns the connections and when the mesh was complete.
func waitMesh(ctx context.Context, t *testing.T, old map[Conn]bool, affected func(i, j int) bool) ([]Conn, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var missing []string
	for {
		conns, err := fx.InternodeConns(ctx)
		if err != nil {
			t.Fatalf("%v (missing before: %v)", err, missing)
		}
		at := time.Now()
		missing = nil
		for i, row := range fx.MeshEdges(conns) {
			for j, cs := range row {
				if i == j {
					continue
				}
				ok := slices.ContainsFunc(cs, func(c Conn) bool { return affected == nil || !affected(i, j) || !old[c] })
				if !ok {
					missing = append(missing, fmt.Sprintf("%s→%s", fx.Nodes[i].Name, fx.Nodes[j].Name))
				}
			}
		}
		if len(missing) == 0 {
			return conns, at
		}
		select {
		case <-ctx.Done():
			t.Fatalf("internode connections missing: %v (%v); sockets: %v", missing, ctx.Err(), conns)
		case <-tick.C:
		}
	}
}

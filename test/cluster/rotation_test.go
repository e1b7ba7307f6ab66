package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/workload"
)

// rotation is the CA rotation story's state: one sidecar per node, a client
// pod's sidecar, trust bundles delivered node by node the kubelet's way, and
// a workload that uses the client sidecar's outputs.
type rotation struct {
	t        *testing.T
	trustDir []string // per node: a ConfigMap-like dir holding bundle.pem
	client   struct{ trustDir, pemDir string }
	nodes    []*agentproc.Sidecar
	clientSC *agentproc.Sidecar
	start    time.Time
}

// phaseLog prints one line per phase: what each node serves and trusts and
// the workload's failures so far. make demo-rotation greps for "PHASE".
func (r *rotation) phaseLog(ctx context.Context, w *workload.Workload, phase string) {
	var b strings.Builder
	fmt.Fprintf(&b, "PHASE %-36s t=%6.1fs", phase, time.Since(r.start).Seconds())
	for _, n := range fx.Nodes {
		o := peers.Probe(ctx, n.Spec.StorageAddr(), peers.ProbeOptions{})
		served := "?"
		if len(o.Chain) > 0 {
			served = caLetter(o.Chain[0].Issuer.CommonName)
		}
		var trusts []string
		for _, name := range peers.CANames(o) {
			trusts = append(trusts, caLetter(name))
		}
		slices.Sort(trusts)
		fmt.Fprintf(&b, " | %s serves %s trusts %s", n.Name, served, strings.Join(trusts, "+"))
	}
	if w != nil {
		res := w.Snapshot()
		fmt.Fprintf(&b, " | workload %d queries, failed QUORUM %d ALL %d", res.Total, res.Failed["QUORUM"], res.Failed["ALL"])
	}
	r.t.Log(b.String())
	measure("rotation_phase", "%s", b.String())
}

var caLetterRE = regexp.MustCompile(`CA ([A-Z])\b`)

// caLetter turns "… CA B" (a subject or a common name) into "B".
func caLetter(name string) string {
	if m := caLetterRE.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return "?"
}

func newCA(t *testing.T, letter string) *pkitest.Cert {
	t.Helper()
	ca, err := pkitest.New(nil, pkitest.Options{CN: "cassandra-tls-agent rotation CA " + letter, IsCA: true,
		NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// bundle delivers a trust bundle (a trust-manager Bundle in a ConfigMap) to dir.
func bundle(t *testing.T, dir string, cas ...*pkitest.Cert) {
	t.Helper()
	var pem []byte
	for _, c := range cas {
		pem = append(pem, pkitest.CertPEM(c.Cert)...)
	}
	if err := kubeletfs.Write(dir, map[string][]byte{"bundle.pem": pem}); err != nil {
		t.Fatal(err)
	}
}

// nodeConfig is a Cassandra pod's sidecar: the node store with rotation
// gates (peers from the node's gossip through Jolokia), reload through
// Jolokia, verify on both ports.
func nodeConfig(n *Node, trustDir, listen string, gates bool) string {
	return fmt.Sprintf(`
stores:
  - name: node
    source: %s
    trustBundles: [%s/bundle.pem]
    passwordFile: %s
    truststorePasswordFile: %s
    keystore:   {path: %s, type: jks}
    truststore: {path: %s, type: jks}
    rotation: {maxHold: 1h, probeInterval: 1s, gates: %v}
watch: {debounce: 200ms, resync: 10s}
reload:
  - jolokia: {url: %q}
verify:
  endpoints: [%q, %q]
  deadline: 60s
http: {listen: %q}
log: {format: text}
`, n.SourceDir, trustDir, n.KeystorePasswordFile(), n.TruststorePasswordFile(), n.Keystore, n.Truststore, gates,
		n.Node.JolokiaURL(), n.Node.NativeAddr(), n.Node.StorageAddr(), listen)
}

// clientConfig is a client pod's sidecar: its certificate and trust as PEM
// files for the workload, gated on what the nodes' CQL ports accept.
func clientConfig(source, trustDir, pemDir, listen string, gates bool) string {
	var natives []string
	for _, n := range fx.Nodes {
		natives = append(natives, fmt.Sprintf("%q", n.Node.NativeAddr()))
	}
	return fmt.Sprintf(`
stores:
  - name: client
    source: %s
    trustBundles: [%s/bundle.pem]
    pem: {dir: %s}
    rotation: {peers: {static: [%s]}, maxHold: 1h, probeInterval: 1s, gates: %v}
watch: {debounce: 200ms, resync: 10s}
http: {listen: %q}
log: {format: text}
`, source, trustDir, pemDir, strings.Join(natives, ", "), gates, listen)
}

func (r *rotation) startSidecars(gates bool) {
	t := r.t
	for _, sc := range r.nodes {
		sc.Stop(t)
	}
	if r.clientSC != nil {
		r.clientSC.Stop(t)
	}
	r.nodes = nil
	for i, n := range fx.Nodes {
		addr := agentproc.FreeAddr(t)
		r.nodes = append(r.nodes, agentproc.Start(t, fx.Agent, n.Name, addr, nodeConfig(n, r.trustDir[i], addr, gates)))
	}
	addr := agentproc.FreeAddr(t)
	r.clientSC = agentproc.Start(t, fx.Agent, "client", addr, clientConfig(fx.Client.Dir, r.client.trustDir, r.client.pemDir, addr, gates))
	for _, sc := range append(slices.Clone(r.nodes), r.clientSC) {
		sc.WaitReady(t, true, 90*time.Second)
	}
}

// servedIssuer is the CA letter of the leaf a node serves on addr.
func servedIssuer(ctx context.Context, addr string) string {
	o := peers.Probe(ctx, addr, peers.ProbeOptions{})
	if len(o.Chain) == 0 {
		return "?"
	}
	return caLetter(o.Chain[0].Issuer.CommonName)
}

// waitAllServe waits until every node serves a leaf from CA letter on both ports.
func waitAllServe(ctx context.Context, t *testing.T, letter string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		var got []string
		for _, n := range fx.Nodes {
			for _, addr := range []string{n.Node.NativeAddr(), n.Node.StorageAddr()} {
				s := servedIssuer(ctx, addr)
				got = append(got, addr+"="+s)
				ok = ok && s == letter
			}
		}
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every node serves a %s leaf within %v: %v", letter, within, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// truststoreOwners lists the subjects keytool finds in a node's truststore.
func truststoreOwners(t *testing.T, n *Node) []string {
	t.Helper()
	out, err := exec.Command("keytool", "-list", "-v", "-keystore", n.Truststore, "-storepass", n.TruststorePassword).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list %s: %v\n%s", n.Truststore, err, out)
	}
	var owners []string
	for _, l := range strings.Split(string(out), "\n") {
		if o, ok := strings.CutPrefix(l, "Owner: "); ok {
			owners = append(owners, caLetter(o))
		}
	}
	slices.Sort(owners)
	return owners
}

// advertised lists the CA letters a node advertises on a port.
func advertised(ctx context.Context, addr string) []string {
	var out []string
	for _, name := range peers.CANames(peers.Probe(ctx, addr, peers.ProbeOptions{})) {
		out = append(out, caLetter(name))
	}
	slices.Sort(out)
	return out
}

func pids(t *testing.T) []int {
	t.Helper()
	out := make([]int, len(fx.Nodes))
	for i, n := range fx.Nodes {
		var err error
		if out[i], err = n.Node.PID(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// after runs f at offset from the phase start, in order, logging it.
type step struct {
	at   time.Duration
	what string
	do   func()
}

func (r *rotation) play(ctx context.Context, w *workload.Workload, phase string, steps []step) {
	begin := time.Now()
	for _, s := range steps {
		if d := time.Until(begin.Add(s.at)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				r.t.Fatalf("%s: %v", phase, ctx.Err())
			}
		}
		s.do()
		r.phaseLog(ctx, w, phase+": "+s.what)
	}
}

// TestCARotation rotates the internode and client CA of the running cluster
// A → B with one sidecar per node and a client pod's sidecar feeding the
// workload — files delivered node by node at different moments, in the
// worst order, with internode sockets killed and node 2 restarted midway —
// then drops A node by node. Then, as a negative control, the same kind of
// switch B → C with the gates off must partition the cluster.
func TestCARotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	mustAllUp(ctx, t)
	r := &rotation{t: t, start: time.Now()}
	root := t.TempDir()
	for _, n := range fx.Nodes {
		r.trustDir = append(r.trustDir, filepath.Join(root, n.Name+"-trust"))
	}
	r.client.trustDir, r.client.pemDir = filepath.Join(root, "client-trust"), filepath.Join(root, "client-pem")

	// CA A: the fixture's CA, re-issued under a name the story can print.
	a, b := newCA(t, "A"), newCA(t, "B")
	for i, n := range fx.Nodes {
		if _, err := fx.IssueNode(n, a, a); err != nil {
			t.Fatal(err)
		}
		bundle(t, r.trustDir[i], a)
	}
	if _, err := fx.IssueClient(a, a); err != nil {
		t.Fatal(err)
	}
	bundle(t, r.client.trustDir, a)
	// Bring the cluster onto A the old way (trust A + the fixture CA first,
	// then leaves), so the story starts from a clean single-CA state.
	bootstrapOnto(ctx, t, r, a)
	pidsBefore := pids(t)

	opts := fx.WorkloadOptions()
	opts.TLS = workload.TLSFiles{CAFile: filepath.Join(r.client.pemDir, "ca.crt"),
		CertFile: filepath.Join(r.client.pemDir, "keystore.pem"), KeyFile: filepath.Join(r.client.pemDir, "keystore.pem")}
	w, err := workload.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitServing(ctx, t, w, time.Now())
	r.phaseLog(ctx, w, "start: everything on A")

	// Phase 1: the Issuer switches to B. cert-manager re-issues every
	// Certificate at once, but the kubelets deliver Secrets and the bundle
	// ConfigMap at different moments: node 1's B leaf long before any other
	// node's bundle holds B.
	var restart struct{ begin, allUp time.Time }
	var switched, trustComplete, released, lastSecret time.Time
	r.play(ctx, w, "A→B", []step{
		{0, "client bundle A+B", func() { switched = time.Now(); bundle(t, r.client.trustDir, a, b) }},
		{0, "node1 Secret: B leaf, ca.crt B", func() { issue(t, 0, b) }},
		{6 * time.Second, "node2 Secret: B leaf, ca.crt B", func() { issue(t, 1, b) }},
		{8 * time.Second, "internode sockets killed", func() { kill(ctx, t) }},
		{14 * time.Second, "node3 bundle A+B", func() { trustComplete = time.Now(); bundle(t, r.trustDir[2], a, b) }},
		{14 * time.Second, "held B leaves of node1, node2 released", func() {
			// Every node trusts B now: the held leaves go out at the next
			// re-probe, with no file event on nodes 1 and 2.
			waitFor(ctx, t, "nodes 1 and 2 to present their B leaves", time.Minute, func() bool {
				return servedIssuer(ctx, fx.Nodes[0].Node.StorageAddr()) == "B" && servedIssuer(ctx, fx.Nodes[1].Node.StorageAddr()) == "B"
			})
			released = time.Now()
		}},
		{20 * time.Second, "client Secret: B leaf", func() {
			if _, err := fx.IssueClient(b, b); err != nil {
				t.Fatal(err)
			}
		}},
		{24 * time.Second, "node2 restarted", func() {
			restart.begin = time.Now()
			rt, err := fx.Cluster.Restart(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			restart.allUp = rt.AllUp
		}},
		{26 * time.Second, "node3 Secret: B leaf, ca.crt B", func() { lastSecret = time.Now(); issue(t, 2, b) }},
		{30 * time.Second, "bundles of node1, node2 A+B", func() { bundle(t, r.trustDir[0], a, b); bundle(t, r.trustDir[1], a, b) }},
		{32 * time.Second, "internode sockets killed", func() { kill(ctx, t) }},
	})
	allB := waitAllServe(ctx, t, "B", 3*time.Minute)
	measure("rotation_convergence", "held leaves released %v after the last peer's trust in B arrived (re-probe, no file event); "+
		"last Secret delivered → every node serves B on both ports %v; whole staggered story, first file → all B %v (node2's restart included)",
		released.Sub(trustComplete).Round(time.Millisecond), allB.Sub(lastSecret).Round(time.Millisecond), allB.Sub(switched).Round(time.Millisecond))
	mustAllUp(ctx, t)
	r.phaseLog(ctx, w, "A→B done")

	// Phase 2: the bundle drops A, node by node; then the client's.
	r.play(ctx, w, "drop A", []step{
		{0, "node1 bundle B", func() { bundle(t, r.trustDir[0], b) }},
		{5 * time.Second, "node2 bundle B", func() { bundle(t, r.trustDir[1], b) }},
		{10 * time.Second, "node3 bundle B", func() { bundle(t, r.trustDir[2], b) }},
		{12 * time.Second, "client bundle B", func() { bundle(t, r.client.trustDir, b) }},
		{14 * time.Second, "internode sockets killed", func() { kill(ctx, t) }},
	})
	waitFor(ctx, t, "every truststore holds B only", 2*time.Minute, func() bool {
		for _, n := range fx.Nodes {
			if !slices.Equal(truststoreOwners(t, n), []string{"B"}) {
				return false
			}
		}
		return true
	})
	mustAllUp(ctx, t)
	// A little more traffic after the last change, then the verdict.
	waitQueries(ctx, t, w, 60)
	r.phaseLog(ctx, w, "A dropped")
	res := w.Stop()
	t.Log(res.Summary())

	// End state: B leaves on both ports, B-only truststores, B-only advertised.
	for _, n := range fx.Nodes {
		for _, addr := range []string{n.Node.NativeAddr(), n.Node.StorageAddr()} {
			if got := servedIssuer(ctx, addr); got != "B" {
				t.Errorf("%s serves a leaf from %s, want B", addr, got)
			}
			if got := advertised(ctx, addr); !slices.Equal(got, []string{"B"}) {
				t.Errorf("%s advertises %v, want [B]", addr, got)
			}
		}
		if got := truststoreOwners(t, n); !slices.Equal(got, []string{"B"}) {
			t.Errorf("%s truststore holds %v (keytool), want [B]", n.Name, got)
		}
	}
	for i, pid := range pids(t) {
		if i != 1 && pid != pidsBefore[i] {
			t.Errorf("%s: pid %d → %d: an unplanned restart", fx.Nodes[i].Name, pidsBefore[i], pid)
		}
		if i == 1 && pid == pidsBefore[i] {
			t.Errorf("node2 was to be restarted but kept pid %d", pid)
		}
	}
	// No query fails at QUORUM (coordinator node2 excepted while it is down:
	// nothing can answer through a stopped coordinator), nor at ALL outside
	// the restart's down window.
	// Through node 2 itself the driver needs up to its reconnect interval
	// (1 s) plus a handshake to notice the node is back.
	down := func(f workload.Failure) bool {
		end := restart.allUp
		if f.Coordinator == fx.Nodes[1].Addr {
			end = end.Add(3 * time.Second)
		}
		return !f.At.Before(restart.begin) && !f.At.After(end)
	}
	var quorumFailed, allFailedOutside, allAtKill, allDown int
	for _, f := range res.Failures {
		switch {
		case f.Consistency == "QUORUM" && !(down(f) && f.Coordinator == fx.Nodes[1].Addr):
			quorumFailed++
			t.Errorf("QUORUM query failed: %s", f)
		case f.Consistency == "ALL" && down(f):
			allDown++
		case f.Consistency == "ALL" && inFlightAtKill(f):
			allAtKill++
			t.Logf("ALL query in flight when internode sockets were killed: %s", f)
		case f.Consistency == "ALL":
			allFailedOutside++
			t.Errorf("ALL query failed outside the restart window: %s", f)
		}
	}
	measure("rotation_workload", "%d queries over the rotation; %d failed at QUORUM; ALL: %d failed inside node2's %v down window, %d in flight on a killed socket (%d kills), %d otherwise",
		res.Total, quorumFailed, allDown, restart.allUp.Sub(restart.begin).Round(time.Second), allAtKill, len(kills), allFailedOutside)
	if res.Total < 500 {
		t.Errorf("only %d queries over the rotation", res.Total)
	}
	// The client's certificate really switched to B midway.
	cert, err := os.ReadFile(filepath.Join(r.client.pemDir, "tls.crt"))
	if err != nil || !strings.Contains(certIssuer(t, cert), "CA B") {
		t.Errorf("the client pod did not end on a B certificate: %v", err)
	}

	t.Run("negative control: the same switch without gates partitions", func(t *testing.T) {
		negativeControl(ctx, t, r, b)
	})
}

// negativeControl: sidecars restarted with gates off; node 1 gets a C leaf
// while the others trust only B. After forced reconnects the cluster must
// partition — the failure the gates prevent. Then trust in C is delivered
// everywhere and the cluster heals.
func negativeControl(ctx context.Context, t *testing.T, r *rotation, b *pkitest.Cert) {
	c := newCA(t, "C")
	r.startSidecars(false)
	// The workload reads the client Secret directly here (a B certificate
	// and trust in B), so that what fails below is the cluster, not it.
	if _, err := fx.IssueClient(b, b); err != nil {
		t.Fatal(err)
	}
	w, err := workload.Start(ctx, fx.WorkloadOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitServing(ctx, t, w, time.Now())
	issue(t, 0, c) // node1: C leaf, ca.crt C (+ bundle B): trusts B and C, presents C at once
	waitFor(ctx, t, "node1 to present its C leaf (no gate)", time.Minute, func() bool {
		return servedIssuer(ctx, fx.Nodes[0].Node.StorageAddr()) == "C"
	})
	kill(ctx, t)
	t0 := time.Now()
	var partitioned bool
	waitFor(ctx, t, "the partition", 2*time.Minute, func() bool {
		views, _ := fx.Cluster.Views(ctx)
		for _, v := range views {
			if v != nil && len(v.Unreachable) > 0 {
				partitioned = true
			}
		}
		snap := w.Snapshot()
		return partitioned && len(snap.FailuresOf(fx.Nodes[1].Addr, "ALL"))+len(snap.FailuresOf(fx.Nodes[2].Addr, "ALL")) > 0
	})
	r.phaseLog(ctx, w, "gates off: node1 on C, others trust B only")
	measure("negative_control", "partition seen %v after the forced reconnect: %s", time.Since(t0).Round(time.Millisecond),
		strings.ReplaceAll(fx.Cluster.Status(ctx), "\n", " / "))
	// Heal: C reaches every truststore.
	for i := range fx.Nodes {
		bundle(t, r.trustDir[i], b, c)
	}
	healCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := fx.Cluster.WaitAllUp(healCtx); err != nil {
		kill(ctx, t) // reconnect at once rather than at the next retry
		if _, err := fx.Cluster.WaitAllUp(healCtx); err != nil {
			t.Fatalf("the cluster did not heal once C was trusted everywhere: %v", err)
		}
	}
	res := w.Stop()
	// Through nodes 2 and 3, which the workload trusts: these failures are
	// the partition (ALL needs node 1's replica), not the client's TLS.
	if n := len(res.FailuresOf(fx.Nodes[1].Addr, "ALL")) + len(res.FailuresOf(fx.Nodes[2].Addr, "ALL")); n == 0 {
		t.Errorf("the negative control saw no failed ALL query through nodes 2 and 3: it cannot tell a partition from none")
	}
	t.Logf("negative control: %s", res.Summary())
}

// issue gives node i a new leaf from ca with ca.crt = ca, the kubelet's way.
func issue(t *testing.T, i int, ca *pkitest.Cert) {
	t.Helper()
	if _, err := fx.IssueNode(fx.Nodes[i], ca, ca); err != nil {
		t.Fatal(err)
	}
}

// kills are the moments internode sockets were killed on purpose.
var kills []time.Time

func kill(ctx context.Context, t *testing.T) {
	t.Helper()
	kills = append(kills, time.Now())
	if _, err := fx.KillInternode(ctx); err != nil {
		t.Fatal(err)
	}
}

// inFlightAtKill reports whether f's query overlapped the 3 s after a
// deliberate socket kill: a request already handed to a killed internode
// connection is lost (Cassandra does not resend it), and a query at ALL then
// times out — the cost of `ss -K`, not of a certificate (the mesh is back
// within a second; QUORUM absorbs it).
func inFlightAtKill(f workload.Failure) bool {
	for _, k := range kills {
		if f.At.Before(k.Add(3*time.Second)) && f.At.Add(f.Took).After(k) {
			return true
		}
	}
	return false
}

func certIssuer(t *testing.T, pemData []byte) string {
	t.Helper()
	certs, err := pki.ParseCertificates(pemData, "tls.crt")
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].Issuer.CommonName
}

// bootstrapOnto moves the cluster from the fixture's CA to CA a with the
// gated sidecars themselves (trust first, then leaves): the story proper
// starts from every node on a, trusting a only.
func bootstrapOnto(ctx context.Context, t *testing.T, r *rotation, a *pkitest.Cert) {
	// The sources say a (leaf, ca.crt and bundle), the stores still hold the
	// fixture CA: each sidecar widens trust to a at once, holds the a leaf
	// until every peer trusts a, and keeps the fixture CA while a peer serves it.
	r.startSidecarsNoWait(true)
	waitAllServe(ctx, t, "A", 3*time.Minute)
	waitFor(ctx, t, "truststores to hold A only", 2*time.Minute, func() bool {
		for _, n := range fx.Nodes {
			if !slices.Equal(truststoreOwners(t, n), []string{"A"}) {
				return false
			}
		}
		return true
	})
	for _, sc := range append(slices.Clone(r.nodes), r.clientSC) {
		sc.WaitReady(t, true, 90*time.Second)
	}
	mustAllUp(ctx, t)
}

func (r *rotation) startSidecarsNoWait(gates bool) {
	t := r.t
	for i, n := range fx.Nodes {
		addr := agentproc.FreeAddr(t)
		r.nodes = append(r.nodes, agentproc.Start(t, fx.Agent, n.Name, addr, nodeConfig(n, r.trustDir[i], addr, gates)))
	}
	addr := agentproc.FreeAddr(t)
	r.clientSC = agentproc.Start(t, fx.Agent, "client", addr, clientConfig(fx.Client.Dir, r.client.trustDir, r.client.pemDir, addr, gates))
}

// waitFor polls cond every 500 ms until it holds.
func waitFor(ctx context.Context, t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

package rotation

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// The full story: three nodes, each running the Decide loop over the other
// nodes' published state (and its own) as peers, rotate A → A+B → B leaves
// → B only while the sources reach them in every order, the worst included.
// At every step, every node's published leaf must be trusted by every other
// node's published truststore.
//
// The simulation is sequential: a peer observation is always the peer's
// current published state. In a real cluster an observation can be a few
// seconds old, which the gates absorb by probing again while anything is
// held; that timing belongs to the agent, not to this package.

// stage is where one node's sources are in the rotation.
type stage int

const (
	stageA       stage = iota // A leaf, A trusted
	stageTrustAB              // A leaf, A+B trusted
	stageLeafB                // B leaf, A+B trusted
	stageB                    // B leaf, B trusted
	numStages
)

func (s stage) String() string {
	return [...]string{"A", "A+B trust", "B leaf", "B only"}[s]
}

type simNode struct {
	name      string
	leafA     *pkitest.Cert
	leafB     *pkitest.Cert
	stage     stage
	source    *pki.Material
	published *pki.Material
	mem       *Memory
}

type cluster struct {
	t      *testing.T
	f      *fixture
	now    time.Time
	policy Policy
	nodes  []*simNode
	down   map[string]bool // not reachable by probes, and not syncing
	log    []string        // what happened, for failure messages
	forced int
	held   map[Gate]int // holds seen in the decisions
}

func newCluster(t *testing.T, f *fixture, policy Policy) *cluster {
	t.Helper()
	c := &cluster{t: t, f: f, now: f.now, policy: policy, down: map[string]bool{}, held: map[Gate]int{}}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("127.0.0.%d:7000", i)
		n := &simNode{name: name, mem: new(Memory)}
		var err error
		opts := func(ca *pkitest.Cert) *pkitest.Cert {
			c, e := pkitest.New(ca, pkitest.Options{CN: fmt.Sprintf("node%d", i), NotBefore: f.now.Add(-time.Hour), NotAfter: f.now.Add(month), IPs: pkitest.LoopbackIPs()})
			if e != nil {
				err = e
			}
			return c
		}
		n.leafA, n.leafB = opts(f.caA), opts(f.caB)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
		c.deliver(i-1, stageA)
		c.sync(i - 1) // first build
	}
	c.check("start")
	return c
}

// deliver changes node i's sources to stage s (files changed on disk).
func (c *cluster) deliver(i int, s stage) {
	n := c.nodes[i]
	A, B := c.f.caA, c.f.caB
	switch s {
	case stageA:
		n.source = mat(n.leafA, nil, A)
	case stageTrustAB:
		n.source = mat(n.leafA, nil, A, B)
	case stageLeafB:
		n.source = mat(n.leafB, nil, A, B)
	case stageB:
		n.source = mat(n.leafB, nil, B)
	}
	n.stage = s
	c.log = append(c.log, fmt.Sprintf("%s: sources → %s", n.name, s))
}

// peers is what node i's probes see: every node, itself included.
func (c *cluster) peers() []Peer {
	var ps []Peer
	for _, n := range c.nodes {
		if c.down[n.name] || n.published == nil {
			ps = append(ps, Peer{Name: n.name, Err: errors.New("connection refused")})
			continue
		}
		p := Peer{Name: n.name, Serves: append([]*x509.Certificate{n.published.Leaf}, n.published.Chain...)}
		for _, ca := range n.published.CAs {
			p.Accepts = append(p.Accepts, ca.RawSubject)
		}
		ps = append(ps, p)
	}
	return ps
}

// sync runs node i's sidecar once: observe, decide, publish. It reports
// whether the published material changed.
func (c *cluster) sync(i int) bool {
	c.t.Helper()
	n := c.nodes[i]
	if c.down[n.name] {
		return false
	}
	var pubCAs []*x509.Certificate
	if n.published != nil {
		pubCAs = n.published.CAs
	}
	n.mem.Observe(c.now, n.source.CAs, pubCAs)
	d, err := Decide(Input{Now: c.now, Source: n.source, Published: n.published, Peers: c.peers(), Memory: n.mem, Policy: c.policy})
	if err != nil {
		c.t.Fatalf("%s: Decide: %v\n%s", n.name, err, strings.Join(c.log, "\n"))
	}
	if err := d.Publish.Validate(c.now, "publish", "publish key"); err != nil {
		c.t.Fatalf("%s: Decision.Publish is not valid: %v", n.name, err)
	}
	if d.Forced {
		c.forced++
	}
	changed := !sameMaterial(n.published, d.Publish)
	n.published = d.Publish
	var holds []string
	for _, h := range d.Holds {
		holds = append(holds, fmt.Sprintf("%s %s", h.Gate, h.CA.Subject.CommonName))
		c.held[h.Gate]++
	}
	c.log = append(c.log, fmt.Sprintf("%s: sync at +%s: publishes %s [%s], holds %v",
		n.name, c.now.Sub(c.f.now), n.published.Leaf.Issuer.CommonName, strings.Join(cns(c.t, n.published.CAs), " "), holds))
	return changed
}

func sameMaterial(a, b *pki.Material) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Leaf.Equal(b.Leaf) && slices.EqualFunc(a.Chain, b.Chain, eqCert) && slices.EqualFunc(a.CAs, b.CAs, eqCert)
}

// violations lists every pair of nodes where one's published leaf is not
// trusted by the other's published truststore.
func (c *cluster) violations() []string {
	var out []string
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to || from.published == nil || to.published == nil {
				continue
			}
			roots, inter := x509.NewCertPool(), x509.NewCertPool()
			for _, ca := range to.published.CAs {
				roots.AddCert(ca)
			}
			for _, ch := range from.published.Chain {
				inter.AddCert(ch)
			}
			_, err := from.published.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: c.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if err != nil {
				out = append(out, fmt.Sprintf("%s does not trust %s's leaf (from %s)", to.name, from.name, from.published.Leaf.Issuer.CommonName))
			}
		}
	}
	return out
}

func (c *cluster) check(when string) {
	c.t.Helper()
	if v := c.violations(); len(v) > 0 {
		c.t.Fatalf("partition after %s: %s\n%s", when, strings.Join(v, "; "), strings.Join(c.log, "\n"))
	}
}

// settle syncs every node, advancing the clock by step between rounds,
// until a whole round changes nothing and nothing is waiting on time.
func (c *cluster) settle(step time.Duration) {
	c.t.Helper()
	for round := 0; round < 50; round++ {
		changed := false
		for i := range c.nodes {
			if c.sync(i) {
				changed = true
			}
			c.check("settle")
		}
		if !changed && c.pendingTime() == 0 {
			return
		}
		c.now = c.now.Add(step)
	}
	c.t.Fatalf("no fixed point after 50 rounds\n%s", strings.Join(c.log, "\n"))
}

// pendingTime is how many nodes hold something waiting on the clock.
func (c *cluster) pendingTime() int {
	n := 0
	for _, nd := range c.nodes {
		if nd.published == nil || c.down[nd.name] {
			continue
		}
		d, err := Decide(Input{Now: c.now, Source: nd.source, Published: nd.published, Peers: c.peers(), Memory: nd.mem, Policy: c.policy})
		if err != nil {
			c.t.Fatal(err)
		}
		for _, h := range d.Holds {
			if !h.Until.IsZero() {
				n++
			}
		}
	}
	return n
}

// assertAllB checks the end state: every node presents a B leaf and trusts B
// alone.
func (c *cluster) assertAllB() {
	c.t.Helper()
	for _, n := range c.nodes {
		if !n.published.Leaf.Equal(n.leafB.Cert) {
			c.t.Errorf("%s still presents a leaf from %s", n.name, n.published.Leaf.Issuer.CommonName)
		}
		if got := cns(c.t, n.published.CAs); !slices.Equal(got, []string{"B"}) {
			c.t.Errorf("%s trusts %q, want B only", n.name, got)
		}
	}
	if c.forced > 0 {
		c.t.Errorf("the safety valve opened %d times", c.forced)
	}
	if c.t.Failed() {
		c.t.Log(strings.Join(c.log, "\n"))
	}
}

type delivery struct {
	node  int
	stage stage
}

// run delivers each change in order and, after each, syncs the receiving
// node, then the others, advancing the clock by step after each sync.
func (c *cluster) run(deliveries []delivery, step time.Duration) {
	c.t.Helper()
	for _, dv := range deliveries {
		c.deliver(dv.node, dv.stage)
		order := []int{dv.node}
		for i := range c.nodes {
			if i != dv.node {
				order = append(order, i)
			}
		}
		for _, i := range order {
			c.sync(i)
			c.check(fmt.Sprintf("%s got %s", c.nodes[dv.node].name, dv.stage))
			c.now = c.now.Add(step)
		}
	}
}

var (
	// worstOrder: node 1 gets its B leaf and B-only trust before any other
	// node trusts B, then the others catch up one by one.
	worstOrder = []delivery{
		{0, stageB},
		{1, stageTrustAB}, {2, stageTrustAB},
		{1, stageLeafB}, {2, stageLeafB},
		{1, stageB}, {2, stageB},
	}
	// orderlyOrder is the textbook rotation, one node at a time.
	orderlyOrder = []delivery{
		{0, stageTrustAB}, {1, stageTrustAB}, {2, stageTrustAB},
		{0, stageLeafB}, {1, stageLeafB}, {2, stageLeafB},
		{0, stageB}, {1, stageB}, {2, stageB},
	}
	// leafBeforeTrust: B leaves arrive everywhere before the A+B bundle.
	leafBeforeTrust = []delivery{
		{2, stageLeafB}, {0, stageLeafB}, {1, stageLeafB},
		{1, stageB}, {0, stageB}, {2, stageB},
	}
)

func TestStory(t *testing.T) {
	tests := []struct {
		name   string
		order  []delivery
		policy Policy
		held   []Gate // gates that must have held something on the way
	}{
		{"worst order", worstOrder, Policy{Gates: true, MaxHold: 72 * time.Hour}, []Gate{GatePresent, GateRetain}},
		{"orderly", orderlyOrder, Policy{Gates: true, MaxHold: 72 * time.Hour}, nil},
		{"B leaves before the bundle", leafBeforeTrust, Policy{Gates: true, MaxHold: 72 * time.Hour}, []Gate{GatePresent, GateRetain}},
		{"worst order with presentAfter and retainFor", worstOrder, Policy{Gates: true, PresentAfter: 30 * time.Minute, RetainFor: 20 * time.Minute, MaxHold: 72 * time.Hour}, []Gate{GatePresent, GateRetain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := newCluster(t, f, tc.policy)
			c.run(tc.order, time.Minute)
			c.settle(5 * time.Minute)
			c.assertAllB()
			for _, g := range tc.held {
				if c.held[g] == 0 {
					t.Errorf("the %s gate never held anything", g)
				}
			}
			if testing.Verbose() {
				t.Log("\n" + strings.Join(c.log, "\n"))
			}
		})
	}
}

// Every order in which the sources can reach the nodes (each node's stages
// in order, possibly skipping some), with random syncs in between, keeps the
// invariant and ends all-B.
func TestStoryRandomOrders(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewSource(1))
	for run := 0; run < 50; run++ {
		c := newCluster(t, f, Policy{Gates: true, MaxHold: 72 * time.Hour})
		for {
			var movable []int
			for i, n := range c.nodes {
				if n.stage < stageB {
					movable = append(movable, i)
				}
			}
			if len(movable) == 0 {
				break
			}
			i := movable[rng.Intn(len(movable))]
			next := c.nodes[i].stage + 1 + stage(rng.Intn(int(stageB-c.nodes[i].stage)))
			c.deliver(i, next)
			for _, j := range rng.Perm(len(c.nodes))[:rng.Intn(len(c.nodes)+1)] {
				c.sync(j)
				c.check(fmt.Sprintf("run %d", run))
			}
		}
		c.settle(time.Minute)
		c.assertAllB()
		if t.Failed() {
			t.Fatalf("run %d", run)
		}
	}
}

// A node whose probes fail holds everybody back, and a restarted sidecar
// (fresh Memory) just continues.
func TestStoryUnreachableNodeAndRestart(t *testing.T) {
	f := newFixture(t)
	c := newCluster(t, f, Policy{Gates: true, PresentAfter: 10 * time.Minute, RetainFor: 10 * time.Minute, MaxHold: 72 * time.Hour})
	for i := range c.nodes {
		c.deliver(i, stageTrustAB)
	}
	c.settle(5 * time.Minute)
	node3 := c.nodes[2].name

	// Node 3 goes dark; nodes 1 and 2 get their B leaves.
	c.down[node3] = true
	c.deliver(0, stageLeafB)
	c.deliver(1, stageLeafB)
	for round := 0; round < 5; round++ {
		c.sync(0)
		c.sync(1)
		c.check("node 3 unreachable")
		c.now = c.now.Add(10 * time.Minute)
	}
	for _, n := range c.nodes[:2] {
		if !n.published.Leaf.Equal(n.leafA.Cert) {
			t.Fatalf("%s presented its B leaf while %s was unreachable", n.name, node3)
		}
	}

	// Node 3 is back, node 1's sidecar restarts (fresh Memory), and
	// everything moves on to B only.
	c.down[node3] = false
	c.nodes[0].mem = new(Memory)
	for i := range c.nodes {
		c.deliver(i, stageB)
	}
	c.settle(2 * time.Minute)
	c.assertAllB()
}

// Without the gates, the worst order partitions the cluster at once: node
// 1 presents its B leaf while nodes 2 and 3 trust only A.
func TestStoryWithoutGatesPartitions(t *testing.T) {
	f := newFixture(t)
	c := newCluster(t, f, Policy{Gates: false})
	c.deliver(worstOrder[0].node, worstOrder[0].stage)
	c.sync(worstOrder[0].node)
	v := c.violations()
	want := []string{
		"127.0.0.2:7000 does not trust 127.0.0.1:7000's leaf (from B)",
		"127.0.0.3:7000 does not trust 127.0.0.1:7000's leaf (from B)",
		"127.0.0.1:7000 does not trust 127.0.0.2:7000's leaf (from A)",
		"127.0.0.1:7000 does not trust 127.0.0.3:7000's leaf (from A)",
	}
	slices.Sort(v)
	slices.Sort(want)
	if !slices.Equal(v, want) {
		t.Fatalf("violations %q, want %q", v, want)
	}

	// The same order with the gates: no violation at that step.
	g := newCluster(t, f, Policy{Gates: true})
	g.deliver(worstOrder[0].node, worstOrder[0].stage)
	g.sync(worstOrder[0].node)
	g.check("node 1 got B only")
}

package rotation

import (
	"crypto/x509"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// wantHold is what a test expects of one Hold.
type wantHold struct {
	gate    Gate
	ca      string // CN
	waiting []string
	until   time.Duration // from now; 0: Until must be zero
	reason  string        // substring of Reason
}

func TestDecide(t *testing.T) {
	f := newFixture(t)
	now := f.now
	A, B := f.caA, f.caB
	gates := Policy{Gates: true}
	ab := []*pkitest.Cert{A, B}

	// Published states and what peers serving them look like.
	pubA := mat(f.leafA, nil, A)
	pubAB := mat(f.leafA, nil, A, B)
	pubBonAB := mat(f.leafB, nil, A, B)
	srcAB := mat(f.leafB, nil, A, B) // B leaf, A+B trusted
	srcB := mat(f.leafB, nil, B)     // B leaf, B only
	trustsA := func(name string) Peer { return peerOf(name, pubA, A) }
	trustsAB := func(name string) Peer { return peerOf(name, pubAB, A, B) }
	servesB := func(name string) Peer { return peerOf(name, mat(f.leafB, nil, B), A, B) }
	// B entered the sources ten minutes ago (A has always been there).
	bNew := func() *Memory {
		return memory(
			seen{now.Add(-2 * time.Hour), []*pkitest.Cert{A}, []*pkitest.Cert{A}},
			seen{now.Add(-10 * time.Minute), ab, []*pkitest.Cert{A}},
			seen{now, ab, []*pkitest.Cert{A}})
	}
	// B entered the sources two hours ago.
	bOld := func() *Memory {
		return memory(seen{now.Add(-2 * time.Hour), ab, []*pkitest.Cert{A}}, seen{now, ab, []*pkitest.Cert{A}})
	}
	// A left the sources ten minutes ago.
	aGone := func() *Memory {
		return memory(
			seen{now.Add(-time.Hour), ab, ab},
			seen{now.Add(-10 * time.Minute), []*pkitest.Cert{B}, ab},
			seen{now, []*pkitest.Cert{B}, ab})
	}

	tests := []struct {
		name string
		in   Input

		wantErr    error  // errors.Is
		wantErrMsg string // substring
		presentNew bool
		forced     string // substring of Released.Reason; "" = not forced
		cas        []string
		holds      []wantHold
	}{
		{
			name:       "first build publishes the source as it is",
			in:         Input{Source: srcB, Peers: []Peer{trustsA("p1")}, Policy: gates},
			presentNew: true, cas: []string{"B"},
		},
		{
			name:       "gates off publishes the source as it is, partition or not",
			in:         Input{Source: srcB, Published: pubA, Peers: []Peer{trustsA("p1"), down("p2")}},
			presentNew: true, cas: []string{"B"},
		},
		{
			name:       "renewal under the same CA is presented at once, even with peers down",
			in:         Input{Source: mat(f.leafA2, nil, A), Published: pubA, Peers: []Peer{down("p1"), trustsA("p2")}, Policy: gates},
			presentNew: true, cas: []string{"A"},
		},
		{
			name:       "same leaf, trust added: nothing to gate",
			in:         Input{Source: mat(f.leafA, nil, A, B), Published: pubA, Peers: []Peer{down("p1")}, Policy: gates},
			presentNew: true, cas: []string{"A", "B"},
		},
		{
			name:       "new CA, every peer accepts it",
			in:         Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1"), trustsAB("p2")}, Policy: gates},
			presentNew: true, cas: []string{"A", "B"},
		},
		{
			name: "new CA, one peer does not accept it yet",
			in:   Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1"), trustsA("p3"), trustsA("p2")}, Policy: gates},
			cas:  []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", waiting: []string{"p2", "p3"},
				reason: `peer p2 does not accept CN=B,O=cassandra-tls-agent test yet`}},
		},
		{
			name: "new CA, one peer unreachable",
			in:   Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1"), down("p2")}, Policy: gates},
			cas:  []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", waiting: []string{"p2"},
				reason: "peer p2 is unreachable (dial tcp p2: connect: connection refused)"}},
		},
		{
			name: "new CA, a peer that requests no client certificate confirms nothing",
			in:   Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1"), {Name: "p2", Serves: certs(f.leafA)}}, Policy: gates},
			cas:  []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", waiting: []string{"p2"},
				reason: "advertised no CA names"}},
		},
		{
			name:       "new CA, no peers, no presentAfter: nobody to partition",
			in:         Input{Source: srcAB, Published: pubA, Policy: gates},
			presentNew: true, cas: []string{"A", "B"},
		},
		{
			name: "new CA, no peers, presentAfter not yet",
			in:   Input{Source: srcAB, Published: pubAB, Memory: bNew(), Policy: Policy{Gates: true, PresentAfter: time.Hour}},
			cas:  []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", until: 50 * time.Minute,
				reason: "in the trust sources for 10m0s of the 1h0m0s presentAfter"}},
		},
		{
			name:       "new CA, all accept, presentAfter passed",
			in:         Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1")}, Memory: bOld(), Policy: Policy{Gates: true, PresentAfter: time.Hour}},
			presentNew: true, cas: []string{"A", "B"},
		},
		{
			name:  "new CA, presentAfter passed, but a peer does not accept it",
			in:    Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsA("p1")}, Memory: bOld(), Policy: Policy{Gates: true, PresentAfter: time.Hour}},
			cas:   []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", waiting: []string{"p1"}}},
		},
		{
			name:  "new CA, all accept, presentAfter not yet",
			in:    Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1")}, Memory: bNew(), Policy: Policy{Gates: true, PresentAfter: time.Hour}},
			cas:   []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", until: 50 * time.Minute}},
		},
		{
			name:  "restart: a fresh Memory counts B from now, so presentAfter holds again",
			in:    Input{Source: srcAB, Published: pubAB, Peers: []Peer{trustsAB("p1")}, Memory: memory(seen{now, ab, ab}), Policy: Policy{Gates: true, PresentAfter: time.Hour}},
			cas:   []string{"A", "B"},
			holds: []wantHold{{gate: GatePresent, ca: "B", until: time.Hour}},
		},
		{
			name: "B only in the sources before any peer trusts B: hold the leaf, keep A for our own leaf",
			in:   Input{Source: srcB, Published: pubA, Peers: []Peer{trustsA("p1"), trustsA("p2")}, Policy: gates},
			cas:  []string{"B", "A"},
			holds: []wantHold{
				{gate: GatePresent, ca: "B", waiting: []string{"p1", "p2"}},
				{gate: GateRetain, ca: "A", waiting: []string{"p1", "p2"}, reason: "the published leaf (subject \"CN=node-a"},
			},
		},
		{
			name:       "retain A while a peer still serves it",
			in:         Input{Source: srcB, Published: pubBonAB, Peers: []Peer{servesB("p1"), trustsAB("p2")}, Policy: gates},
			presentNew: true, cas: []string{"B", "A"},
			holds: []wantHold{{gate: GateRetain, ca: "A", waiting: []string{"p2"},
				reason: "peer p2 still serves a chain from it"}},
		},
		{
			name:       "retain A while a peer is unreachable",
			in:         Input{Source: srcB, Published: pubBonAB, Peers: []Peer{servesB("p1"), down("p2")}, Policy: gates},
			presentNew: true, cas: []string{"B", "A"},
			holds: []wantHold{{gate: GateRetain, ca: "A", waiting: []string{"p2"}, reason: "peer p2 is unreachable"}},
		},
		{
			name:       "retain A during retainFor though nobody serves it",
			in:         Input{Source: srcB, Published: pubBonAB, Peers: []Peer{servesB("p1")}, Memory: aGone(), Policy: Policy{Gates: true, RetainFor: time.Hour}},
			presentNew: true, cas: []string{"B", "A"},
			holds: []wantHold{{gate: GateRetain, ca: "A", until: 50 * time.Minute, reason: "retainFor is 1h0m0s"}},
		},
		{
			name:       "drop A once retainFor has passed and nobody serves it",
			in:         Input{Source: srcB, Published: pubBonAB, Peers: []Peer{servesB("p1")}, Memory: aGone(), Policy: Policy{Gates: true, RetainFor: 5 * time.Minute}},
			presentNew: true, cas: []string{"B"},
		},
		{
			name:       "drop A when nobody serves it",
			in:         Input{Source: srcB, Published: pubBonAB, Peers: []Peer{servesB("p1"), servesB("p2")}, Policy: gates},
			presentNew: true, cas: []string{"B"},
		},
		{
			name:       "drop A with no peers and no retainFor",
			in:         Input{Source: srcB, Published: pubBonAB, Policy: gates},
			presentNew: true, cas: []string{"B"},
		},
		{
			name: "valve: the held leaf expires within maxHold",
			in: Input{Source: srcAB, Published: mat(f.expiringA, nil, A, B), Peers: []Peer{trustsA("p1")},
				Policy: Policy{Gates: true, MaxHold: 2 * time.Hour}},
			presentNew: true, forced: "within maxHold 2h0m0s; presenting the new leaf (subject \"CN=node-b", cas: []string{"A", "B"},
		},
		{
			name: "valve: the held leaf expires after maxHold, so it is held",
			in: Input{Source: srcAB, Published: mat(f.expiringA, nil, A, B), Peers: []Peer{trustsA("p1")},
				Policy: Policy{Gates: true, MaxHold: 30 * time.Minute}},
			cas: []string{"A", "B"}, holds: []wantHold{{gate: GatePresent, ca: "B", waiting: []string{"p1"}}},
		},
		{
			name: "valve at maxHold 0: only an expired leaf is released",
			in: Input{Source: srcAB, Published: mat(f.expiredA, nil, A, B), Peers: []Peer{trustsA("p1")},
				Policy: gates},
			presentNew: true, forced: "expired at", cas: []string{"A", "B"},
		},
		{
			name: "valve: published material that cannot be kept (leaf does not chain) is released",
			in: Input{Source: srcAB, Published: mat(f.leafA, nil, B), Peers: []Peer{trustsA("p1")},
				Policy: gates},
			presentNew: true, forced: "cannot be kept", cas: []string{"A", "B"},
		},
		{
			name: "valve: published key does not match its leaf",
			in: Input{Source: srcAB, Published: &pki.Material{Key: f.leafB.Key, Leaf: f.leafA.Cert, CAs: certs(A, B)}, Peers: []Peer{trustsA("p1")},
				Policy: gates},
			presentNew: true, forced: "does not match the leaf", cas: []string{"A", "B"},
		},
		{
			name:       "new intermediate under the same root: peers trusting the root accept",
			in:         Input{Source: mat(f.leafAI2, []*pkitest.Cert{f.intA2}, A), Published: mat(f.leafAI, []*pkitest.Cert{f.intA}, A), Peers: []Peer{trustsA("p1")}, Policy: gates},
			presentNew: true, cas: []string{"A"},
		},
		{
			name: "new intermediate: a peer that trusts only the old intermediate (JDK anchor) holds it",
			in: Input{Source: mat(f.leafAI2, []*pkitest.Cert{f.intA2}, A), Published: mat(f.leafAI, []*pkitest.Cert{f.intA}, A),
				Peers: []Peer{trustsA("p1"), peerOf("p2", mat(f.leafAI, []*pkitest.Cert{f.intA}, A), f.intA)}, Policy: gates},
			cas:   []string{"A"},
			holds: []wantHold{{gate: GatePresent, ca: "A", waiting: []string{"p2"}, reason: "does not accept CN=A-int2,O=cassandra-tls-agent test; CN=A,O=cassandra-tls-agent test yet"}},
		},
		{
			name:       "intermediate added to the chain under the same root: a renewal",
			in:         Input{Source: mat(f.leafAI, []*pkitest.Cert{f.intA}, A), Published: pubA, Peers: []Peer{down("p1")}, Policy: gates},
			presentNew: true, cas: []string{"A"},
		},
		{
			name: "intermediate as the only CA and not sent: peers must trust the intermediate",
			in: Input{Source: mat(f.leafAI, nil, A, f.intA), Published: pubA,
				Peers: []Peer{trustsA("p1"), peerOf("p2", pubA, A, f.intA)}, Policy: gates},
			cas:   []string{"A", "A-int"},
			holds: []wantHold{{gate: GatePresent, ca: "A-int", waiting: []string{"p1"}}},
		},
		{
			name:    "ambiguous: two CAs named A in the sources",
			in:      Input{Source: mat(f.leafA, nil, A, f.caA2), Published: pubA, Policy: gates},
			wantErr: ErrAmbiguousCA, wantErrMsg: `Give the new CA a distinct subject (e.g. a generation number in its CN, such as "A-2")`,
		},
		{
			name:    "ambiguous: a new CA with the old one's name",
			in:      Input{Source: mat(f.leafA, nil, A), Published: mat(f.leafA, nil, f.caA2, A), Policy: gates},
			wantErr: ErrAmbiguousCA, wantErrMsg: pki.Fingerprint(f.caA2.Cert),
		},
		{
			name:       "ambiguous names are no matter with the gates off",
			in:         Input{Source: mat(f.leafA, nil, A, f.caA2), Published: pubA},
			presentNew: true, cas: []string{"A", "A"},
		},
		{
			name:       "no Memory with presentAfter set",
			in:         Input{Source: srcAB, Published: pubA, Policy: Policy{Gates: true, PresentAfter: time.Minute}},
			wantErrMsg: "no Memory given",
		},
		{
			name:       "no source",
			in:         Input{Published: pubA, Policy: gates},
			wantErrMsg: "no source material",
		},
		{
			name:       "published without a key",
			in:         Input{Source: srcAB, Published: &pki.Material{Leaf: f.leafA.Cert, CAs: certs(A)}, Policy: gates},
			wantErrMsg: "published material has no private key",
		},
		{
			name:       "negative duration",
			in:         Input{Source: srcAB, Published: pubA, Policy: Policy{Gates: true, MaxHold: -time.Hour}},
			wantErrMsg: "negative duration",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Now = now
			d, err := Decide(in)
			if tc.wantErr != nil || tc.wantErrMsg != "" {
				if err == nil {
					t.Fatalf("no error, want %v %q", tc.wantErr, tc.wantErrMsg)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErrMsg) {
					t.Errorf("error %q does not say %q", err, tc.wantErrMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Whatever is decided must be publishable material.
			if err := d.Publish.Validate(now, "publish", "publish key"); err != nil {
				t.Fatalf("Decision.Publish is not valid: %v", err)
			}
			if d.PresentNew != tc.presentNew {
				t.Errorf("PresentNew = %v, want %v", d.PresentNew, tc.presentNew)
			}
			wantLeaf := in.Published
			if tc.presentNew {
				wantLeaf = in.Source
			}
			if !d.Publish.Leaf.Equal(wantLeaf.Leaf) || d.Publish.Key != wantLeaf.Key || !slices.EqualFunc(d.Publish.Chain, wantLeaf.Chain, eqCert) {
				t.Errorf("published leaf %s, want %s", pki.Describe(d.Publish.Leaf), pki.Describe(wantLeaf.Leaf))
			}
			if got := cns(t, d.Publish.CAs); !slices.Equal(got, tc.cas) {
				t.Errorf("CAs = %q, want %q", got, tc.cas)
			}
			for _, c := range in.Source.CAs {
				if !slices.ContainsFunc(d.Publish.CAs, c.Equal) {
					t.Errorf("source CA %s is not published: trust additions must never be held", c.Subject)
				}
			}
			switch {
			case tc.forced == "" && (d.Forced || d.Released != nil):
				t.Errorf("forced (%+v), want not", d.Released)
			case tc.forced != "" && (!d.Forced || d.Released == nil):
				t.Errorf("not forced, want forced")
			case tc.forced != "" && !strings.Contains(d.Released.Reason, tc.forced):
				t.Errorf("Released.Reason %q does not say %q", d.Released.Reason, tc.forced)
			}
			checkHolds(t, now, d.Holds, tc.holds)
			for _, g := range []Gate{GatePresent, GateRetain} {
				want := slices.ContainsFunc(tc.holds, func(h wantHold) bool { return h.gate == g })
				if d.Held(g) != want {
					t.Errorf("Held(%s) = %v, want %v", g, d.Held(g), want)
				}
			}

			// The same situation, peers listed in another order, decides the same.
			rev := in
			rev.Peers = slices.Clone(in.Peers)
			slices.Reverse(rev.Peers)
			d2, err := Decide(rev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, d2) {
				t.Errorf("decision depends on peer order:\n%+v\n%+v", d, d2)
			}
		})
	}
}

func checkHolds(t *testing.T, now time.Time, got []Hold, want []wantHold) {
	t.Helper()
	if len(got) != len(want) {
		for _, h := range got {
			t.Logf("hold %s %s: %s", h.Gate, h.CA.Subject, h.Reason)
		}
		t.Fatalf("%d holds, want %d", len(got), len(want))
	}
	for i, w := range want {
		h := got[i]
		if h.Gate != w.gate || h.CA.Subject.CommonName != w.ca {
			t.Errorf("hold %d: %s on %s, want %s on %s", i, h.Gate, h.CA.Subject.CommonName, w.gate, w.ca)
		}
		if !slices.Equal(h.Waiting, w.waiting) {
			t.Errorf("hold %d: waiting %q, want %q", i, h.Waiting, w.waiting)
		}
		var wantUntil time.Time
		if w.until != 0 {
			wantUntil = now.Add(w.until)
		}
		if !h.Until.Equal(wantUntil) {
			t.Errorf("hold %d: until %v, want %v", i, h.Until, wantUntil)
		}
		if h.Reason == "" || !strings.Contains(h.Reason, w.reason) {
			t.Errorf("hold %d: reason %q does not say %q", i, h.Reason, w.reason)
		}
	}
}

func cns(t *testing.T, cs []*x509.Certificate) []string {
	t.Helper()
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Subject.CommonName
	}
	return out
}

func eqCert(a, b *x509.Certificate) bool { return a.Equal(b) }

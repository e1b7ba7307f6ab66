package rotation

import (
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func TestMemoryObserve(t *testing.T) {
	f := newFixture(t)
	A, B := f.caA, f.caB
	t0 := f.now
	at := func(m time.Duration) time.Time { return t0.Add(m * time.Minute) }
	none := []*pkitest.Cert(nil)
	both := []*pkitest.Cert{A, B}

	// One Memory through a whole rotation; after each observation, what it
	// must remember (zero time: nothing).
	type want struct{ trustedA, trustedB, removedA, removedB time.Time }
	steps := []struct {
		name      string
		at        time.Time
		sources   []*pkitest.Cert
		published []*pkitest.Cert
		want      want
	}{
		{"first build", at(0), []*pkitest.Cert{A}, none, want{trustedA: at(0)}},
		{"A stays: first seen is kept", at(1), []*pkitest.Cert{A}, []*pkitest.Cert{A}, want{trustedA: at(0)}},
		{"B added", at(2), both, []*pkitest.Cert{A}, want{trustedA: at(0), trustedB: at(2)}},
		{"B published", at(3), both, both, want{trustedA: at(0), trustedB: at(2)}},
		{"A leaves the sources", at(4), []*pkitest.Cert{B}, both, want{trustedB: at(2), removedA: at(4)}},
		{"removal time is kept", at(5), []*pkitest.Cert{B}, both, want{trustedB: at(2), removedA: at(4)}},
		{"A comes back: trusted anew", at(6), both, both, want{trustedA: at(6), trustedB: at(2)}},
		{"A leaves again: removed anew", at(7), []*pkitest.Cert{B}, both, want{trustedB: at(2), removedA: at(7)}},
		{"A dropped from published: forgotten", at(8), []*pkitest.Cert{B}, []*pkitest.Cert{B}, want{trustedB: at(2)}},
		{"B removed before ever being published is forgotten", at(9), []*pkitest.Cert{A}, none, want{trustedA: at(9)}},
	}
	m := new(Memory)
	check := func(what string, got time.Time, ok bool, want time.Time) {
		t.Helper()
		if ok != !want.IsZero() || !got.Equal(want) {
			t.Errorf("%s = %v (recorded %v), want %v", what, got, ok, want)
		}
	}
	for _, s := range steps {
		m.Observe(s.at, certs(s.sources...), certs(s.published...))
		t.Run(s.name, func(t *testing.T) {
			got, ok := m.TrustedSince(A.Cert)
			check("TrustedSince(A)", got, ok, s.want.trustedA)
			got, ok = m.TrustedSince(B.Cert)
			check("TrustedSince(B)", got, ok, s.want.trustedB)
			got, ok = m.RemovedAt(A.Cert)
			check("RemovedAt(A)", got, ok, s.want.removedA)
			got, ok = m.RemovedAt(B.Cert)
			check("RemovedAt(B)", got, ok, s.want.removedB)
		})
	}
}

// A restarted sidecar has a fresh Memory: everything counts as seen at the
// first observation, which only makes holds longer.
func TestMemoryRestartCountsFromNow(t *testing.T) {
	f := newFixture(t)
	before := memory(seen{f.now.Add(-3 * time.Hour), []*pkitest.Cert{f.caA, f.caB}, []*pkitest.Cert{f.caA}})
	after := memory(seen{f.now, []*pkitest.Cert{f.caB}, []*pkitest.Cert{f.caA, f.caB}})
	if got, _ := before.TrustedSince(f.caB.Cert); !got.Equal(f.now.Add(-3 * time.Hour)) {
		t.Errorf("before restart: B trusted since %v", got)
	}
	if got, _ := after.TrustedSince(f.caB.Cert); !got.Equal(f.now) {
		t.Errorf("after restart: B trusted since %v, want now", got)
	}
	if got, _ := after.RemovedAt(f.caA.Cert); !got.Equal(f.now) {
		t.Errorf("after restart: A removed at %v, want now", got)
	}
}

func TestMemoryDefaults(t *testing.T) {
	f := newFixture(t)
	var zero Memory
	if _, ok := zero.TrustedSince(f.caA.Cert); ok {
		t.Error("zero Memory remembers a CA")
	}
	var nilMem *Memory
	if got := nilMem.trustedSinceOr(f.caA.Cert, f.now); !got.Equal(f.now) {
		t.Errorf("nil Memory: trusted since %v, want now", got)
	}
	if got := nilMem.removedAtOr(f.caA.Cert, f.now); !got.Equal(f.now) {
		t.Errorf("nil Memory: removed at %v, want now", got)
	}
	// A time in the future (clock stepped back) counts as now.
	m := memory(seen{f.now.Add(time.Hour), []*pkitest.Cert{f.caA}, nil})
	if got := m.trustedSinceOr(f.caA.Cert, f.now); !got.Equal(f.now) {
		t.Errorf("future first-seen: %v, want now", got)
	}
}

func TestMemoryConcurrentUse(t *testing.T) {
	f := newFixture(t)
	m := new(Memory)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				m.Observe(f.now.Add(time.Duration(i*j)*time.Second), certs(f.caA, f.caB), certs(f.caA))
				m.TrustedSince(f.caB.Cert)
				m.RemovedAt(f.caA.Cert)
			}
		}()
	}
	wg.Wait()
}

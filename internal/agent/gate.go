package agent

import (
	"context"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// gateState is a store's rotation gating; nil when the store has no
// rotation section.
type gateState struct {
	held []string
}

// pending reports whether a change is held back, so the store must be
// looked at again even without new inputs.
func (g *gateState) pending() bool { return g != nil && len(g.held) > 0 }

// describe says what is held, for /readyz ("" when nothing is).
func (g *gateState) describe() string {
	if !g.pending() {
		return ""
	}
	return g.held[0]
}

// gate decides what of the validated source material may be published now.
// Without rotation everything may.
func (s *storeSync) gate(_ context.Context, src *pki.Material) (*pki.Material, error) {
	if s.gates == nil {
		return src, nil
	}
	return src, nil
}

package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/rotation"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// gateState is a store's rotation gating (package rotation decides; this
// feeds it and reports). nil when the store has no rotation section.
type gateState struct {
	policy   rotation.Policy
	discover peers.Discoverer
	memory   rotation.Memory
	holds    []rotation.Hold
	logged   string // the holds last logged, so a re-probe that changes nothing stays quiet
}

func newGateState(r *config.Rotation) *gateState {
	return &gateState{
		policy:   rotation.Policy{Gates: r.GatesOn(), PresentAfter: r.PresentAfter.D(), RetainFor: r.RetainFor.D(), MaxHold: r.MaxHold.D()},
		discover: Discoverer(r),
	}
}

// pending reports whether a change is held back, so the store must be
// looked at again even without new inputs.
func (g *gateState) pending() bool { return g != nil && len(g.holds) > 0 }

// describe says what is held, for /readyz ("" when nothing is).
func (g *gateState) describe() string {
	if !g.pending() {
		return ""
	}
	var parts []string
	for _, h := range g.holds {
		parts = append(parts, fmt.Sprintf("%s held: %s", h.Gate, h.Reason))
	}
	return strings.Join(parts, "; ")
}

// gate decides what of the validated source material may be published now.
// Without rotation everything may. Peers are probed only when a decision
// depends on them: a first decision assumes one unconfirmed peer, and only
// if that would hold something are the real peers asked.
func (s *storeSync) gate(ctx context.Context, src *pki.Material, spec store.Spec) (*pki.Material, error) {
	g := s.gates
	if g == nil {
		return src, nil
	}
	published := s.material
	if published == nil { // the first sync of this process: what did an earlier one publish?
		var err error
		if published, err = store.ReadBack(spec); err != nil {
			s.env.Log.Warn("cannot read back the published stores; deciding as for a first build", "store", s.cfg.Name, "error", err.Error())
		}
	}
	now := s.env.Now()
	if published != nil {
		g.memory.Observe(now, src.CAs, published.CAs)
	}
	in := rotation.Input{Now: now, Source: src, Published: published, Memory: &g.memory, Policy: g.policy,
		Peers: []rotation.Peer{{Name: "(not probed)", Err: errors.New("not probed")}}}
	d, err := rotation.Decide(in)
	if err == nil && (len(d.Holds) > 0 || d.Forced) {
		client := published.TLSCertificate()
		obs, derr := ObservePeers(ctx, g.discover, &client)
		in.Peers = rotationPeers(obs, derr)
		s.recordPeers(in.Peers, src, published)
		d, err = rotation.Decide(in)
	}
	if err != nil {
		if errors.Is(err, rotation.ErrAmbiguousCA) {
			return nil, &pki.SourceError{Reason: pki.ReasonAmbiguousCA, Err: err}
		}
		return nil, err
	}
	s.recordDecision(d)
	return d.Publish, nil
}

// recordDecision keeps the holds, exports them and logs what changed.
func (s *storeSync) recordDecision(d rotation.Decision) {
	g, name := s.gates, s.cfg.Name
	g.holds = d.Holds
	for _, gate := range []rotation.Gate{rotation.GatePresent, rotation.GateRetain} {
		s.metrics.RotationHeld.WithLabelValues(name, string(gate)).Set(boolFloat(d.Held(gate)))
	}
	if d.Forced {
		s.metrics.RotationForced.WithLabelValues(name).Inc()
		s.env.Log.Error("safety valve: presenting the new leaf although not every peer accepts its CA, because the served leaf expires within maxHold",
			"store", name, "reason", d.Released.Reason, "waiting", d.Released.Waiting)
	}
	summary := g.describe()
	if summary == g.logged {
		return
	}
	g.logged = summary
	if summary == "" {
		s.env.Log.Info("rotation gates: nothing held", "store", name, "presenting_new_leaf", d.PresentNew)
		return
	}
	for _, h := range d.Holds {
		s.env.Log.Info("rotation change held", "store", name, "gate", string(h.Gate), "ca", h.CA.Subject.String(),
			"waiting", h.Waiting, "until", h.Until, "reason", h.Reason)
	}
}

// recordPeers exports, for every CA of the source or the published stores,
// whether each peer trusts it and serves a chain from it.
func (s *storeSync) recordPeers(ps []rotation.Peer, src, published *pki.Material) {
	name := s.cfg.Name
	s.metrics.PeerTrustsCA.DeletePartialMatch(map[string]string{"store": name})
	s.metrics.PeerServesCA.DeletePartialMatch(map[string]string{"store": name})
	cas := pki.Dedupe(slices.Concat(src.CAs, published.CAs))
	for _, p := range ps {
		if p.Err != nil {
			s.env.Log.Info("peer not confirmed", "store", name, "peer", p.Name, "error", p.Err.Error())
		}
		for _, ca := range cas {
			s.metrics.PeerTrustsCA.WithLabelValues(name, p.Name, CALabel(ca)).Set(boolFloat(p.Err == nil && rotation.Trusts(p, ca)))
			s.metrics.PeerServesCA.WithLabelValues(name, p.Name, CALabel(ca)).Set(boolFloat(rotation.Serves(p, ca)))
		}
	}
}

// CALabel names a CA in metric labels: its common name, or its whole
// subject when it has none.
func CALabel(ca *x509.Certificate) string {
	if ca.Subject.CommonName != "" {
		return ca.Subject.CommonName
	}
	return ca.Subject.String()
}

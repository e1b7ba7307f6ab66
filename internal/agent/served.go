package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/verify"
)

// reloadAndVerify runs the store's reload actions, then dials every
// endpoint serving this store until it presents the new leaf.
func (s *storeSync) reloadAndVerify(ctx context.Context) {
	name, m := s.cfg.Name, s.material
	err := s.runner.Run(ctx, name)
	s.reloadDue = err != nil
	if err != nil {
		// Still verify: Cassandra's own timer, or another action, may have
		// picked the stores up.
		s.env.Log.Error("reload failed", "store", name, "error", err.Error())
	}
	client := m.TLSCertificate()
	ok := true
	for _, ep := range s.endpoints {
		fp, err := verify.Until(ctx, ep, m.Leaf, verify.Options{Deadline: s.verify.Deadline.D(), Client: &client, ServerName: s.verify.ServerName})
		if err != nil {
			ok = false
			s.metrics.ServedMatch.WithLabelValues(ep).Set(0)
			s.env.Log.Error("endpoint does not serve the new certificate", "store", name, "endpoint", ep, "served_sha256", fp,
				"want_sha256", pki.Fingerprint(m.Leaf), "error", err.Error())
			continue
		}
		s.metrics.ServedMatch.WithLabelValues(ep).Set(1)
		s.env.Log.Info("endpoint serves the current certificate", "store", name, "endpoint", ep, "sha256", fp)
	}
	// Without endpoints to look at, a successful reload is the best
	// evidence there is.
	if !ok || (len(s.endpoints) == 0 && s.reloadDue) {
		s.health.Set(name, StateUnverified, "last reload not verified: the endpoints do not serve the current certificate")
		return
	}
	if !s.seen.IsZero() && !s.gates.pending() {
		d := s.env.Now().Sub(s.seen)
		s.metrics.Rotation.WithLabelValues(name).Observe(d.Seconds())
		s.env.Log.Info("rotation complete", "store", name, "seconds", d.Seconds(), "endpoints", len(s.endpoints))
	}
	s.markServed("")
}

// settle handles a store that did not change but is not known to be
// served — at start, or after a failed reload. It looks first: when every
// endpoint already serves the current leaf there is nothing to do; when one
// serves another certificate, or the last reload failed, reload; when none
// answers (Cassandra still starting), look again at the next resync rather
// than reload into nothing.
func (s *storeSync) settle(ctx context.Context) {
	client := s.material.TLSCertificate()
	want := pki.Fingerprint(s.material.Leaf)
	stale, unreachable := false, false
	for _, ep := range s.endpoints {
		got, err := s.served(ctx, ep, &client)
		switch {
		case err != nil:
			unreachable = true
			s.metrics.ServedMatch.WithLabelValues(ep).Set(0)
			s.env.Log.Info("endpoint not reachable yet; will look again at the next resync", "store", s.cfg.Name, "endpoint", ep,
				"cause", verify.Cause(err), "error", err.Error())
		case pki.Fingerprint(got) != want:
			stale = true
		default:
			s.metrics.ServedMatch.WithLabelValues(ep).Set(1)
		}
	}
	switch {
	case stale, s.reloadDue:
		s.reloadAndVerify(ctx)
	case unreachable:
		s.health.Set(s.cfg.Name, StateUnverified, "an endpoint is not reachable; will look again at the next resync")
	default:
		s.markServed("")
	}
}

// served dials one endpoint once and returns the leaf it presents, within
// 5 s or the verify deadline if that is shorter.
func (s *storeSync) served(ctx context.Context, ep string, client *tls.Certificate) (leaf *x509.Certificate, err error) {
	timeout := 5 * time.Second
	if d := s.verify.Deadline.D(); d > 0 {
		timeout = min(timeout, d)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return verify.Served(dctx, ep, verify.Options{Client: client, ServerName: s.verify.ServerName})
}

// markServed records that the endpoints serve the current material; held
// rotation changes keep the store ready but say so.
func (s *storeSync) markServed(detail string) {
	if held := s.gates.describe(); held != "" {
		s.health.Set(s.cfg.Name, StateHeld, held) // the rotation is not over: s.seen stays
		return
	}
	s.seen = time.Time{}
	s.health.Set(s.cfg.Name, StateServed, detail)
}

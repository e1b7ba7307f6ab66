package agent

import (
	"context"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
)

// probeLoop runs the CQL probe of the wait section every resync interval
// and exports cql_up and cql_probe_duration_seconds per host. The client is
// rebuilt each time from the stores' current material, so it follows
// rotations.
func (s *Sidecar) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Watch.Resync.D())
	defer t.Stop()
	for {
		s.ProbeCQL(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ProbeCQL probes every host of the wait section once.
func (s *Sidecar) ProbeCQL(ctx context.Context) {
	env, m := s.svc.env, s.svc.metrics
	client, err := WaitClient(s.cfg, s.svc.materials(), env)
	if err != nil {
		env.Log.Warn("CQL probe not possible", "error", err.Error())
		return
	}
	for _, h := range s.cfg.Wait.Hosts {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Wait.ProbeTimeout.D())
		_, err := client.Probe(pctx, h)
		cancel()
		m.CQLProbeDuration.WithLabelValues(h).Observe(time.Since(start).Seconds())
		if err != nil {
			env.Log.Warn("CQL probe failed", "host", h, "cause", cql.Classify(err), "error", err.Error())
		}
		m.CQLUp.WithLabelValues(h).Set(boolFloat(err == nil))
	}
}

// holdLoop re-syncs the stores whose rotation change is held, on a short
// timer of its own with backoff: peers change what they trust without any
// file event here. While nothing is held it probes nobody.
func (s *Sidecar) holdLoop(ctx context.Context) {
	base := s.probeInterval()
	if base == 0 {
		return // no store has a rotation section
	}
	delay := base
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		if !s.svc.held.Load() {
			delay = base
			continue
		}
		s.Sync(ctx, SyncHold)
		// Backoff, capped low: a probe is a few TLS handshakes, and a
		// release should follow the last peer's change within seconds.
		delay = min(2*delay, max(base, maxHoldProbeDelay))
	}
}

// maxHoldProbeDelay caps the re-probe backoff while a change is held.
const maxHoldProbeDelay = 5 * time.Second

// probeInterval is the shortest rotation probe interval of any store (0: none).
func (s *Sidecar) probeInterval() time.Duration {
	var d time.Duration
	for _, st := range s.cfg.Stores {
		if r := st.Rotation; r != nil && (d == 0 || r.ProbeInterval.D() < d) {
			d = r.ProbeInterval.D()
		}
	}
	return d
}

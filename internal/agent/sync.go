package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// SyncReason says why a sync runs.
type SyncReason string

const (
	SyncStart  SyncReason = "start"  // the sidecar started
	SyncEvent  SyncReason = "event"  // a file event, after debouncing
	SyncResync SyncReason = "resync" // the periodic resync or a polling tick
	SyncHold   SyncReason = "hold"   // a rotation gate re-probes its peers
	SyncOnce   SyncReason = "once"   // sidecar --once: reload even when nothing changed
)

// services are what every store's sync shares.
type services struct {
	env     Env
	metrics *metrics.Metrics
	runner  *reload.Runner
	health  *Health
	verify  config.Verify // defaults applied; zero when there is no verify section

	held atomic.Bool // some store has a rotation change held: re-probe soon

	mu      sync.Mutex
	current map[string]*pki.Material // store → material its outputs hold, for the CQL probe
}

// materials returns the current material of every store that has one,
// without waiting on a sync.
func (v *services) materials() map[string]*pki.Material {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.current)
}

// storeSync keeps one store current. It is only used under the sidecar's
// sync lock.
type storeSync struct {
	*services
	cfg       config.Store
	endpoints []string // verify endpoints serving this store

	applied   inputs        // inputs the outputs were last built from
	refused   inputs        // last inputs refused; events skip them, resyncs retry (time can fix validity)
	material  *pki.Material // what the outputs hold; nil until known
	passwords [32]byte      // the passwords of the first build: what Cassandra started with
	reloadDue bool          // the last reload failed: reload again rather than only look
	seen      time.Time     // when the change being rolled out was first noticed
	gates     *gateState    // rotation; nil without a rotation section
}

// sync runs the stages in order: source → validate → gate → publish →
// reload → verify. Each stage either hands on or records why it stopped.
func (s *storeSync) sync(ctx context.Context, why SyncReason) {
	in := readInputs(s.cfg, s.env.Getenv)
	if in == s.applied && why != SyncOnce && !s.gates.pending() {
		if why == SyncResync {
			s.repair(ctx)
		}
		return
	}
	if in == s.refused && why == SyncEvent {
		return // already reported; a resync retries
	}
	if s.seen.IsZero() {
		s.seen = s.env.Now()
	}
	src, spec, err := s.validate()
	if err != nil {
		s.refuse(in, err)
		return
	}
	m, err := s.gate(ctx, src, spec)
	if err != nil {
		s.refuse(in, err)
		return
	}
	res, err := s.publish(m, spec)
	if err != nil {
		s.outputFailed(in, err)
		return
	}
	s.applied, s.refused = in, inputs{}
	if s.restartRequired(spec) {
		return
	}
	if s.health.State(s.cfg.Name) == StatePending {
		s.health.Set(s.cfg.Name, StateUnverified, "outputs current; making sure the endpoints serve them")
	}
	switch {
	case res.Changed() || why == SyncOnce || s.reloadDue:
		s.reloadAndVerify(ctx)
	case s.health.State(s.cfg.Name).ready():
		s.markServed("")
	default:
		s.settle(ctx)
	}
}

// repair runs at a resync when the inputs did not change. The outputs are
// compared with what they should hold (cheap: decode and compare), so one
// deleted or corrupted behind our back is rewritten and reloaded; material
// that time made invalid (an expired leaf) is refused; a failed reload or an
// unreachable endpoint is retried.
func (s *storeSync) repair(ctx context.Context) {
	src, spec, err := s.validate()
	if err != nil {
		s.refuse(s.applied, err)
		return
	}
	m, err := s.gate(ctx, src, spec)
	if err != nil {
		s.refuse(s.applied, err)
		return
	}
	res, err := s.publish(m, spec)
	switch {
	case err != nil:
		s.outputFailed(s.applied, err)
	case res.Changed():
		s.env.Log.Warn("outputs were missing or changed by someone else: rewritten", "store", s.cfg.Name, "written", res.Written)
		s.reloadAndVerify(ctx)
	case !s.health.State(s.cfg.Name).ready():
		s.settle(ctx)
	}
}

// validate reads the store's passwords and its source, and checks the
// material (pki.Load refuses anything that is not usable as a whole).
func (s *storeSync) validate() (*pki.Material, store.Spec, error) {
	src, spec, err := StoreSpec(s.cfg, s.env.Getenv)
	if err != nil {
		return nil, spec, err
	}
	if err := spec.Validate(); err != nil {
		// A password Java cannot use (PKCS#12 takes only ASCII): the stores
		// would be written and Cassandra could not open them.
		return nil, spec, passwordError(fmt.Errorf("store %s: %w", s.cfg.Name, err))
	}
	m, err := pki.Load(src, s.env.Now())
	return m, spec, err
}

// publish writes the outputs that do not already hold m.
func (s *storeSync) publish(m *pki.Material, spec store.Spec) (store.Result, error) {
	res, err := store.Publish(m, spec, s.env.Now())
	if err != nil {
		return res, err
	}
	s.material = m
	s.mu.Lock()
	s.current[s.cfg.Name] = m
	s.mu.Unlock()
	name := s.cfg.Name
	result := "unchanged"
	if res.Changed() {
		result = "success"
	}
	s.metrics.StoreBuilds.WithLabelValues(name, result).Inc()
	s.metrics.StoreLastSuccess.WithLabelValues(name).SetToCurrentTime()
	s.metrics.SetCertificates(name, m.Leaf, m.Chain, m.CAs)
	logPublished(s.env, name, m, res, slog.LevelDebug) // every resync confirms the outputs: not news
	return res, nil
}

// refuse records source material that failed validation. The outputs keep
// what they held.
func (s *storeSync) refuse(in inputs, err error) {
	s.refused = in
	reason := pki.ReasonOf(err)
	s.metrics.StoreBuilds.WithLabelValues(s.cfg.Name, "error").Inc()
	s.metrics.SourceErrors.WithLabelValues(s.cfg.Name, string(reason)).Inc()
	s.env.Log.Error("source refused: outputs left as they were", "store", s.cfg.Name, "source", s.cfg.PKISource().String(),
		"reason", string(reason), "error", err.Error())
	s.health.Set(s.cfg.Name, StateSourceInvalid, err.Error())
}

// outputFailed records an output that could not be written. It is not a
// source error: the source was valid.
func (s *storeSync) outputFailed(in inputs, err error) {
	s.refused = in
	var oe *store.OutputError
	path := ""
	if errors.As(err, &oe) {
		path = oe.Path
	}
	s.metrics.StoreBuilds.WithLabelValues(s.cfg.Name, "error").Inc()
	s.env.Log.Error("writing an output failed; will retry at the next resync", "store", s.cfg.Name, "output", path, "error", err.Error())
	s.health.Set(s.cfg.Name, StateOutputFailed, err.Error())
}

// restartRequired applies the password policy: Cassandra keeps the
// passwords it read from cassandra.yaml at start, so stores under a new
// password cannot be hot-reloaded. It clears when the old password returns.
func (s *storeSync) restartRequired(spec store.Spec) bool {
	pw := passwordsOf(spec.Password, spec.TruststorePassword)
	if s.passwords == ([32]byte{}) {
		s.passwords = pw
	}
	required := pw != s.passwords
	s.metrics.RestartRequired.WithLabelValues(s.cfg.Name).Set(boolFloat(required))
	if required {
		s.env.Log.Error("store password changed: Cassandra keeps the passwords it read from cassandra.yaml at start, "+
			"so a hot reload cannot load these stores; restart the node (init renders the new password) — reload skipped",
			"store", s.cfg.Name)
		s.health.Set(s.cfg.Name, StateRestartRequired, "password changed, restart required")
	}
	return required
}

// logPublished logs what a publish did; "unchanged" at unchangedLevel.
func logPublished(env Env, name string, m *pki.Material, res store.Result, unchangedLevel slog.Level) {
	msg, level := "stores unchanged", unchangedLevel
	if res.Changed() {
		msg, level = "stores published", slog.LevelInfo
	}
	env.Log.Log(context.Background(), level, msg, "store", name, "written", res.Written, "unchanged", res.Unchanged,
		"leaf_subject", m.Leaf.Subject.String(), "leaf_serial", pki.SerialHex(m.Leaf),
		"leaf_sha256", pki.Fingerprint(m.Leaf), "leaf_not_after", m.Leaf.NotAfter.UTC(),
		"trusted_cas", len(m.CAs))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

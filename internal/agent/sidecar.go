package agent

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/watch"
)

// Sidecar keeps a pod's stores current: on every change of a store's
// sources it validates, gates, publishes, reloads and verifies (sync.go).
type Sidecar struct {
	cfg    *config.Config
	svc    *services
	health *Health

	// syncMu serializes syncs; it is held through reloads and verification
	// and owns every storeSync.
	syncMu sync.Mutex
	stores []*storeSync

	// onWatch, when set (tests), is told the watched directories whenever
	// a watch is added.
	onWatch func(dirs []string)
}

// NewSidecar wires a sidecar from a validated configuration (config.Load).
func NewSidecar(cfg *config.Config, env Env, m *metrics.Metrics) (*Sidecar, error) {
	steps := ReloadSteps(cfg.Reload)
	var names []string
	for _, sc := range cfg.Stores {
		names = append(names, sc.Name)
	}
	// A sync is due every resync; allow a slow one (reloads and verification
	// up to their deadlines) before calling the loop stuck.
	stale := 3*cfg.Watch.Resync.D() + 2*time.Minute + verifyBudget(cfg)
	health := NewHealth(names, stale, env.Now)
	svc := &services{env: env, metrics: m, health: health, current: map[string]*pki.Material{},
		runner: &reload.Runner{Steps: steps, Metrics: m, Log: env.Log}}
	if cfg.Verify != nil {
		svc.verify = *cfg.Verify
	}
	s := &Sidecar{cfg: cfg, svc: svc, health: health}
	zeroCounters(m, cfg, steps)
	for _, sc := range cfg.Stores {
		st := &storeSync{services: svc, cfg: sc, endpoints: cfg.EndpointsOf(sc.Name)}
		if sc.Rotation != nil {
			st.gates = newGateState(sc.Rotation)
		}
		s.stores = append(s.stores, st)
	}
	return s, nil
}

// zeroCounters starts at 0 the counter series that alerts take increase()
// of: a series that first appears at 1 has no earlier sample, so its first
// event would never fire "increase(...) > 0".
func zeroCounters(m *metrics.Metrics, cfg *config.Config, steps []reload.Step) {
	for _, sc := range cfg.Stores {
		for _, r := range pki.Reasons() {
			m.SourceErrors.WithLabelValues(sc.Name, string(r)).Add(0)
		}
		for _, result := range []string{"success", "unchanged", "error"} {
			m.StoreBuilds.WithLabelValues(sc.Name, result).Add(0)
		}
		if sc.Rotation != nil {
			m.RotationForced.WithLabelValues(sc.Name).Add(0)
		}
	}
	for _, st := range steps {
		for _, result := range []string{"success", "error"} {
			m.Reloads.WithLabelValues(st.Action.Name(), result).Add(0)
		}
	}
}

// verifyBudget is the longest a sync may spend verifying every endpoint.
func verifyBudget(cfg *config.Config) time.Duration {
	if cfg.Verify == nil {
		return 0
	}
	return time.Duration(len(cfg.Verify.Endpoints)) * cfg.Verify.Deadline.D()
}

// Health is the snapshot behind /healthz and /readyz.
func (s *Sidecar) Health() *Health { return s.health }

// Handler serves /metrics, /healthz and /readyz.
func (s *Sidecar) Handler(metricsHandler http.Handler) http.Handler {
	return s.health.Handler(metricsHandler)
}

// Run syncs every store, then again on every watcher notification and
// every rotation re-probe, until ctx ends. With a wait section it also
// probes CQL every resync interval.
func (s *Sidecar) Run(ctx context.Context) error {
	s.health.Running(true)
	defer s.health.Running(false)
	s.Sync(ctx, SyncStart)
	if s.cfg.Wait != nil {
		go s.probeLoop(ctx)
	}
	go s.holdLoop(ctx)
	return watch.Run(ctx, watch.Options{
		Dirs:     s.watchDirs(),
		Debounce: s.cfg.Watch.Debounce.D(),
		Resync:   s.cfg.Watch.Resync.D(),
		Poll:     bool(s.cfg.Watch.Poll),
		Log:      s.svc.env.Log,
		OnWatch:  s.onWatch,
		OnMode: func(m watch.Mode) {
			s.svc.metrics.SetWatchMode(string(m))
			s.svc.env.Log.Info("watching sources", "mode", string(m), "dirs", s.watchDirs())
		},
	}, func(r watch.Reason) { s.Sync(ctx, syncReason(r)) })
}

func syncReason(r watch.Reason) SyncReason {
	if r == watch.Event {
		return SyncEvent
	}
	return SyncResync
}

// Sync checks every store once.
func (s *Sidecar) Sync(ctx context.Context, why SyncReason) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.health.Beat()
	held := false
	for _, st := range s.stores {
		if why == SyncHold && !st.gates.pending() {
			continue
		}
		st.sync(ctx, why)
		held = held || st.gates.pending()
	}
	s.svc.held.Store(held)
	s.health.Beat()
}

// Once builds every store, runs the reload actions and verifies; it
// reports whether everything succeeded.
func (s *Sidecar) Once(ctx context.Context) error {
	s.Sync(ctx, SyncOnce)
	if st := s.health.Status(); !st.Ready {
		return errors.New(st.ReadyWhy())
	}
	return nil
}

// watchDirs is every directory a store reads from: the directory of each
// source file (a source directory, a credential bundle's, each trust
// bundle's), where the kubelet swaps ..data, csi-driver renames its files
// and a ConfigMap's bundle is replaced; and the password files'.
func (s *Sidecar) watchDirs() []string {
	var dirs []string
	for i := range s.cfg.Stores {
		st := &s.cfg.Stores[i]
		for _, f := range append(st.PKISource().Paths(), st.PasswordFile, st.TruststorePasswordFile) {
			if d := filepath.Dir(f); f != "" && !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/verify"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/watch"
)

// Sidecar keeps a pod's stores current: on every change of a store's
// sources it validates, rebuilds, publishes, runs the reload actions and
// verifies that the endpoints serve the new certificate.
type Sidecar struct {
	cfg     *config.Config
	env     Env
	metrics *metrics.Metrics
	runner  *reload.Runner

	// syncMu serializes syncs; it is held through reloads and verification
	// (up to the verify deadline) and owns every storeState.
	syncMu sync.Mutex
	stores []*storeState

	// mu guards the snapshot that /readyz, /healthz and the CQL probe read,
	// so they answer at once even while a sync is verifying.
	mu        sync.Mutex
	problems  map[string]string        // store → why it is not ready ("" when ready)
	materials map[string]*pki.Material // store → current material
	watching  bool
	lastSync  time.Time
}

// storeState is what the sidecar knows of one store.
type storeState struct {
	cfg config.Store
	// published is the input hash of what the outputs hold; refused the
	// hash of the last input that failed validation (not retried on
	// events, only on resync, since time can make it valid).
	published, refused [32]byte
	material           *pki.Material
	valid, verified    bool
	reloadFailed       bool
	lastErr            string
	// passwords is the hash of the passwords of the first build: what
	// Cassandra read from cassandra.yaml at start and keeps until restart.
	passwords       [32]byte
	restartRequired bool
	// changeSeen is when the pending change was first noticed.
	changeSeen time.Time
}

// NewSidecar builds the reload runner from the configuration.
func NewSidecar(cfg *config.Config, env Env, m *metrics.Metrics) (*Sidecar, error) {
	steps, err := ReloadSteps(cfg.Reload)
	if err != nil {
		return nil, err
	}
	s := &Sidecar{cfg: cfg, env: env, metrics: m, runner: &reload.Runner{Steps: steps, Metrics: m, Log: env.Log},
		problems: map[string]string{}, materials: map[string]*pki.Material{}}
	for _, sc := range cfg.Stores {
		st := &storeState{cfg: sc}
		s.stores = append(s.stores, st)
		s.problems[sc.Name] = "not built yet"
	}
	return s, nil
}

// Run syncs once, then on every watcher notification, until ctx ends.
// With a wait section it also probes CQL every resync interval.
func (s *Sidecar) Run(ctx context.Context) error {
	s.Sync(ctx, "start", false)
	if s.cfg.Wait != nil {
		go s.probeLoop(ctx)
	}
	s.mu.Lock()
	s.watching = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.watching = false; s.mu.Unlock() }()
	return watch.Run(ctx, watch.Options{
		Dirs:     s.watchDirs(),
		Debounce: s.cfg.Watch.Debounce.Or(500 * time.Millisecond),
		Resync:   s.cfg.Watch.Resync.Or(time.Minute),
		Poll:     bool(s.cfg.Watch.Poll),
		Log:      s.env.Log,
		OnMode: func(m watch.Mode) {
			s.metrics.SetWatchMode(string(m))
			s.env.Log.Info("watching sources", "mode", string(m), "dirs", s.watchDirs())
		},
	}, func(r watch.Reason) { s.Sync(ctx, string(r), false) })
}

// watchDirs is every directory a store reads from.
func (s *Sidecar) watchDirs() []string {
	var dirs []string
	for _, st := range s.cfg.Stores {
		dirs = append(dirs, st.Source)
		for _, f := range append(append([]string{}, st.TrustBundles...), st.PasswordFile, st.TruststorePasswordFile) {
			if f != "" {
				dirs = append(dirs, filepath.Dir(f))
			}
		}
	}
	return dirs
}

// Sync checks every store once. force runs the reload actions even when
// nothing changed (sidecar --once).
func (s *Sidecar) Sync(ctx context.Context, reason string, force bool) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	s.lastSync = s.env.Now()
	s.mu.Unlock()
	for _, st := range s.stores {
		s.syncStore(ctx, st, reason, force)
		s.publish(st)
	}
}

// publish copies a store's outcome into the snapshot.
func (s *Sidecar) publish(st *storeState) {
	var problem string
	switch {
	case !st.valid:
		problem = "source invalid: " + st.lastErr
	case st.restartRequired:
		problem = "password changed, restart required"
	case !st.verified:
		problem = "last reload not verified"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems[st.cfg.Name] = problem
	if st.material != nil {
		s.materials[st.cfg.Name] = st.material
	}
}

func (s *Sidecar) syncStore(ctx context.Context, st *storeState, reason string, force bool) {
	name := st.cfg.Name
	h := inputHash(st.cfg, s.env.Getenv)
	switch {
	case h == st.published && st.valid && !force:
		if !st.verified && !st.restartRequired && reason == string(watch.Resync) {
			s.converge(ctx, st) // a failed reload or verification is retried on resync
		}
		return
	case h == st.refused && reason != string(watch.Resync) && reason != "start":
		return // already reported; time may fix it, so resync retries
	}
	if st.changeSeen.IsZero() {
		st.changeSeen = s.env.Now()
	}
	spec, m, changed, err := s.build(st)
	if err != nil {
		st.refused, st.valid, st.lastErr = h, false, err.Error()
		s.metrics.StoreBuilds.WithLabelValues(name, "error").Inc()
		s.metrics.SourceErrors.WithLabelValues(name, ErrorReason(err)).Inc()
		return
	}
	st.material = m
	st.published, st.refused, st.valid, st.lastErr = h, [32]byte{}, true, ""
	result := "unchanged"
	if changed {
		result = "success"
	}
	s.metrics.StoreBuilds.WithLabelValues(name, result).Inc()
	s.metrics.StoreLastSuccess.WithLabelValues(name).SetToCurrentTime()
	s.metrics.SetCertificates(name, m.Leaf, m.Chain, m.CAs)

	pw := passwordHash(spec.Password, spec.TruststorePassword)
	if st.passwords == ([32]byte{}) {
		st.passwords = pw
	}
	st.restartRequired = pw != st.passwords // cleared if the old password comes back
	s.metrics.RestartRequired.WithLabelValues(name).Set(boolFloat(st.restartRequired))
	if st.restartRequired {
		s.env.Log.Error("store password changed: Cassandra keeps the passwords it read from cassandra.yaml at start, "+
			"so a hot reload cannot load these stores; restart the node (init renders the new password) — reload skipped",
			"store", name)
		st.verified = false
		return
	}
	switch {
	case changed || force:
		s.reloadAndVerify(ctx, st)
	case !st.verified:
		s.converge(ctx, st)
	default:
		st.changeSeen = time.Time{}
	}
}

// converge handles stores that did not change but are not known to be
// served — at start, or after a failed reload. It looks first: when every
// endpoint already serves the current leaf there is nothing to do; when one
// serves another certificate, reload; when none answers (Cassandra still
// starting), try again at the next resync rather than reload into nothing.
func (s *Sidecar) converge(ctx context.Context, st *storeState) {
	client := st.material.TLSCertificate()
	want := pki.Fingerprint(st.material.Leaf)
	stale, unreachable := false, false
	for _, ep := range s.endpointsFor(st.cfg.Name) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := verify.Served(dctx, ep, &client)
		cancel()
		switch {
		case err != nil:
			unreachable = true
			s.metrics.ServedMatch.WithLabelValues(ep).Set(0)
			s.env.Log.Info("endpoint not reachable yet; will check again at the next resync", "store", st.cfg.Name, "endpoint", ep, "error", err.Error())
		case pki.Fingerprint(got) != want:
			stale = true
		default:
			s.metrics.ServedMatch.WithLabelValues(ep).Set(1)
		}
	}
	switch {
	case stale, st.reloadFailed:
		s.reloadAndVerify(ctx, st)
	case !unreachable:
		st.verified = true
		st.changeSeen = time.Time{}
	}
}

// build resolves the store's configuration (re-reading its passwords) and
// publishes its outputs.
func (s *Sidecar) build(st *storeState) (store.Spec, *pki.Material, bool, error) {
	src, spec, err := StoreSpec(st.cfg, s.env.Getenv)
	if err != nil {
		s.env.Log.Error("store configuration unusable: outputs left as they were", "store", st.cfg.Name, "error", err.Error())
		return spec, nil, false, err
	}
	m, res, err := BuildStore(s.env.Log, st.cfg.Name, src, spec, s.env.Now())
	return spec, m, res.Changed(), err
}

// reloadAndVerify runs the store's reload actions, then checks every
// endpoint serving this store until it presents the new leaf.
func (s *Sidecar) reloadAndVerify(ctx context.Context, st *storeState) {
	name, m := st.cfg.Name, st.material
	err := s.runner.Run(ctx, name)
	st.reloadFailed = err != nil
	if err != nil {
		s.env.Log.Error("reload failed", "store", name, "error", err.Error())
		// Still verify: Cassandra's own timer, or another action, may have
		// picked the stores up.
	}
	endpoints := s.endpointsFor(name)
	ok := true
	deadline := time.Minute
	if s.cfg.Verify != nil {
		deadline = s.cfg.Verify.Deadline.Or(time.Minute)
	}
	client := m.TLSCertificate()
	for _, ep := range endpoints {
		fp, err := verify.Until(ctx, ep, m.Leaf, verify.Options{Deadline: deadline, Client: &client})
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
	st.verified = ok && (len(endpoints) > 0 || !st.reloadFailed)
	if st.verified && !st.changeSeen.IsZero() {
		d := s.env.Now().Sub(st.changeSeen)
		s.metrics.Rotation.WithLabelValues(name).Observe(d.Seconds())
		s.env.Log.Info("rotation complete", "store", name, "seconds", d.Seconds(), "endpoints", len(endpoints))
		st.changeSeen = time.Time{}
	}
}

// probeLoop runs the CQL probe of the wait section periodically and exports
// cql_up and cql_probe_duration_seconds per host. The client is rebuilt each
// time from the store's current material, so it follows rotations.
func (s *Sidecar) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Watch.Resync.Or(time.Minute))
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
	s.mu.Lock()
	materials := maps.Clone(s.materials)
	s.mu.Unlock()
	client, err := WaitClient(s.cfg, materials, s.env)
	if err != nil {
		s.env.Log.Warn("CQL probe not possible", "error", err.Error())
		return
	}
	for _, h := range s.cfg.Wait.Hosts {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Wait.ProbeTimeout.Or(10*time.Second))
		_, err := client.Probe(pctx, h)
		cancel()
		s.metrics.CQLProbeDuration.WithLabelValues(h).Observe(time.Since(start).Seconds())
		up := 1.0
		if err != nil {
			up = 0
			s.env.Log.Warn("CQL probe failed", "host", h, "cause", cql.Classify(err), "error", err.Error())
		}
		s.metrics.CQLUp.WithLabelValues(h).Set(up)
	}
}

// endpointsFor lists the verify endpoints that serve store name.
func (s *Sidecar) endpointsFor(name string) []string {
	v := s.cfg.Verify
	if v == nil {
		return nil
	}
	var out []string
	for _, e := range v.Endpoints {
		owner := e.Store
		if owner == "" {
			owner = v.Store
		}
		if owner == "" && len(s.cfg.Stores) == 1 {
			owner = s.cfg.Stores[0].Name
		}
		if owner == name {
			out = append(out, e.Address)
		}
	}
	return out
}

// Status reports readiness and health for /readyz and /healthz.
func (s *Sidecar) Status() (ready bool, readyWhy string, healthy bool, healthWhy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var problems []string
	for _, st := range s.cfg.Stores {
		if p := s.problems[st.Name]; p != "" {
			problems = append(problems, fmt.Sprintf("store %s: %s", st.Name, p))
		}
	}
	ready, readyWhy = len(problems) == 0, strings.Join(problems, "\n")
	resync := s.cfg.Watch.Resync.Or(time.Minute)
	switch {
	case !s.watching:
		return ready, readyWhy, false, "watcher not running"
	case s.env.Now().Sub(s.lastSync) > 3*resync+2*time.Minute:
		return ready, readyWhy, false, fmt.Sprintf("no sync for %s", s.env.Now().Sub(s.lastSync).Round(time.Second))
	}
	return ready, readyWhy, true, "ok"
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Sidecar) Handler(metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _, ok, why := s.Status()
		status(w, ok, why)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why, _, _ := s.Status()
		status(w, ok, why)
	})
	return mux
}

func status(w http.ResponseWriter, ok bool, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if why == "" {
		why = "ok"
	}
	fmt.Fprintln(w, why)
}

// Once builds every store, runs the reload actions and verifies; it
// reports whether everything succeeded.
func (s *Sidecar) Once(ctx context.Context) error {
	s.Sync(ctx, "once", true)
	if ok, why, _, _ := s.Status(); !ok {
		return errors.New(why)
	}
	return nil
}

// inputHash hashes everything a store's outputs depend on: the source
// files, trust bundles, passwords and options. Unreadable files hash as
// their error, so appearing and disappearing files are changes too.
func inputHash(c config.Store, getenv func(string) string) [32]byte {
	h := sha256.New()
	add := func(label string, data []byte) {
		fmt.Fprintf(h, "%s\x00%d\x00", label, len(data))
		h.Write(data)
	}
	file := func(p string) {
		data, err := pki.ReadFile(p)
		if err != nil {
			add(p, []byte("error: "+err.Error()))
			return
		}
		add(p, data)
	}
	for _, f := range []string{pki.CertFile, pki.KeyFile, pki.CAFile} {
		file(filepath.Join(c.Source, f))
	}
	for _, f := range c.TrustBundles {
		file(f)
	}
	for _, f := range []string{c.PasswordFile, c.TruststorePasswordFile} {
		if f != "" {
			file(f)
		}
	}
	if c.PasswordEnv != "" {
		add("env", []byte(getenv(c.PasswordEnv)))
	}
	fmt.Fprintf(h, "%+v%+v%+v%v", c.Keystore, c.Truststore, c.PEM, c.Mode)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func passwordHash(pw, tpw []byte) [32]byte {
	return sha256.Sum256(bytes.Join([][]byte{pw, tpw}, []byte{0}))
}

// ErrorReason maps a source error to the reason label of
// source_errors_total: a small fixed set, never text from the input.
func ErrorReason(err error) string {
	s := err.Error()
	for _, r := range []struct{ reason, match string }{
		{"key_mismatch", "does not match the leaf"},
		{"expired", "expired at"},
		{"not_yet_valid", "not valid until"},
		{"chain_order", "out of order"},
		{"chain_order", "did not issue"},
		{"untrusted", "does not chain"},
		{"untrusted", "no trusted CA"},
		{"untrusted", "does not verify"},
		{"missing", "does not exist"},
		{"missing", "is empty"},
		{"missing", "is a directory"},
		{"too_large", "byte limit"},
		{"password", "password"},
		{"malformed", "PEM"},
		{"malformed", "parse"},
		{"unsupported_key", "not supported"},
		{"unsupported_key", "too weak"},
	} {
		if strings.Contains(s, r.match) {
			return r.reason
		}
	}
	return "other"
}

package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics/metricstest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// reloadingServer is a TLS server that serves the PEM keystore of a store
// and re-reads it only when its reload webhook is called — a stand-in for
// Cassandra that also lets a test make the reload "succeed" without effect.
type reloadingServer struct {
	mu      sync.Mutex
	cert    *tls.Certificate
	pemFile string
	broken  atomic.Bool // when set, reloads answer 200 but change nothing
	reloads atomic.Int32
	// reloaded receives a value at each reload call (buffered: tests that
	// do not read it never block the server).
	reloaded chan struct{}
	addr     string
	hook     string
}

func newReloadingServer(t *testing.T, pemFile string) *reloadingServer {
	s := &reloadingServer{pemFile: pemFile, reloaded: make(chan struct{}, 64)}
	s.load(t)
	s.addr = pkitest.ServeTLS(t, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cert, nil
	}}, nil)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reloads.Add(1)
		if !s.broken.Load() {
			s.load(t)
		}
		s.reloaded <- struct{}{}
	}))
	s.hook = hook.URL
	t.Cleanup(hook.Close)
	return s
}

func (s *reloadingServer) load(t *testing.T) {
	c, err := tls.LoadX509KeyPair(s.pemFile, s.pemFile)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cert = &c
	s.mu.Unlock()
}

type fixture struct {
	dir, src string
	ca       *pkitest.Cert
	cfg      *config.Config
	m        *metrics.Metrics
	side     *Sidecar
	srv      *reloadingServer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir()}
	f.src = filepath.Join(f.dir, "src")
	var err error
	if f.ca, err = pkitest.CA("ca"); err != nil {
		t.Fatal(err)
	}
	f.writeLeaf(t, true, true)
	write(t, filepath.Join(f.dir, "pw"), []byte("changeit"))
	pemDir := filepath.Join(f.dir, "out", "pem")
	f.cfg = &config.Config{Stores: []config.Store{{
		Name: "node", Source: f.src, PasswordFile: filepath.Join(f.dir, "pw"),
		Keystore: &config.Output{Path: filepath.Join(f.dir, "out", "keystore.p12"), Type: "pkcs12"},
		PEM:      &config.PEM{Dir: pemDir},
	}}}
	if err := config.Complete(f.cfg); err != nil {
		t.Fatal(err)
	}
	// A first build so the fake server has something to serve.
	if err := Init(context.Background(), f.cfg, f.env()); err != nil {
		t.Fatal(err)
	}
	f.srv = newReloadingServer(t, filepath.Join(pemDir, "keystore.pem"))
	f.cfg.Reload = []config.Reload{{HTTP: &config.Webhook{URL: f.srv.hook}, Retries: new(config.Int)}}
	f.cfg.Verify = &config.Verify{Endpoints: []config.Endpoint{{Address: f.srv.addr}}, Deadline: config.Duration(time.Second)}
	if err := config.Complete(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.m = metrics.New("test", "go")
	if f.side, err = NewSidecar(f.cfg, f.env(), f.m); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) env() Env {
	return Env{Getenv: os.Getenv, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
}

// writeLeaf issues a new leaf and writes its certificate and/or key.
func (f *fixture) writeLeaf(t *testing.T, crt, key bool) *pkitest.Cert {
	t.Helper()
	leaf, err := pkitest.Leaf(f.ca, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.src, "ca.crt"), pkitest.CertPEM(f.ca.Cert))
	if crt {
		write(t, filepath.Join(f.src, "tls.crt"), pkitest.CertPEM(leaf.Cert))
	}
	if key {
		write(t, filepath.Join(f.src, "tls.key"), pkitest.KeyPEM(leaf.Key))
	}
	return leaf
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) served(t *testing.T) string {
	conn, err := tls.Dial("tcp", f.srv.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0])
}

func TestSidecarPartialWriteThenComplete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	if st := f.side.Health().Status(); !st.Ready {
		t.Fatalf("not ready at start: %s", st.ReadyWhy())
	}
	before := f.served(t)
	ks, _ := os.ReadFile(f.cfg.Stores[0].Keystore.Path)

	// cert-manager's partial state: the new tls.crt lands before tls.key.
	leaf := f.writeLeaf(t, true, false)
	f.side.Sync(ctx, SyncEvent)
	if st := f.side.Health().Status(); st.Ready || !strings.Contains(st.ReadyWhy(), "source_invalid") {
		t.Errorf("after a half-written rotation: ready=%v %q", st.Ready, st.ReadyWhy())
	}
	if got, _ := os.ReadFile(f.cfg.Stores[0].Keystore.Path); string(got) != string(ks) {
		t.Errorf("a mismatched pair reached the keystore")
	}
	if f.served(t) != before || f.srv.reloads.Load() != 0 {
		t.Errorf("a refused change was reloaded")
	}
	if v := f.m.SourceErrors.WithLabelValues("node", "key_mismatch").Value(); v != 1 {
		t.Errorf("source_errors_total{key_mismatch} = %v", v)
	}
	// The same bad input seen again by an event is not counted twice.
	f.side.Sync(ctx, SyncEvent)
	if v := f.m.SourceErrors.WithLabelValues("node", "key_mismatch").Value(); v != 1 {
		t.Errorf("repeated event recounted: %v", v)
	}

	// The key arrives: the rotation proceeds, is reloaded and verified.
	write(t, filepath.Join(f.src, "tls.key"), pkitest.KeyPEM(leaf.Key))
	f.side.Sync(ctx, SyncEvent)
	if st := f.side.Health().Status(); !st.Ready {
		t.Fatalf("after the key arrived: %s", st.ReadyWhy())
	}
	if f.served(t) != pki.Fingerprint(leaf.Cert) {
		t.Errorf("the new certificate is not served")
	}
	if v := f.m.ServedMatch.WithLabelValues(f.srv.addr).Value(); v != 1 {
		t.Errorf("served_certificate_match = %v", v)
	}
	if n := f.m.Rotation.Len(); n != 1 {
		t.Errorf("rotation_seconds series = %d", n)
	}
	// Nothing changed: a resync neither rebuilds nor reloads.
	reloads := f.srv.reloads.Load()
	f.side.Sync(ctx, SyncResync)
	if f.srv.reloads.Load() != reloads {
		t.Errorf("an unchanged resync reloaded")
	}
	if problems, err := metricstest.Lint(f.m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", err, problems)
	}
}

func TestSidecarReloadThatDoesNotTakeIsNotReady(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	f.srv.broken.Store(true) // Cassandra answering "ok" but keeping the old certificate
	f.writeLeaf(t, true, true)
	f.side.Sync(ctx, SyncEvent)
	if st := f.side.Health().Status(); st.Ready || !strings.Contains(st.ReadyWhy(), "not verified") {
		t.Errorf("ready=%v %q, want unready: the new certificate is not served", st.Ready, st.ReadyWhy())
	}
	if v := f.m.ServedMatch.WithLabelValues(f.srv.addr).Value(); v != 0 {
		t.Errorf("served_certificate_match = %v, want 0", v)
	}
	// Once the server really reloads, the next resync retries and recovers.
	f.srv.broken.Store(false)
	f.side.Sync(ctx, SyncResync)
	if st := f.side.Health().Status(); !st.Ready {
		t.Errorf("after a working reload: %s", st.ReadyWhy())
	}
}

func TestSidecarPasswordChangeNeedsRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	reloads := f.srv.reloads.Load()
	write(t, filepath.Join(f.dir, "pw"), []byte("a-new-password"))
	f.side.Sync(ctx, SyncEvent)
	if v := f.m.RestartRequired.WithLabelValues("node").Value(); v != 1 {
		t.Errorf("restart_required = %v", v)
	}
	if f.srv.reloads.Load() != reloads {
		t.Errorf("a password change was hot-reloaded")
	}
	if st := f.side.Health().Status(); st.Ready || !strings.Contains(st.ReadyWhy(), "restart required") {
		t.Errorf("ready=%v %q", st.Ready, st.ReadyWhy())
	}
	// Resyncs never reload into the broken state.
	f.side.Sync(ctx, SyncResync)
	if f.srv.reloads.Load() != reloads {
		t.Errorf("a resync reloaded stores Cassandra cannot open")
	}
	// The old password back: no restart needed any more.
	write(t, filepath.Join(f.dir, "pw"), []byte("changeit"))
	f.side.Sync(ctx, SyncEvent)
	if v := f.m.RestartRequired.WithLabelValues("node").Value(); v != 0 {
		t.Errorf("restart_required after reverting = %v", v)
	}
	if st := f.side.Health().Status(); !st.Ready {
		t.Errorf("after reverting the password: %s", st.ReadyWhy())
	}
}

// TestSidecarRefusesNonASCIIPKCS12Password: Java cannot open a PKCS#12
// store under a non-ASCII password, so the sidecar keeps the old keystore
// and counts a source error with reason "password".
func TestSidecarRefusesNonASCIIPKCS12Password(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	ks := f.cfg.Stores[0].Keystore.Path
	before, _ := os.ReadFile(ks)
	write(t, filepath.Join(f.dir, "pw"), []byte("пароль"))
	f.side.Sync(ctx, SyncEvent)
	if v := f.m.SourceErrors.WithLabelValues("node", "password").Value(); v != 1 {
		t.Errorf("source_errors{reason=password} = %v, want 1", v)
	}
	if after, _ := os.ReadFile(ks); string(after) != string(before) {
		t.Errorf("the keystore was rewritten under a password Java refuses")
	}
	if st := f.side.Health().Status(); st.Ready || !strings.Contains(st.ReadyWhy(), "printable ASCII") {
		t.Errorf("ready=%v %q", st.Ready, st.ReadyWhy())
	}
}

func TestSidecarOnce(t *testing.T) {
	f := newFixture(t)
	if err := f.side.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.srv.reloads.Load() != 1 {
		t.Errorf("--once ran %d reloads, want 1 even with nothing changed", f.srv.reloads.Load())
	}
	rec := get(f, "/healthz")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not running") {
		t.Errorf("/healthz without the sidecar loops = %d %q", rec.Code, rec.Body.String())
	}
}

// /healthz is the process and its loops: 200 from the start, while the
// first sync is still verifying; /readyz says what is known of the stores
// as soon as it is known, never "not built yet" once they are.
func TestHealthDuringFirstSync(t *testing.T) {
	f := newFixture(t)
	f.cfg.Verify.Deadline = config.Duration(3 * time.Second)
	f.side, _ = NewSidecar(f.cfg, f.env(), f.m)
	f.srv.broken.Store(true) // the first sync's reload will not take: verification runs to its deadline
	f.writeLeaf(t, true, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.side.Run(ctx) }()
	<-f.srv.reloaded // the first sync is between reload and verify
	health, ready := get(f, "/healthz"), get(f, "/readyz")
	if health.Code != http.StatusOK {
		t.Errorf("/healthz during the first sync = %d %q", health.Code, health.Body.String())
	}
	if ready.Code != http.StatusServiceUnavailable || !strings.Contains(ready.Body.String(), "unverified") {
		t.Errorf("/readyz during the first verification = %d %q, want 503 unverified", ready.Code, ready.Body.String())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
}

// A failed output write is an output failure, never a source error: the
// source was fine.
func TestOutputFailureIsNotASourceError(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	ks := f.cfg.Stores[0].Keystore.Path
	if err := os.Remove(ks); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ks, 0o755); err != nil { // a directory where the keystore should be
		t.Fatal(err)
	}
	f.writeLeaf(t, true, true)
	f.side.Sync(ctx, SyncEvent)
	st := f.side.Health().Status()
	if st.Ready || st.Stores[0].State != StateOutputFailed || !strings.Contains(st.Stores[0].Detail, ks) {
		t.Errorf("status = %+v, want output_failed naming %s", st.Stores[0], ks)
	}
	for _, r := range pki.Reasons() {
		if v := f.m.SourceErrors.WithLabelValues("node", string(r)).Value(); v != 0 {
			t.Errorf("source_errors_total{reason=%q} = %v after an output failure", r, v)
		}
	}
	if n := f.m.SourceErrors.Len(); n != len(pki.Reasons()) {
		t.Errorf("source_errors_total has %d series, want one per reason (%d)", n, len(pki.Reasons()))
	}
	if v := f.m.StoreBuilds.WithLabelValues("node", "error").Value(); v != 1 {
		t.Errorf("store_builds_total{error} = %v", v)
	}
	if f.srv.reloads.Load() != 0 {
		t.Errorf("reloaded after a failed write")
	}
}

func get(f *fixture, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.side.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// /readyz and /healthz must answer while a sync waits on a slow
// verification; a kubelet probe that hangs would restart the sidecar.
func TestStatusAnswersDuringVerification(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	f.cfg.Verify.Deadline = config.Duration(3 * time.Second)
	f.srv.broken.Store(true)
	f.writeLeaf(t, true, true)
	syncDone := make(chan struct{})
	go func() { f.side.Sync(ctx, SyncEvent); close(syncDone) }()
	<-f.srv.reloaded // the sync has reached reload → verify
	rec := get(f, "/readyz")
	select {
	case <-syncDone:
		t.Fatal("the sync finished before /readyz answered: the test proves nothing")
	default:
	}
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz during verification = %d (the last completed state was ready)", rec.Code)
	}
	<-syncDone
}

// An output deleted or corrupted while the source is unchanged is repaired
// at the next resync, and reloaded; until then /readyz has said so.
func TestResyncRepairsOutputs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	ks := f.cfg.Stores[0].Keystore.Path
	pemKey := filepath.Join(f.cfg.Stores[0].PEM.Dir, "tls.key")
	for name, damage := range map[string]func() error{
		"deleted keystore":   func() error { return os.Remove(ks) },
		"corrupted keystore": func() error { return os.WriteFile(ks, []byte("garbage"), 0o600) },
		"deleted PEM key":    func() error { return os.Remove(pemKey) },
	} {
		reloads := f.srv.reloads.Load()
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		f.side.Sync(ctx, SyncResync)
		got, err := os.ReadFile(ks)
		if err != nil {
			t.Errorf("%s: keystore not repaired: %v", name, err)
			continue
		}
		if name != "deleted PEM key" && bytes.Equal(got, []byte("garbage")) {
			t.Errorf("%s: keystore still corrupt", name)
		}
		if _, err := os.Stat(pemKey); err != nil {
			t.Errorf("%s: PEM key not repaired: %v", name, err)
		}
		if f.srv.reloads.Load() != reloads+1 {
			t.Errorf("%s: %d reloads after the repair, want 1", name, f.srv.reloads.Load()-reloads)
		}
		if st := f.side.Health().Status(); !st.Ready {
			t.Errorf("%s: not ready after the repair: %s", name, st.ReadyWhy())
		}
	}
	// Nothing damaged: a resync writes and reloads nothing.
	reloads := f.srv.reloads.Load()
	f.side.Sync(ctx, SyncResync)
	if f.srv.reloads.Load() != reloads {
		t.Errorf("an undamaged resync reloaded")
	}
}

// TestSidecarVerifyEndpointThatNeverAnswers: a verify endpoint that accepts
// and never answers holds neither the first look nor the verification past
// the verify deadline; it is counted (served_certificate_match 0) and the
// store is unverified, with the cause in words.
func TestSidecarVerifyEndpointThatNeverAnswers(t *testing.T) {
	f := newFixture(t)
	silent := pkitest.ServeSilent(t)
	const deadline = 500 * time.Millisecond
	f.cfg.Verify.Endpoints = []config.Endpoint{{Address: silent, Store: "node"}}
	f.cfg.Verify.Deadline = config.Duration(deadline)
	var logs syncBuffer
	env := f.env()
	env.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	side, err := NewSidecar(f.cfg, env, f.m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, why := range []SyncReason{SyncStart, SyncEvent} {
		if why == SyncEvent {
			f.writeLeaf(t, true, true) // a rotation: reload, then verify
		}
		start := time.Now()
		side.Sync(ctx, why)
		if took := time.Since(start); took > deadline+2*time.Second {
			t.Errorf("%s sync took %v with a verify deadline of %v", why, took, deadline)
		}
		if v := f.m.ServedMatch.WithLabelValues(silent).Value(); v != 0 {
			t.Errorf("%s: served_certificate_match = %v", why, v)
		}
		if st := side.Health().Status(); st.Ready || !strings.Contains(st.ReadyWhy(), "unverified") && !strings.Contains(st.ReadyWhy(), "not reachable") {
			t.Errorf("%s: ready=%v %q", why, st.Ready, st.ReadyWhy())
		}
	}
	if !strings.Contains(logs.String(), "did not answer the TLS handshake") {
		t.Errorf("the log does not say what happened:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The counters alerts take increase() of exist at 0 from the start, for
// every store and reason and every reload action: a series that first
// appears at 1 has no earlier sample, and its first event would not alert.
func TestCountersStartAtZero(t *testing.T) {
	f := newFixture(t)
	text := scrape(t, f.m)
	for _, r := range pki.Reasons() {
		want := `cassandra_tls_agent_source_errors_total{store="node",reason="` + string(r) + `"} 0`
		if !strings.Contains(text, want) {
			t.Errorf("no %s before any sync", want)
		}
	}
	for _, want := range []string{
		`cassandra_tls_agent_store_builds_total{store="node",result="error"} 0`,
		`cassandra_tls_agent_reloads_total{action="http",result="error"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s before any sync", want)
		}
	}
	if strings.Contains(text, "rotation_forced_total{") {
		t.Error("rotation_forced_total for a store without rotation gates")
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	var b strings.Builder
	if err := m.Registry.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

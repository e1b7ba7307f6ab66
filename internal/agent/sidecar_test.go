package agent

import (
	"context"
	"crypto/tls"
	"fmt"
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
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	addr    string
	hook    string
}

func newReloadingServer(t *testing.T, pemFile string) *reloadingServer {
	s := &reloadingServer{pemFile: pemFile}
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
	f.ca, _ = pkitest.CA("ca")
	f.writeLeaf(t, true, true)
	os.WriteFile(filepath.Join(f.dir, "pw"), []byte("changeit"), 0o600)
	pemDir := filepath.Join(f.dir, "out", "pem")
	f.cfg = &config.Config{Stores: []config.Store{{
		Name: "node", Source: f.src, PasswordFile: filepath.Join(f.dir, "pw"),
		Keystore: &config.Output{Path: filepath.Join(f.dir, "out", "keystore.p12"), Type: "pkcs12"},
		PEM:      &config.PEM{Dir: pemDir},
	}}}
	// A first build so the fake server has something to serve.
	if err := Init(context.Background(), f.cfg, f.env()); err != nil {
		t.Fatal(err)
	}
	f.srv = newReloadingServer(t, filepath.Join(pemDir, "keystore.pem"))
	f.cfg.Reload = []config.Reload{{HTTP: &config.Webhook{URL: f.srv.hook}, Retries: new(config.Int)}}
	f.cfg.Verify = &config.Verify{Endpoints: []config.Endpoint{{Address: f.srv.addr}}, Deadline: config.Duration(time.Second)}
	f.m = metrics.New("test", "go")
	var err error
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
	leaf, _ := pkitest.Leaf(f.ca, "node1", pkitest.P256)
	os.MkdirAll(f.src, 0o755)
	os.WriteFile(filepath.Join(f.src, "ca.crt"), pkitest.CertPEM(f.ca.Cert), 0o600)
	if crt {
		os.WriteFile(filepath.Join(f.src, "tls.crt"), pkitest.CertPEM(leaf.Cert), 0o600)
	}
	if key {
		os.WriteFile(filepath.Join(f.src, "tls.key"), pkitest.KeyPEM(leaf.Key), 0o600)
	}
	return leaf
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
	f.side.Sync(ctx, "start", false)
	if ready, why, _, _ := f.side.Status(); !ready {
		t.Fatalf("not ready at start: %s", why)
	}
	before := f.served(t)
	ks, _ := os.ReadFile(f.cfg.Stores[0].Keystore.Path)

	// cert-manager's partial state: the new tls.crt lands before tls.key.
	leaf := f.writeLeaf(t, true, false)
	f.side.Sync(ctx, "event", false)
	if ready, why, _, _ := f.side.Status(); ready || !strings.Contains(why, "source invalid") {
		t.Errorf("after a half-written rotation: ready=%v %q", ready, why)
	}
	if got, _ := os.ReadFile(f.cfg.Stores[0].Keystore.Path); string(got) != string(ks) {
		t.Errorf("a mismatched pair reached the keystore")
	}
	if f.served(t) != before || f.srv.reloads.Load() != 0 {
		t.Errorf("a refused change was reloaded")
	}
	if v := testutil.ToFloat64(f.m.SourceErrors.WithLabelValues("node", "key_mismatch")); v != 1 {
		t.Errorf("source_errors_total{key_mismatch} = %v", v)
	}
	// The same bad input seen again by an event is not counted twice.
	f.side.Sync(ctx, "event", false)
	if v := testutil.ToFloat64(f.m.SourceErrors.WithLabelValues("node", "key_mismatch")); v != 1 {
		t.Errorf("repeated event recounted: %v", v)
	}

	// The key arrives: the rotation proceeds, is reloaded and verified.
	os.WriteFile(filepath.Join(f.src, "tls.key"), pkitest.KeyPEM(leaf.Key), 0o600)
	f.side.Sync(ctx, "event", false)
	if ready, why, _, _ := f.side.Status(); !ready {
		t.Fatalf("after the key arrived: %s", why)
	}
	if f.served(t) != pki.Fingerprint(leaf.Cert) {
		t.Errorf("the new certificate is not served")
	}
	if v := testutil.ToFloat64(f.m.ServedMatch.WithLabelValues(f.srv.addr)); v != 1 {
		t.Errorf("served_certificate_match = %v", v)
	}
	if n := testutil.CollectAndCount(f.m.Rotation); n != 1 {
		t.Errorf("rotation_seconds series = %d", n)
	}
	// Nothing changed: a resync neither rebuilds nor reloads.
	reloads := f.srv.reloads.Load()
	f.side.Sync(ctx, "resync", false)
	if f.srv.reloads.Load() != reloads {
		t.Errorf("an unchanged resync reloaded")
	}
	if problems, err := testutil.GatherAndLint(f.m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", err, problems)
	}
}

func TestSidecarReloadThatDoesNotTakeIsNotReady(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, "start", false)
	f.srv.broken.Store(true) // Cassandra answering "ok" but keeping the old certificate
	f.writeLeaf(t, true, true)
	f.side.Sync(ctx, "event", false)
	if ready, why, _, _ := f.side.Status(); ready || !strings.Contains(why, "not verified") {
		t.Errorf("ready=%v %q, want unready: the new certificate is not served", ready, why)
	}
	if v := testutil.ToFloat64(f.m.ServedMatch.WithLabelValues(f.srv.addr)); v != 0 {
		t.Errorf("served_certificate_match = %v, want 0", v)
	}
	// Once the server really reloads, the next resync retries and recovers.
	f.srv.broken.Store(false)
	f.side.Sync(ctx, "resync", false)
	if ready, why, _, _ := f.side.Status(); !ready {
		t.Errorf("after a working reload: %s", why)
	}
}

func TestSidecarPasswordChangeNeedsRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, "start", false)
	reloads := f.srv.reloads.Load()
	os.WriteFile(filepath.Join(f.dir, "pw"), []byte("a-new-password"), 0o600)
	f.side.Sync(ctx, "event", false)
	if v := testutil.ToFloat64(f.m.RestartRequired.WithLabelValues("node")); v != 1 {
		t.Errorf("restart_required = %v", v)
	}
	if f.srv.reloads.Load() != reloads {
		t.Errorf("a password change was hot-reloaded")
	}
	if ready, why, _, _ := f.side.Status(); ready || !strings.Contains(why, "restart required") {
		t.Errorf("ready=%v %q", ready, why)
	}
	// Resyncs never reload into the broken state.
	f.side.Sync(ctx, "resync", false)
	if f.srv.reloads.Load() != reloads {
		t.Errorf("a resync reloaded stores Cassandra cannot open")
	}
	// The old password back: no restart needed any more.
	os.WriteFile(filepath.Join(f.dir, "pw"), []byte("changeit"), 0o600)
	f.side.Sync(ctx, "event", false)
	if v := testutil.ToFloat64(f.m.RestartRequired.WithLabelValues("node")); v != 0 {
		t.Errorf("restart_required after reverting = %v", v)
	}
	if ready, why, _, _ := f.side.Status(); !ready {
		t.Errorf("after reverting the password: %s", why)
	}
}

func TestSidecarOnceAndHealth(t *testing.T) {
	f := newFixture(t)
	if err := f.side.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.srv.reloads.Load() != 1 {
		t.Errorf("--once ran %d reloads, want 1 even with nothing changed", f.srv.reloads.Load())
	}
	rec := httptest.NewRecorder()
	f.side.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "watcher not running") {
		t.Errorf("/healthz without a watcher = %d %q", rec.Code, rec.Body.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.side.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec = httptest.NewRecorder()
		f.side.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz while watching = %d %q", rec.Code, rec.Body.String())
	}
}

func TestErrorReason(t *testing.T) {
	for msg, want := range map[string]string{
		"x/tls.key does not match the leaf certificate in x/tls.crt": "key_mismatch",
		"x/tls.crt: leaf certificate (…) expired at 2026":            "expired",
		"x/tls.crt: leaf (…) does not chain to any of the 1":         "untrusted",
		"x/tls.key: file does not exist":                             "missing",
		"x/tls.crt: no PEM data found":                               "malformed",
		"something new":                                              "other",
	} {
		if got := ErrorReason(fmt.Errorf("%s", msg)); got != want {
			t.Errorf("ErrorReason(%q) = %q, want %q", msg, got, want)
		}
	}
}

// /readyz and /healthz must answer while a sync waits on a slow
// verification; a kubelet probe that hangs would restart the sidecar.
func TestStatusAnswersDuringVerification(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, "start", false)
	f.cfg.Verify.Deadline = config.Duration(3 * time.Second)
	f.srv.broken.Store(true)
	f.writeLeaf(t, true, true)
	syncDone := make(chan struct{})
	go func() { f.side.Sync(ctx, "event", false); close(syncDone) }()
	for f.srv.reloads.Load() == 0 { // the sync has reached reload → verify
		time.Sleep(5 * time.Millisecond)
	}
	rec := httptest.NewRecorder()
	f.side.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
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

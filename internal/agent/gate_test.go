package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// fakePeer is a TLS endpoint that, like a Cassandra node, names the CAs it
// trusts in its CertificateRequest and serves a leaf; both can change.
type fakePeer struct {
	mu    sync.Mutex
	trust []*x509.Certificate
	serve *pkitest.Cert
	addr  string
}

func newFakePeer(t *testing.T, serve *pkitest.Cert, trust ...*x509.Certificate) *fakePeer {
	p := &fakePeer{}
	p.set(serve, trust...)
	p.addr = pkitest.ServeTLS(t, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		pool := x509.NewCertPool()
		for _, c := range p.trust {
			pool.AddCert(c)
		}
		cert := tls.Certificate{Certificate: [][]byte{p.serve.Cert.Raw}, PrivateKey: p.serve.Key, Leaf: p.serve.Cert}
		return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequestClientCert}, nil
	}}, nil)
	return p
}

func (p *fakePeer) set(serve *pkitest.Cert, trust ...*x509.Certificate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serve, p.trust = serve, trust
}

type gateFixture struct {
	dir, src, bundle string
	a, b             *pkitest.Cert
	cfg              *config.Config
	m                *metrics.Metrics
	side             *Sidecar
	peer             *fakePeer
}

func newGateFixture(t *testing.T) *gateFixture {
	f := &gateFixture{dir: t.TempDir()}
	f.src, f.bundle = filepath.Join(f.dir, "src"), filepath.Join(f.dir, "trust", "bundle.pem")
	var err error
	if f.a, err = pkitest.CA("rotation CA A"); err != nil {
		t.Fatal(err)
	}
	if f.b, err = pkitest.CA("rotation CA B"); err != nil {
		t.Fatal(err)
	}
	f.source(t, f.a)
	write(t, f.bundle, pkitest.CertPEM(f.a.Cert))
	write(t, filepath.Join(f.dir, "pw"), []byte("changeit"))
	f.peer = newFakePeer(t, f.leaf(t, f.a), f.a.Cert)
	f.cfg = &config.Config{Stores: []config.Store{{
		Name: "node", Source: f.src, TrustBundles: []string{f.bundle}, PasswordFile: filepath.Join(f.dir, "pw"),
		Keystore:   &config.Output{Path: filepath.Join(f.dir, "out", "keystore.jks")},
		Truststore: &config.Output{Path: filepath.Join(f.dir, "out", "truststore.jks")},
		Rotation: &config.Rotation{Peers: config.Peers{Static: []string{f.peer.addr}}, ProbeInterval: config.Duration(50 * time.Millisecond),
			MaxHold: config.Duration(time.Hour)}, // test leaves live 25 h: keep them clear of the safety valve
	}}, Watch: config.Watch{Resync: config.Duration(time.Hour)}}
	if err := config.Complete(f.cfg); err != nil {
		t.Fatal(err)
	}
	f.m = metrics.New("test", "go")
	if f.side, err = NewSidecar(f.cfg, Env{Getenv: os.Getenv, Now: time.Now, Log: slog.New(slog.DiscardHandler)}, f.m); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *gateFixture) leaf(t *testing.T, ca *pkitest.Cert) *pkitest.Cert {
	t.Helper()
	l, err := pkitest.Leaf(ca, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// source writes a new leaf from ca into the source directory, as
// cert-manager does when its Issuer switches CA.
func (f *gateFixture) source(t *testing.T, ca *pkitest.Cert) *pkitest.Cert {
	l := f.leaf(t, ca)
	write(t, filepath.Join(f.src, "tls.crt"), pkitest.CertPEM(l.Cert))
	write(t, filepath.Join(f.src, "tls.key"), pkitest.KeyPEM(l.Key))
	write(t, filepath.Join(f.src, "ca.crt"), pkitest.CertPEM(ca.Cert))
	return l
}

// published reads the stores back as Cassandra would load them.
func (f *gateFixture) published(t *testing.T) *pki.Material {
	t.Helper()
	_, spec, err := StoreSpec(f.cfg.Stores[0], os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.ReadBack(spec)
	if err != nil || m == nil {
		t.Fatalf("read back: %v", err)
	}
	return m
}

func trusts(m *pki.Material, ca *x509.Certificate) bool {
	for _, c := range m.CAs {
		if c.Equal(ca) {
			return true
		}
	}
	return false
}

// TestGatesHoldUntilPeersTrust walks one store through A → B with a peer
// whose trust and served leaf the test controls.
func TestGatesHoldUntilPeersTrust(t *testing.T) {
	f := newGateFixture(t)
	ctx := context.Background()
	leafA := f.published
	f.side.Sync(ctx, SyncStart)
	first := leafA(t).Leaf

	// The Issuer switches to B: the source has a B leaf and ca.crt B; the
	// bundle still has A. The peer trusts only A.
	leafB := f.source(t, f.b)
	f.side.Sync(ctx, SyncEvent)
	m := f.published(t)
	if !m.Leaf.Equal(first) {
		t.Errorf("the B leaf was published before the peer trusts B")
	}
	if !trusts(m, f.b.Cert) || !trusts(m, f.a.Cert) {
		t.Errorf("trust additions must never be held: truststore has A=%v B=%v", trusts(m, f.a.Cert), trusts(m, f.b.Cert))
	}
	if v := f.m.RotationHeld.WithLabelValues("node", "present").Value(); v != 1 {
		t.Errorf("rotation_held{present} = %v", v)
	}
	if v := f.m.PeerTrustsCA.WithLabelValues("node", f.peer.addr, "rotation CA B").Value(); v != 0 {
		t.Errorf("peer_trusts_ca{B} = %v", v)
	}
	if v := f.m.PeerServesCA.WithLabelValues("node", f.peer.addr, "rotation CA A").Value(); v != 1 {
		t.Errorf("peer_serves_ca{A} = %v", v)
	}
	if st := f.side.Health().Status(); !st.Ready || st.Stores[0].State != StateHeld {
		t.Errorf("a held change must be ready and say so: %+v", st.Stores[0])
	}

	// The peer's truststore gains B: the re-probe releases the leaf.
	f.peer.set(f.leaf(t, f.a), f.a.Cert, f.b.Cert)
	f.side.Sync(ctx, SyncHold)
	if m := f.published(t); !m.Leaf.Equal(leafB.Cert) {
		t.Errorf("the B leaf is not published once the peer trusts B")
	}
	if v := f.m.RotationHeld.WithLabelValues("node", "present").Value(); v != 0 {
		t.Errorf("rotation_held{present} after release = %v", v)
	}

	// The bundle drops A while the peer still serves an A leaf: A stays.
	write(t, f.bundle, pkitest.CertPEM(f.b.Cert))
	f.side.Sync(ctx, SyncEvent)
	if m := f.published(t); !trusts(m, f.a.Cert) {
		t.Errorf("A was dropped while a peer still serves an A leaf")
	}
	if v := f.m.RotationHeld.WithLabelValues("node", "retain").Value(); v != 1 {
		t.Errorf("rotation_held{retain} = %v", v)
	}
	// The peer moves to B: A goes.
	f.peer.set(f.leaf(t, f.b), f.b.Cert)
	f.side.Sync(ctx, SyncHold)
	if m := f.published(t); trusts(m, f.a.Cert) || !trusts(m, f.b.Cert) {
		t.Errorf("end state: truststore has A=%v B=%v, want B only", trusts(m, f.a.Cert), trusts(m, f.b.Cert))
	}
	if st := f.side.Health().Status(); st.Stores[0].State != StateServed {
		t.Errorf("end state: %+v", st.Stores[0])
	}
}

// TestHoldReleasedByReprobe: no file changes after the hold, only the peer
// does; the sidecar's own timer notices within seconds.
func TestHoldReleasedByReprobe(t *testing.T) {
	f := newGateFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.side.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first build", func() bool { return f.side.Health().State("node") == StateServed })

	leafB := f.source(t, f.b)
	f.side.Sync(ctx, SyncEvent) // what the debounced event would do
	waitFor(t, "the hold", func() bool { return f.side.Health().State("node") == StateHeld })
	f.peer.set(f.leaf(t, f.a), f.a.Cert, f.b.Cert)
	waitFor(t, "the release by re-probe", func() bool { return f.published(t).Leaf.Equal(leafB.Cert) })
}

// TestSafetyValve: when the served leaf expires within maxHold, the held
// leaf goes out anyway, loudly.
func TestSafetyValve(t *testing.T) {
	f := newGateFixture(t)
	f.cfg.Stores[0].Rotation.MaxHold = config.Duration(48 * time.Hour) // the 25 h test leaves are inside it
	side, err := NewSidecar(f.cfg, Env{Getenv: os.Getenv, Now: time.Now, Log: slog.New(slog.DiscardHandler)}, f.m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	side.Sync(ctx, SyncStart)
	leafB := f.source(t, f.b)
	side.Sync(ctx, SyncEvent)
	if !f.published(t).Leaf.Equal(leafB.Cert) {
		t.Errorf("the valve did not present the new leaf")
	}
	if v := f.m.RotationForced.WithLabelValues("node").Value(); v != 1 {
		t.Errorf("rotation_forced_total = %v", v)
	}
}

// TestAmbiguousCAIsRefused: two different CAs with one subject cannot be
// told apart by what peers advertise; the change is refused with its reason.
func TestAmbiguousCAIsRefused(t *testing.T) {
	f := newGateFixture(t)
	ctx := context.Background()
	f.side.Sync(ctx, SyncStart)
	twin, err := pkitest.CA("rotation CA A") // same subject as A, another key
	if err != nil {
		t.Fatal(err)
	}
	f.source(t, twin)
	f.side.Sync(ctx, SyncEvent)
	if v := f.m.SourceErrors.WithLabelValues("node", "ambiguous_ca").Value(); v != 1 {
		t.Errorf("source_errors_total{ambiguous_ca} = %v", v)
	}
	if st := f.side.Health().Status(); st.Ready {
		t.Errorf("an ambiguous trust set left the store ready")
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Peer discovery through Jolokia authenticates like the reload action it
// borrows the URL from, reading the password file at every call.
func TestJolokiaDiscoveryUsesTheReloadCredentials(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "jolokia-pw")
	write(t, pwFile, []byte("first"))
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, u+":"+p)
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `[{"status":200,"value":["127.0.0.1:7000"]},{"status":200,"value":[]},{"status":200,"value":["127.0.0.1"]},{"status":200,"value":[]}]`)
	}))
	defer srv.Close()
	c, err := config.Parse([]byte(fmt.Sprintf(`
stores: [{name: n, source: /s, pem: {dir: /p}, rotation: {}}]
reload: [{jolokia: {url: %q, username: jmx, passwordFile: %q}}]
`, srv.URL, pwFile)), "c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Discoverer(c.Stores[0].Rotation)
	if _, err := d.Peers(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(t, pwFile, []byte("second"))
	if _, err := d.Peers(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != "jmx:first" || got[1] != "jmx:second" {
		t.Errorf("basic auth seen by Jolokia: %v, want jmx:first then jmx:second", got)
	}
}

package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// TestSidecarFollowsCredentialBundleSwaps: a podCertificate-style
// credential bundle and a clusterTrustBundle-style trust file, each in a
// projected volume the kubelet updates by swapping ..data. The watcher
// alone (the resync is an hour away) must see each swap: a new bundle is
// published, reloaded and served; a bundle whose key does not match its
// leaf is refused with its reason and changes nothing; a new CA in the
// trust file reaches the outputs.
func TestSidecarFollowsCredentialBundleSwaps(t *testing.T) {
	dir := t.TempDir()
	identity, trust := filepath.Join(dir, "identity"), filepath.Join(dir, "trust")
	ca, err := pkitest.CA("ca")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := pkitest.New(ca, pkitest.Options{CN: "inter", IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	newLeaf := func() *pkitest.Cert {
		t.Helper()
		l, err := pkitest.Leaf(inter, "node1", pkitest.P256)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	project := func(dir, name string, data []byte) {
		t.Helper()
		if err := kubeletfs.Write(dir, map[string][]byte{name: data}); err != nil {
			t.Fatal(err)
		}
	}
	bundle := func(key, leaf *pkitest.Cert) []byte {
		return append(pkitest.KeyPEM(key.Key), pkitest.CertPEM(leaf.Cert, inter.Cert)...)
	}
	leaf1 := newLeaf()
	project(identity, "credentialbundle.pem", bundle(leaf1, leaf1))
	project(trust, "ca.pem", pkitest.CertPEM(ca.Cert))
	write(t, filepath.Join(dir, "pw"), []byte("changeit"))

	pemDir := filepath.Join(dir, "out", "pem")
	cfg := &config.Config{
		Stores: []config.Store{{
			Name: "node", CredentialBundle: filepath.Join(identity, "credentialbundle.pem"),
			TrustBundles: []string{filepath.Join(trust, "ca.pem")}, PasswordFile: filepath.Join(dir, "pw"),
			Keystore: &config.Output{Path: filepath.Join(dir, "out", "keystore.p12"), Type: "pkcs12"},
			PEM:      &config.PEM{Dir: pemDir},
		}},
		Watch: config.Watch{Debounce: config.Duration(20 * time.Millisecond), Resync: config.Duration(time.Hour)},
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, ca: ca, cfg: cfg}
	if err := Init(context.Background(), cfg, f.env()); err != nil {
		t.Fatal(err)
	}
	f.srv = newReloadingServer(t, filepath.Join(pemDir, "keystore.pem"))
	cfg.Reload = []config.Reload{{HTTP: &config.Webhook{URL: f.srv.hook}, Retries: new(config.Int)}}
	cfg.Verify = &config.Verify{Endpoints: []config.Endpoint{{Address: f.srv.addr}}, Deadline: config.Duration(5 * time.Second)}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	f.m = metrics.New("test", "go")
	if f.side, err = NewSidecar(cfg, f.env(), f.m); err != nil {
		t.Fatal(err)
	}
	watching := make(chan []string, 8)
	f.side.onWatch = func(dirs []string) { watching <- dirs }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.side.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case dirs := <-watching: // the first sync is over; the watches are in place
		for _, d := range []string{identity, trust} {
			if !slices.Contains(dirs, d) {
				t.Fatalf("watching %v: %s is missing", dirs, d)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher never started")
	}
	if got := f.served(t); got != pki.Fingerprint(leaf1.Cert) {
		t.Fatalf("the first leaf is not served")
	}
	reloaded := func(what string) {
		t.Helper()
		select {
		case <-f.srv.reloaded:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no reload within 10s: the swap was not seen", what)
		}
		// The reload hook has swapped the server's certificate; wait for the
		// sync to finish verifying it.
		waitFor(t, what, func() bool { return f.side.Health().Status().Ready })
	}

	// 1. The kubelet swaps in a renewed bundle.
	leaf2 := newLeaf()
	project(identity, "credentialbundle.pem", bundle(leaf2, leaf2))
	reloaded("renewed bundle")
	if got := f.served(t); got != pki.Fingerprint(leaf2.Cert) {
		t.Errorf("after the swap the served leaf is not the new one")
	}

	// 2. A bundle whose key belongs to another certificate: refused, counted
	// with its reason, outputs untouched, no reload.
	ks, _ := os.ReadFile(cfg.Stores[0].Keystore.Path)
	reloads := f.srv.reloads.Load()
	project(identity, "credentialbundle.pem", bundle(newLeaf(), leaf2))
	waitFor(t, "key_mismatch counted", func() bool {
		return f.m.SourceErrors.WithLabelValues("node", "key_mismatch").Value() == 1
	})
	if st := f.side.Health().Status(); st.Ready || !strings.Contains(st.Stores[0].Detail, "does not match the leaf certificate") {
		t.Errorf("after a mismatched bundle: ready=%v %q", st.Ready, st.Stores[0].Detail)
	}
	if got, _ := os.ReadFile(cfg.Stores[0].Keystore.Path); string(got) != string(ks) || f.srv.reloads.Load() != reloads {
		t.Errorf("a refused bundle changed the keystore or was reloaded")
	}

	// 3. A good bundle again, then a second CA in the trust file's projection.
	leaf3 := newLeaf()
	project(identity, "credentialbundle.pem", bundle(leaf3, leaf3))
	reloaded("bundle after a refused one")
	other, err := pkitest.CA("other")
	if err != nil {
		t.Fatal(err)
	}
	project(trust, "ca.pem", pkitest.CertPEM(ca.Cert, other.Cert))
	reloaded("trust swap")
	data, err := os.ReadFile(filepath.Join(pemDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pki.ParseCertificates(data, "ca.crt")
	if err != nil || len(cas) != 2 || !cas[1].Equal(other.Cert) {
		t.Errorf("ca.crt after the trust swap: %d CAs (%v), want ca and other", len(cas), err)
	}
	if got := f.served(t); got != pki.Fingerprint(leaf3.Cert) {
		t.Errorf("the served leaf is not the last good bundle's")
	}
	// The start found init's outputs current; then three swaps were built.
	if v := f.m.StoreBuilds.WithLabelValues("node", "success").Value(); v != 3 {
		t.Errorf("store_builds_total{success} = %v, want 3 (renewal, recovery, trust)", v)
	}
}

// TestWatchDirsCoverEverySourceForm: the watched directories are those of
// every file a store reads, whatever the form.
func TestWatchDirsCoverEverySourceForm(t *testing.T) {
	cfg := &config.Config{Stores: []config.Store{
		{Name: "dir", Source: "/secret/node", PasswordFile: "/pw/password", PEM: &config.PEM{Dir: "/out/a"}},
		{Name: "csi", Source: "/csi/node", Files: &config.SourceFiles{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}, TrustBundles: []string{"/trust/bundle.pem"}, PEM: &config.PEM{Dir: "/out/b"}},
		{Name: "pod", CredentialBundle: "/identity/credentialbundle.pem", TrustBundles: []string{"/ctb/ca.pem", "/trust/bundle.pem"}, PEM: &config.PEM{Dir: "/out/c"}},
	}}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	s, err := NewSidecar(cfg, Env{Getenv: os.Getenv, Now: time.Now}, metrics.New("test", "go"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/secret/node", "/pw", "/csi/node", "/trust", "/identity", "/ctb"}
	if got := s.watchDirs(); !slices.Equal(got, want) {
		t.Errorf("watchDirs = %v, want %v", got, want)
	}
	// Inputs follow the same list: a change to a renamed file is a change.
	dir := t.TempDir()
	st := config.Store{Name: "csi", Source: dir, Files: &config.SourceFiles{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}}
	before := readInputs(st, os.Getenv)
	write(t, filepath.Join(dir, "k.pem"), []byte("x"))
	if readInputs(st, os.Getenv) == before {
		t.Error("a renamed key file is not among the hashed inputs")
	}
	write(t, filepath.Join(dir, "tls.key"), []byte("x"))
	after := readInputs(st, os.Getenv)
	write(t, filepath.Join(dir, "tls.key"), []byte("y"))
	if readInputs(st, os.Getenv) != after {
		t.Error("a file the store does not read changed its inputs")
	}
}

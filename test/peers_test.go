package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// TestPeersRealNode probes a real Cassandra 5.0 node (netty-tcnative,
// client certificates required on both ports) whose truststore holds two
// CAs, and discovers it through its Jolokia agent: the observation must be
// exactly what the node's stores hold.
func TestPeersRealNode(t *testing.T) {
	need(t, "java")
	c := newCluster(t)

	// The node trusts two CAs, like a node in the middle of a rotation.
	second, err := pkitest.CA("second cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.crt": pkitest.CertPEM(c.ca.Cert, second.Cert)}
	for _, name := range []string{"tls.crt", "tls.key"} {
		if files[name], err = os.ReadFile(filepath.Join(c.nodeSrc, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kubeletfs.Write(c.nodeSrc, files); err != nil {
		t.Fatal(err)
	}
	if r := agent(t, c.env, "init", "--config", c.nodeConfig(t)); r.code != 0 {
		t.Fatalf("node init: exit %d\n%s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node, err := cassnode.Start(ctx, c.nodeDir, cassnode.Options{NativePort: c.native, StoragePort: c.storage,
		JMXPort: c.jmx, JolokiaPort: c.jolokia, Wait: true, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("starting Cassandra: %v", err)
	}
	c.node = node

	// What the node's stores hold, read back from the files it loaded.
	keystore := decodeStore(t, filepath.Join(c.cryptoDir, "keystore.jks"))
	truststore := decodeStore(t, filepath.Join(c.cryptoDir, "truststore.jks"))
	if len(keystore.Keys) != 1 || len(truststore.Trusted) != 2 {
		t.Fatalf("stores: %d keys, %d trusted certificates; want 1 and 2", len(keystore.Keys), len(truststore.Trusted))
	}
	leaf := keystore.Keys[0].Chain[0]
	var trusted [][]byte
	for _, e := range truststore.Trusted {
		trusted = append(trusted, e.Cert.RawSubject)
	}

	nodeCert, err := tls.LoadX509KeyPair(filepath.Join(c.nodeSrc, "tls.crt"), filepath.Join(c.nodeSrc, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := pkitest.CA("stranger CA")
	strangerLeaf, _ := pkitest.Leaf(stranger, "stranger", pkitest.P256)
	strangerCert := tls.Certificate{Certificate: [][]byte{strangerLeaf.Cert.Raw}, PrivateKey: strangerLeaf.Key}

	logBefore := logSize(node)
	ports := map[string]string{"storage": fmt.Sprintf("127.0.0.1:%d", c.storage), "native": c.nativeAddr()}
	clients := map[string]*tls.Certificate{"node certificate": &nodeCert, "refused certificate": &strangerCert, "no certificate": nil}
	for _, port := range []string{"storage", "native"} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, cname := range []string{"node certificate", "refused certificate", "no certificate"} {
				name := fmt.Sprintf("%s %s %s", port, tls.VersionName(version), cname)
				t.Run(name, func(t *testing.T) {
					start := time.Now()
					obs := peers.Probe(ctx, ports[port], peers.ProbeOptions{Client: clients[cname], MaxVersion: version})
					t.Logf("MEASURED probe %s: %v; version %s; accepted CAs %q; handshake error: %v",
						name, time.Since(start).Round(time.Millisecond), tls.VersionName(obs.Version), peers.CANames(obs), obs.HandshakeErr)
					if obs.Err != nil {
						t.Fatalf("Err = %v", obs.Err)
					}
					if obs.Version != version || !obs.ClientAuthRequested {
						t.Errorf("version %s, client auth requested %v", tls.VersionName(obs.Version), obs.ClientAuthRequested)
					}
					if !sameDERs(obs.AcceptableCAs, trusted) {
						t.Errorf("accepted CAs %q, the truststore holds %q", peers.CANames(obs), peers.CANames(peers.Observation{AcceptableCAs: trusted}))
					}
					if len(obs.Chain) == 0 || !obs.Chain[0].Equal(leaf) {
						t.Errorf("served chain %v, the keystore's leaf is %s", obs.Chain, leaf.Subject)
					}
					if !obs.ServedBy(c.ca.Cert) || obs.ServedBy(second.Cert) {
						t.Errorf("ServedBy: cluster CA %v, second CA %v; want true, false", obs.ServedBy(c.ca.Cert), obs.ServedBy(second.Cert))
					}
					if !obs.Accepts(c.ca.Cert) || !obs.Accepts(second.Cert) || obs.Accepts(stranger.Cert) {
						t.Errorf("Accepts: cluster CA %v, second CA %v, stranger %v", obs.Accepts(c.ca.Cert), obs.Accepts(second.Cert), obs.Accepts(stranger.Cert))
					}
				})
			}
		}
	}
	// Seen here: probes with the node's own certificate leave no trace; a
	// refused or missing client certificate costs the storage port an ERROR
	// with a stack trace ("Failed to properly handshake with peer") per
	// probe, the native port a one-line WARN (TLS 1.2 refusal) or nothing.
	if lines := newLogLines(node, logBefore); len(lines) > 0 {
		t.Logf("node log entries written while probing (%d):\n%s", len(lines), strings.Join(lines[:min(len(lines), 12)], "\n"))
	}

	t.Run("Jolokia discovery lists the node itself", func(t *testing.T) {
		for _, attr := range []string{"LiveNodesWithPort", "UnreachableNodesWithPort", "LiveNodes", "UnreachableNodes"} {
			t.Logf("MEASURED StorageService.%s: %s", attr, jolokiaRead(t, node.JolokiaURL(), attr))
		}
		got, err := peers.Jolokia{URL: node.JolokiaURL()}.Peers(ctx)
		want := []string{fmt.Sprintf("127.0.0.1:%d", c.storage)}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Peers = %q, %v; want %q", got, err, want)
		}
	})
}

func decodeStore(t *testing.T, path string) *store.Contents {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Decode(data, []byte(hostilePassword))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// sameDERs compares two lists of DER names as sets of equal size.
func sameDERs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y []byte) bool { return bytes.Equal(x, y) }) {
			return false
		}
	}
	return true
}

// jolokiaRead returns the raw JSON of one attribute read.
func jolokiaRead(t *testing.T, url, attr string) string {
	t.Helper()
	body := fmt.Sprintf(`{"type":"read","mbean":%q,"attribute":%q}`, peers.StorageServiceMBean, attr)
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

func logSize(n *cassnode.Node) int64 {
	st, err := os.Stat(n.LogPath())
	if err != nil {
		return 0
	}
	return st.Size()
}

// newLogLines returns the node's log lines about TLS written after offset:
// entries and their causes, without stack frames.
func newLogLines(n *cassnode.Node, offset int64) []string {
	data, err := os.ReadFile(n.LogPath())
	if err != nil || int64(len(data)) <= offset {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data[offset:])), "\n") {
		entry := len(l) > 0 && l[0] >= '0' && l[0] <= '9' || strings.HasPrefix(l, "Caused by:")
		if lower := strings.ToLower(l); entry && (strings.Contains(lower, "handshake") || strings.Contains(lower, "ssl")) {
			out = append(out, l)
		}
	}
	return out
}

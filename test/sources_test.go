package test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// credentialBundle is a podCertificate credential bundle: the PKCS#8 key,
// then the chain, leaf first.
func credentialBundle(leaf *pkitest.Cert, chain ...*x509.Certificate) []byte {
	return append(pkitest.KeyPEM(leaf.Key), pkitest.CertPEM(append([]*x509.Certificate{leaf.Cert}, chain...)...)...)
}

// combinedPEM is cert-manager's tls-combined.pem with its default key
// encoding, PKCS#1: the RSA key, then the chain.
func combinedPEM(leaf *pkitest.Cert, chain ...*x509.Certificate) []byte {
	key := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(leaf.Key.(*rsa.PrivateKey))})
	return append(key, pkitest.CertPEM(append([]*x509.Certificate{leaf.Cert}, chain...)...)...)
}

func project(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := kubeletfs.Write(dir, files); err != nil {
		t.Fatal(err)
	}
}

// TestPerPodSourcesReadByTheJDK: stores built by init from the sources
// that give a pod only its own key — a podCertificate credential bundle
// (PKCS#8 key + chain) with the CAs in a separate clusterTrustBundle file,
// cert-manager's tls-combined.pem (PKCS#1 key + chain) with the same trust
// file, and a csi-driver volume whose file names were changed — each
// selected with ${POD_NAME}, are listed by keytool with the input's
// fingerprints and complete a mutual-TLS handshake in the JDK, the way
// Cassandra loads them.
func TestPerPodSourcesReadByTheJDK(t *testing.T) {
	need(t, "keytool", "java")
	f := newFixture(t, pkitest.P256) // the server the Java client talks to
	root := t.TempDir()
	issue := func(cn string, kt pkitest.KeyType) *pkitest.Cert {
		t.Helper()
		c, err := pkitest.Leaf(f.inter, cn, kt)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	podLeaf, combinedLeaf, csiLeaf := issue("pod", pkitest.P256), issue("combined", pkitest.RSA2048), issue("csi", pkitest.Ed25519)
	project(t, filepath.Join(root, "identity-node1"), map[string][]byte{"credentialbundle.pem": credentialBundle(podLeaf, f.inter.Cert)})
	project(t, filepath.Join(root, "combined-node1"), map[string][]byte{"tls-combined.pem": combinedPEM(combinedLeaf, f.inter.Cert)})
	project(t, filepath.Join(root, "trust"), map[string][]byte{"ca.pem": pkitest.CertPEM(f.root.Cert)})
	project(t, filepath.Join(root, "csi-node1"), map[string][]byte{
		"certificate.pem": pkitest.CertPEM(csiLeaf.Cert, f.inter.Cert), "private.key": pkitest.KeyPEM(csiLeaf.Key),
		"issuer-ca.pem": pkitest.CertPEM(f.root.Cert),
	})
	writeFile(t, filepath.Join(root, "pw"), []byte("s3cret-password\n"))
	out := filepath.Join(root, "out")
	cfg := fmt.Sprintf(`
stores:
  - name: pod
    credentialBundle: %[1]s/identity-${POD_NAME}/credentialbundle.pem
    trustBundles: [%[1]s/trust/ca.pem]
    passwordFile: %[1]s/pw
    keystore:   {path: %[2]s/pod-keystore.jks, type: jks, alias: cassandra}
    truststore: {path: %[2]s/pod-truststore.jks, type: jks}
  - name: combined
    credentialBundle: %[1]s/combined-${POD_NAME}/tls-combined.pem
    trustBundles: [%[1]s/trust/ca.pem]
    passwordFile: %[1]s/pw
    keystore:   {path: %[2]s/combined-keystore.p12, type: pkcs12}
    truststore: {path: %[2]s/combined-truststore.p12, type: pkcs12}
  - name: csi
    source: %[1]s/csi-${POD_NAME}
    files: {cert: certificate.pem, key: private.key, ca: issuer-ca.pem}
    passwordFile: %[1]s/pw
    keystore:   {path: %[2]s/csi-keystore.p12, type: pkcs12, profile: legacydes}
    truststore: {path: %[2]s/csi-truststore.p12, type: pkcs12, profile: legacydes}
`, root, out)
	writeFile(t, filepath.Join(root, "init.yaml"), []byte(cfg))
	os.MkdirAll(out, 0o755)
	r := agent(t, []string{"POD_NAME=node1"}, "init", "--config", filepath.Join(root, "init.yaml"))
	if r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	for _, name := range []string{"pod", "combined", "csi"} {
		if !strings.Contains(r.stderr, `"msg":"stores published","store":"`+name+`"`) {
			t.Errorf("init did not publish store %s:\n%s", name, r.stderr)
		}
	}

	srv := startTLSServer(t, f)
	stores := []struct {
		name, javaType string
		leaf           *pkitest.Cert
	}{
		{"pod", "JKS", podLeaf}, {"combined", "PKCS12", combinedLeaf}, {"csi", "PKCS12", csiLeaf},
	}
	var cases []string
	for _, s := range stores {
		ext := map[string]string{"JKS": ".jks", "PKCS12": ".p12"}[s.javaType]
		ks, ts := filepath.Join(out, s.name+"-keystore"+ext), filepath.Join(out, s.name+"-truststore"+ext)
		listing := run(t, "keytool", "-list", "-v", "-keystore", ks, "-storetype", s.javaType, "-storepass", "s3cret-password")
		if !strings.Contains(listing, "Entry type: PrivateKeyEntry") || !strings.Contains(listing, "Certificate chain length: 2") {
			t.Errorf("%s: keytool lacks a PrivateKeyEntry with a chain of 2:\n%s", s.name, listing)
		}
		if fps := sha256Lines(listing); len(fps) != 2 || fps[0] != pki.Fingerprint(s.leaf.Cert) || fps[1] != pki.Fingerprint(f.inter.Cert) {
			t.Errorf("%s: keystore fingerprints %v, want the source's leaf then the intermediate", s.name, fps)
		}
		listing = run(t, "keytool", "-list", "-v", "-keystore", ts, "-storetype", s.javaType, "-storepass", "s3cret-password")
		if fps := sha256Lines(listing); len(fps) != 1 || fps[0] != pki.Fingerprint(f.root.Cert) {
			t.Errorf("%s: truststore fingerprints %v, want the trust file's root", s.name, fps)
		}
		cases = append(cases, strings.Join([]string{srv.addr, s.javaType, ks, ts, filepath.Join(root, "pw")}, ","))
	}
	javaOut := run(t, "java", append([]string{filepath.Join(repoRoot(), "test", "java", "TLSCheck.java")}, cases...)...)
	if strings.Count(javaOut, "OK "+srv.addr+" "+pki.Fingerprint(f.leaf.Cert)) != len(stores) {
		t.Errorf("Java handshakes:\n%s", javaOut)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, s := range stores {
		if i >= len(srv.clients) || srv.clients[i] != pki.Fingerprint(s.leaf.Cert) {
			t.Errorf("the server saw client certificates %v; number %d should be the %s store's leaf", srv.clients, i+1, s.name)
		}
	}
}

// TestHostileCredentialBundles: the stores command fed one broken
// credential bundle after another fails each time with the cause in plain
// words and its reason, and leaves every output byte for byte as it was.
func TestHostileCredentialBundles(t *testing.T) {
	f := newFixture(t, pkitest.P256)
	root := t.TempDir()
	good := credentialBundle(f.leaf, f.inter.Cert)
	other, _ := pkitest.Leaf(f.inter, "impostor", pkitest.P256)
	stranger, _ := pkitest.CA("stranger")
	expired, _ := pkitest.New(f.inter, pkitest.Options{CN: "old", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	key, chain := pkitest.KeyPEM(f.leaf.Key), pkitest.CertPEM(f.leaf.Cert, f.inter.Cert)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	trust := filepath.Join(root, "trust", "ca.pem")
	writeFile(t, trust, pkitest.CertPEM(f.root.Cert))
	strangerTrust := filepath.Join(root, "trust", "stranger.pem")
	writeFile(t, strangerTrust, pkitest.CertPEM(stranger.Cert))
	pw := filepath.Join(root, "pw")
	writeFile(t, pw, []byte("changeit\n"))
	out := filepath.Join(root, "out")
	args := func(bundle, trust string) []string {
		return []string{"stores", "--credential-bundle", bundle, "--trust-bundle", trust, "--password-file", pw,
			"--keystore", filepath.Join(out, "keystore.jks"), "--truststore", filepath.Join(out, "truststore.jks"),
			"--pem-dir", filepath.Join(out, "pem")}
	}
	goodPath := filepath.Join(root, "good.pem")
	writeFile(t, goodPath, good)
	if r := agent(t, nil, args(goodPath, trust)...); r.code != 0 {
		t.Fatalf("good bundle: exit %d\n%s", r.code, r.stderr)
	}
	before := snapshot(t, out)

	file := func(data []byte) func(string) {
		return func(p string) { writeFile(t, p, data) }
	}
	cases := []struct {
		name   string
		make   func(path string)
		trust  string
		reason pki.Reason
		want   string
	}{
		{"no private key", file(chain), "", pki.ReasonMalformed, "no private key found"},
		{"two private keys", file(cat(key, chain, pkitest.KeyPEM(other.Key))), "", pki.ReasonMalformed, "more than one private key (PEM block 4)"},
		{"no certificate", file(key), "", pki.ReasonMalformed, "no certificate found: a credential bundle holds the private key and its certificate chain (leaf first)"},
		{"encrypted key", file(cat(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}}), chain)), "", pki.ReasonUnsupportedKey, "PEM block 1 is an encrypted private key"},
		{"a CSR in the bundle", file(cat(key, chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}))), "", pki.ReasonMalformed, `PEM block 4 is \"CERTIFICATE REQUEST\"`},
		{"trailing garbage", file(cat(good, []byte("junk"))), "", pki.ReasonMalformed, "4 bytes after PEM block 3 are not valid PEM"},
		{"truncated", file(good[:len(good)-30]), "", pki.ReasonMalformed, "are not valid PEM (truncated or corrupt block?)"},
		{"garbage", file([]byte("this is not a credential bundle\n")), "", pki.ReasonMalformed, "no PEM data found"},
		{"key of another certificate", file(cat(pkitest.KeyPEM(other.Key), chain)), "", pki.ReasonKeyMismatch, "does not match the leaf certificate"},
		{"issuer before the leaf", file(cat(key, pkitest.CertPEM(f.inter.Cert, f.leaf.Cert))), "", pki.ReasonChainOrder, "the chain is out of order"},
		{"trusted by no trust bundle", file(good), strangerTrust, pki.ReasonUntrusted, "does not chain to any of the 1 trusted CAs"},
		{"expired leaf", file(credentialBundle(expired, f.inter.Cert)), "", pki.ReasonExpired, "expired at"},
		{"empty", file([]byte("\n\n")), "", pki.ReasonMissing, "file is empty"},
		{"missing", func(string) {}, "", pki.ReasonMissing, "file does not exist"},
		{"a dangling ..data symlink", func(p string) { os.Symlink(filepath.Join(filepath.Dir(p), "..data", "bundle.pem"), p) }, "", pki.ReasonMissing, "file does not exist"},
		{"a FIFO", func(p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "", pki.ReasonUnreadable, "is a FIFO, expected a regular file"},
		{"a symlink to /dev/zero", func(p string) { os.Symlink("/dev/zero", p) }, "", pki.ReasonUnreadable, "is a device, expected a regular file"},
		{"a directory", func(p string) { os.MkdirAll(p, 0o755) }, "", pki.ReasonUnreadable, "is a directory"},
		{"50 MB", func(p string) {
			big, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			big.Truncate(50 << 20) // sparse: costs no disk
			big.Close()
		}, "", pki.ReasonTooLarge, "larger than the 16777216-byte limit"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(root, "case", fmt.Sprint(i), "bundle.pem")
			os.MkdirAll(filepath.Dir(p), 0o755)
			tc.make(p)
			tr := trust
			if tc.trust != "" {
				tr = tc.trust
			}
			start := time.Now()
			r := agent(t, nil, args(p, tr)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, `"reason":"`+string(tc.reason)+`"`) {
				t.Errorf("the error does not say %q with reason %s:\n%s", tc.want, tc.reason, r.stderr)
			}
			if !strings.Contains(r.stderr, "credential bundle "+p) {
				t.Errorf("the log does not name the source:\n%s", r.stderr)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			assertSame(t, before, snapshot(t, out))
		})
	}
}

// TestInspectCredentialBundle: inspect reads a key+chain PEM file as a
// store's credentialBundle would: the leaf, its chain, the key match, and
// the chain's order.
func TestInspectCredentialBundle(t *testing.T) {
	f := newFixture(t, pkitest.P256)
	dir := t.TempDir()
	good, reversed := filepath.Join(dir, "good.pem"), filepath.Join(dir, "reversed.pem")
	writeFile(t, good, credentialBundle(f.leaf, f.inter.Cert))
	writeFile(t, reversed, append(pkitest.KeyPEM(f.leaf.Key), pkitest.CertPEM(f.inter.Cert, f.leaf.Cert)...))
	r := agent(t, nil, "inspect", "--output", "json", good)
	var rep struct {
		Kind         string
		Certificates []struct{ Role, SHA256 string }
		KeyMatches   *bool `json:"key_matches_leaf"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("inspect: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if rep.Kind != "credential-bundle" || len(rep.Certificates) != 2 || rep.Certificates[0].Role != "leaf" ||
		rep.Certificates[0].SHA256 != pki.Fingerprint(f.leaf.Cert) || rep.Certificates[1].Role != "chain" || rep.KeyMatches == nil || !*rep.KeyMatches {
		t.Errorf("inspect %s: %+v", good, rep)
	}
	if r := agent(t, nil, "inspect", reversed); r.code != 1 || !strings.Contains(r.stdout, "did not issue certificate 1") || !strings.Contains(r.stdout, "private key matches leaf: false") {
		t.Errorf("a reversed chain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCassandraStartsWithPerPodSources: a real Cassandra 5.0 node starts
// with the keystore and truststore init built from a podCertificate
// credential bundle (key + leaf + intermediate) and a separate trust file,
// and serves exactly that chain; a client whose store comes from a
// csi-driver volume with renamed files then passes init's real CQL wait
// over mutual TLS against it.
func TestCassandraStartsWithPerPodSources(t *testing.T) {
	need(t, "java")
	c := newCluster(t)
	inter, err := pkitest.New(c.ca, pkitest.Options{CN: "pod identity intermediate", IsCA: true, NotAfter: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	nodeLeaf, err := pkitest.Leaf(inter, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	clientLeaf, err := pkitest.Leaf(c.ca, "client", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	identity, trust, csi := filepath.Join(c.root, "identity"), filepath.Join(c.root, "ctb"), filepath.Join(c.root, "csi")
	project(t, identity, map[string][]byte{"credentialbundle.pem": credentialBundle(nodeLeaf, inter.Cert)})
	project(t, trust, map[string][]byte{"ca.pem": pkitest.CertPEM(c.ca.Cert)})
	project(t, csi, map[string][]byte{"cert.pem": pkitest.CertPEM(clientLeaf.Cert), "key.pem": pkitest.KeyPEM(clientLeaf.Key), "root.pem": pkitest.CertPEM(c.ca.Cert)})

	data, _ := os.ReadFile(filepath.Join(c.secretsDir, "keystore-password"))
	writeFile(t, filepath.Join(c.secretsDir, "truststore-password"), data)
	nodeCfg := filepath.Join(c.root, "node-init.yaml")
	writeFile(t, nodeCfg, []byte(fmt.Sprintf(`
templates:
  - {template: %s, out: "${NODE_DIR}/cassandra.yaml", secretsDir: %s}
stores:
  - name: node
    credentialBundle: %s/credentialbundle.pem
    trustBundles: [%s/ca.pem]
    passwordFile: %s/keystore-password
    keystore:   {path: "${CRYPTO_DIR}/keystore.jks", type: jks, alias: cassandra}
    truststore: {path: "${CRYPTO_DIR}/truststore.jks", type: jks}
`, filepath.Join(repoRoot(), "test", "cassandra", "cassandra.yaml.tmpl"), c.secretsDir, identity, trust, c.secretsDir)))
	if r := agent(t, c.env, "init", "--config", nodeCfg); r.code != 0 {
		t.Fatalf("node init: exit %d\n%s", r.code, r.stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	node, err := cassnode.Start(ctx, c.nodeDir, cassnode.Options{NativePort: c.native, StoragePort: c.storage,
		JMXPort: c.jmx, JolokiaPort: c.jolokia, Wait: true, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("Cassandra did not start with the credential bundle's stores: %v", err)
	}
	c.node = node
	t.Logf("MEASURED node start with credential-bundle stores: %v", time.Since(start).Round(time.Millisecond))

	// What the node serves on the CQL port is the bundle's chain.
	conn, err := tls.Dial("tcp", c.nativeAddr(), &tls.Config{InsecureSkipVerify: true,
		Certificates: []tls.Certificate{{Certificate: [][]byte{clientLeaf.Cert.Raw}, PrivateKey: clientLeaf.Key}}})
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates
	conn.Close()
	if len(served) != 2 || !served[0].Equal(nodeLeaf.Cert) || !served[1].Equal(inter.Cert) {
		t.Errorf("the node serves %d certificates, want the bundle's leaf and intermediate", len(served))
	}

	clientCfg := filepath.Join(c.root, "client-init.yaml")
	writeFile(t, clientCfg, []byte(fmt.Sprintf(`
stores:
  - name: client
    source: %[1]s
    files: {cert: cert.pem, key: key.pem, ca: root.pem}
    pem: {dir: %[2]s/pem}
wait:
  hosts: ["127.0.0.1:%[3]d"]
  store: client
  usernameFile: %[4]s/username
  passwordFile: %[4]s/password
  timeout: 2m
`, csi, c.clientDir, c.native, c.cqlDir)))
	if r := agent(t, nil, "init", "--config", clientCfg); r.code != 0 || !strings.Contains(r.stderr, `"msg":"CQL ready"`) {
		t.Fatalf("client init with the csi-driver store: exit %d\n%s", r.code, r.stderr)
	}
}

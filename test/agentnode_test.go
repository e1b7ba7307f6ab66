package test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// agentNode is a single node whose stores the agent built and whose
// cassandra.yaml it rendered, started without Jolokia.
type agentNode struct {
	// Root holds store-secrets/ and node/ (node/crypto/ for the stores).
	Root string
	// Source is the node's certificate directory; TrustBundle, if set,
	// adds its CAs (uploaded client certificates) to the truststore.
	Source, TrustBundle string
	// Template is the cassandra.yaml template under test/cassandra.
	Template      string
	StorePassword string
}

// start builds the stores, renders the template and starts the node,
// stopped on cleanup. It returns the node, its native port and how long it
// took to listen for CQL.
func (a agentNode) start(t *testing.T) (*cassnode.Node, int, time.Duration) {
	t.Helper()
	secrets := filepath.Join(a.Root, "store-secrets")
	writeFile(t, filepath.Join(secrets, "keystore-password"), []byte(a.StorePassword+"\n"))
	writeFile(t, filepath.Join(secrets, "truststore-password"), []byte(a.StorePassword+"\n"))
	nodeDir, cryptoDir := filepath.Join(a.Root, "node"), filepath.Join(a.Root, "node", "crypto")
	args := []string{"stores", "--source", a.Source}
	if a.TrustBundle != "" {
		args = append(args, "--trust-bundle", a.TrustBundle)
	}
	args = append(args, "--keystore", filepath.Join(cryptoDir, "keystore.jks"), "--truststore", filepath.Join(cryptoDir, "truststore.jks"),
		"--password-file", filepath.Join(secrets, "keystore-password"), "--alias", "cassandra")
	if r := agent(t, nil, args...); r.code != 0 {
		t.Fatalf("stores: exit %d\n%s", r.code, r.stderr)
	}
	ports, err := cassnode.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"NODE_DIR=" + nodeDir, "CRYPTO_DIR=" + cryptoDir, "NATIVE_PORT=" + strconv.Itoa(ports[0]), "STORAGE_PORT=" + strconv.Itoa(ports[1])}
	if r := agent(t, env, "render", "--template", filepath.Join(repoRoot(), "test", "cassandra", a.Template),
		"--out", filepath.Join(nodeDir, "cassandra.yaml"), "--secrets-dir", secrets); r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	begin := time.Now()
	node, err := cassnode.Start(ctx, nodeDir, cassnode.Options{NativePort: ports[0], StoragePort: ports[1], JMXPort: ports[2],
		DisableJolokia: true, Wait: true, Timeout: 180 * time.Second})
	if err != nil {
		t.Fatalf("starting Cassandra: %v", err)
	}
	took := time.Since(begin).Round(time.Millisecond)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := node.Stop(ctx); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
	})
	return node, ports[0], took
}

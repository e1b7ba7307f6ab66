package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/workload"
)

// Fixture is one real 3-node Cassandra 5.0 cluster with everything around it that the
// tests of this package share: the CA, each node's certificate source (cert-manager layout,
// written the kubelet's way), store passwords, keystores built by the agent's `stores`,
// cassandra.yaml rendered by the agent's `render`, a client certificate, and two CQL roles.
//
// Layout under Root:
//
//	ca.crt                        the cluster CA (PEM)
//	nodeN/                        the Cassandra node dir (cassandra.yaml, data, logs, pid)
//	nodeN/crypto/                 keystore.jks, truststore.jks (built by `stores`)
//	secrets/nodeN-tls/            the node's Secret: tls.crt, tls.key, ca.crt (kubeletfs)
//	secrets/nodeN-stores/         keystore-password, truststore-password (render's secrets dir)
//	secrets/client-tls/           the workload's Secret: tls.crt, tls.key, ca.crt (kubeletfs)
type Fixture struct {
	Root    string
	Agent   string // the cassandra-tls-agent binary
	CA      *pkitest.Cert
	CAFile  string
	Nodes   []*Node
	Client  Client
	Cluster *cassnode.Cluster
	// Admin is a superuser created after system_auth went to RF 3 (the default cassandra role
	// was written at RF 1 and is not relied on); Workload may only read and write Keyspace.
	Admin, Workload Credentials
	Keyspace, Table string
	logf            func(format string, args ...any)
}

// Node is one node of the fixture: its spec (addresses, ports, dirs), the running process,
// and its certificate material.
type Node struct {
	Name string
	Addr string
	Spec cassnode.NodeSpec
	Node *cassnode.Node // nil until the cluster started
	// SourceDir is the node's Secret (tls.crt, tls.key, ca.crt), updated with kubeletfs.Write.
	SourceDir string
	// SecretsDir holds keystore-password and truststore-password, one value per file.
	SecretsDir                           string
	KeystorePassword, TruststorePassword string
	Keystore, Truststore                 string // JKS files in Spec.CryptoDir
	Leaf                                 *pkitest.Cert
}

// KeystorePasswordFile and TruststorePasswordFile are the password files in SecretsDir.
func (n *Node) KeystorePasswordFile() string { return filepath.Join(n.SecretsDir, "keystore-password") }
func (n *Node) TruststorePasswordFile() string {
	return filepath.Join(n.SecretsDir, "truststore-password")
}

// Client is the workload's certificate, in cert-manager's layout, updated with kubeletfs.Write.
type Client struct {
	Dir  string
	Leaf *pkitest.Cert
}

// Files are the client's PEM files (symlinks through ..data, so a swap is seen on re-read).
func (c Client) Files() workload.TLSFiles {
	return workload.TLSFiles{CAFile: filepath.Join(c.Dir, "ca.crt"), CertFile: filepath.Join(c.Dir, "tls.crt"),
		KeyFile: filepath.Join(c.Dir, "tls.key")}
}

// Credentials are a CQL role's name and password.
type Credentials struct{ Username, Password string }

// FixtureOptions configures NewFixture.
type FixtureOptions struct {
	Root  string   // empty: a new temporary directory
	Agent string   // the agent binary (required)
	Addrs []string // cassnode.DefaultClusterAddrs when empty
	Heap  string   // per node, "512m" when empty
	Logf  func(format string, args ...any)
}

// NewFixture makes the PKI, starts the cluster (PrepareNode: leaf → Secret dir → `stores`
// → `render`), and sets up system_auth at RF 3, an admin superuser, the workload keyspace
// (RF 3) and role. On failure everything started is stopped.
func NewFixture(ctx context.Context, o FixtureOptions) (*Fixture, error) {
	f, err := newFixture(ctx, o)
	if err != nil && f != nil {
		return nil, fmt.Errorf("%w\n(fixture files kept in %s)", err, f.Root)
	}
	return f, err
}

func newFixture(ctx context.Context, o FixtureOptions) (*Fixture, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if len(o.Addrs) == 0 {
		o.Addrs = cassnode.DefaultClusterAddrs
	}
	root := o.Root
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "cta-cluster-"); err != nil {
			return nil, err
		}
	}
	f := &Fixture{Root: root, Agent: o.Agent, CAFile: filepath.Join(root, "ca.crt"),
		Keyspace: "workload", Table: "kv", logf: o.Logf,
		Admin:    Credentials{"admin", "admin-" + randHex(8)},
		Workload: Credentials{"workload", "workload-" + randHex(8)}}
	var err error
	if f.CA, err = pkitest.CA("cassandra-tls-agent cluster test CA"); err != nil {
		return f, fmt.Errorf("fixture: CA: %w", err)
	}
	if err := os.WriteFile(f.CAFile, pkitest.CertPEM(f.CA.Cert), 0o644); err != nil {
		return f, fmt.Errorf("fixture: %w", err)
	}
	f.Client.Dir = filepath.Join(root, "secrets", "client-tls")
	if f.Client.Leaf, err = f.IssueClient(f.CA, f.CA); err != nil {
		return f, err
	}
	tmpl, err := cassnode.ClusterTemplatePath()
	if err != nil {
		return f, err
	}
	prepare := func(ctx context.Context, s *cassnode.NodeSpec) error {
		n := &Node{Name: s.Name, Addr: s.Addr, Spec: *s,
			SourceDir:        filepath.Join(root, "secrets", s.Name+"-tls"),
			SecretsDir:       filepath.Join(root, "secrets", s.Name+"-stores"),
			KeystorePassword: "ks-" + randHex(8), TruststorePassword: "ts-" + randHex(8),
			Keystore: filepath.Join(s.CryptoDir, "keystore.jks"), Truststore: filepath.Join(s.CryptoDir, "truststore.jks")}
		if err := os.MkdirAll(n.SecretsDir, 0o700); err != nil {
			return err
		}
		for file, pw := range map[string]string{n.KeystorePasswordFile(): n.KeystorePassword, n.TruststorePasswordFile(): n.TruststorePassword} {
			if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
				return err
			}
		}
		if n.Leaf, err = f.IssueNode(n, f.CA, f.CA); err != nil {
			return err
		}
		if err := f.BuildStores(ctx, n); err != nil {
			return err
		}
		if _, err := f.runAgent(ctx, s.TemplateEnv(), "render", "--template", tmpl,
			"--out", filepath.Join(s.Dir, "cassandra.yaml"), "--secrets-dir", n.SecretsDir); err != nil {
			return err
		}
		f.Nodes = append(f.Nodes, n)
		return nil
	}
	f.Cluster, err = cassnode.StartCluster(ctx, cassnode.ClusterOptions{Dir: root, Addrs: o.Addrs, HeapSize: o.Heap,
		PrepareNode: prepare, Logf: o.Logf})
	if err != nil {
		return f, err
	}
	for i, n := range f.Nodes {
		n.Node = f.Cluster.Nodes[i]
	}
	if err := f.setupAuth(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), cassnode.DefaultStopTimeout)
		defer cancel()
		return f, errors.Join(err, f.Cluster.Stop(stopCtx))
	}
	return f, nil
}

// IssueNode issues a new leaf for n from ca (IP SAN = the node's address, DNS SAN = its
// name) and publishes it with caBundle as ca.crt into n.SourceDir the kubelet's way.
func (f *Fixture) IssueNode(n *Node, ca *pkitest.Cert, caBundle ...*pkitest.Cert) (*pkitest.Cert, error) {
	leaf, err := pkitest.New(ca, pkitest.Options{CN: n.Name, DNSNames: []string{n.Name}, IPs: []net.IP{net.ParseIP(n.Addr)}})
	if err != nil {
		return nil, fmt.Errorf("fixture: leaf for %s: %w", n.Name, err)
	}
	if err := publish(n.SourceDir, leaf, caBundle); err != nil {
		return nil, fmt.Errorf("fixture: publishing %s's leaf: %w", n.Name, err)
	}
	n.Leaf = leaf
	return leaf, nil
}

// IssueClient issues a new client leaf (CN workload) from ca and publishes it with caBundle
// as ca.crt into the client's Secret dir: a running workload picks both up at its next handshake.
func (f *Fixture) IssueClient(ca *pkitest.Cert, caBundle ...*pkitest.Cert) (*pkitest.Cert, error) {
	leaf, err := pkitest.New(ca, pkitest.Options{CN: "workload"})
	if err != nil {
		return nil, fmt.Errorf("fixture: client leaf: %w", err)
	}
	if err := publish(f.Client.Dir, leaf, caBundle); err != nil {
		return nil, fmt.Errorf("fixture: publishing the client leaf: %w", err)
	}
	f.Client.Leaf = leaf
	return leaf, nil
}

func publish(dir string, leaf *pkitest.Cert, caBundle []*pkitest.Cert) error {
	var cas []byte
	for _, c := range caBundle {
		cas = append(cas, pkitest.CertPEM(c.Cert)...)
	}
	return kubeletfs.Write(dir, map[string][]byte{
		"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": cas,
	})
}

// BuildStores runs `cassandra-tls-agent stores` for n: SourceDir → Keystore and Truststore.
func (f *Fixture) BuildStores(ctx context.Context, n *Node) error {
	_, err := f.runAgent(ctx, nil, "stores", "--source", n.SourceDir, "--keystore", n.Keystore, "--truststore", n.Truststore,
		"--password-file", n.KeystorePasswordFile(), "--truststore-password-file", n.TruststorePasswordFile())
	return err
}

// runAgent runs the agent binary with extra env, returning its stderr (its log).
func (f *Fixture) runAgent(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, f.Agent, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "CASSANDRA_TLS_AGENT_") { // the flags must say it all
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("fixture: cassandra-tls-agent %s: %w\n%s", args[0], err, stderr.String())
	}
	return stderr.String(), nil
}

// Coordinators are the nodes' addresses, for workload.Options.
func (f *Fixture) Coordinators() []string {
	out := make([]string, len(f.Nodes))
	for i, n := range f.Nodes {
		out[i] = n.Addr
	}
	return out
}

// WorkloadOptions are the options for a workload through every coordinator as the workload
// role, with the client's Secret files; callers set Duration, Rate and so on.
func (f *Fixture) WorkloadOptions() workload.Options {
	return workload.Options{Coordinators: f.Coordinators(), Port: f.Nodes[0].Spec.NativePort,
		Keyspace: f.Keyspace, Table: f.Table, Username: f.Workload.Username, Password: f.Workload.Password,
		TLS: f.Client.Files()}
}

// Session opens a session pinned to node i with the given credentials and the client's files.
func (f *Fixture) Session(ctx context.Context, i int, cred Credentials) (*gocql.Session, error) {
	dyn, err := workload.NewDynamicTLS(f.Client.Files())
	if err != nil {
		return nil, err
	}
	return workload.Connect(ctx, workload.ConnectOptions{Host: f.Nodes[i].Addr, Port: f.Nodes[i].Spec.NativePort,
		Username: cred.Username, Password: cred.Password, TLS: dyn})
}

// connectUntil retries Session until it succeeds or ctx ends: right after start the default
// superuser may not exist yet, and a failed initial connect is final for a gocql session.
func (f *Fixture) connectUntil(ctx context.Context, i int, cred Credentials) (*gocql.Session, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		s, err := f.Session(ctx, i, cred)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fixture: logging in as %s on %s: %w (last: %w)", cred.Username, f.Nodes[i].Addr, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// setupAuth: system_auth to RF 3 (and read-repaired at ALL so every replica holds every
// row), an admin superuser, the workload keyspace (RF 3) with its table, and the workload
// role with SELECT and MODIFY on that keyspace only; then checks the role at ALL and logs in
// with it through every coordinator.
func (f *Fixture) setupAuth(ctx context.Context) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := f.connectUntil(ctx, 0, Credentials{"cassandra", "cassandra"})
	if err != nil {
		return err
	}
	rf := "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"
	err = f.execAll(ctx, s, "ALTER KEYSPACE system_auth WITH replication = "+rf)
	s.Close()
	if err != nil {
		return err
	}
	// The default cassandra role was written at RF 1: until a repair copies it to the new
	// replicas, QUORUM reads of it may find nothing, and the superuser is no longer one.
	repairStart := time.Now()
	if err := f.Nodes[0].Node.Repair(ctx, "system_auth"); err != nil {
		return err
	}
	f.logf("fixture: system_auth at RF 3, repaired in %v", time.Since(repairStart).Round(time.Millisecond))
	if s, err = f.connectUntil(ctx, 0, Credentials{"cassandra", "cassandra"}); err != nil {
		return err
	}
	err = f.execAll(ctx, s, fmt.Sprintf("CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = '%s' AND SUPERUSER = true AND LOGIN = true",
		f.Admin.Username, f.Admin.Password))
	s.Close()
	if err != nil {
		return err
	}
	if s, err = f.connectUntil(ctx, 0, f.Admin); err != nil {
		return err
	}
	defer s.Close()
	err = f.execAll(ctx, s,
		fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", f.Keyspace, rf),
		workload.Schema(f.Keyspace, f.Table),
		fmt.Sprintf("CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = '%s' AND LOGIN = true", f.Workload.Username, f.Workload.Password),
		fmt.Sprintf("GRANT SELECT ON KEYSPACE %s TO %s", f.Keyspace, f.Workload.Username),
		fmt.Sprintf("GRANT MODIFY ON KEYSPACE %s TO %s", f.Keyspace, f.Workload.Username),
	)
	if err != nil {
		return err
	}
	// Every replica answers for the role and its permissions (CL ALL), so QUORUM reads of
	// them succeed with any one node down.
	var login bool
	if err := s.Query("SELECT can_login FROM system_auth.roles WHERE role = ?", f.Workload.Username).
		Consistency(gocql.All).ScanContext(ctx, &login); err != nil || !login {
		return fmt.Errorf("fixture: the %s role at ALL: login=%v: %w", f.Workload.Username, login, err)
	}
	var perms []string
	if err := s.Query("SELECT permissions FROM system_auth.role_permissions WHERE role = ? AND resource = ?",
		f.Workload.Username, "data/"+f.Keyspace).Consistency(gocql.All).ScanContext(ctx, &perms); err != nil {
		return fmt.Errorf("fixture: the %s role's permissions at ALL: %w", f.Workload.Username, err)
	}
	if strings.Join(perms, ",") != "MODIFY,SELECT" {
		return fmt.Errorf("fixture: the %s role's permissions at ALL: %v, want MODIFY,SELECT", f.Workload.Username, perms)
	}
	for i := range f.Nodes {
		ws, err := f.Session(ctx, i, f.Workload)
		if err != nil {
			return fmt.Errorf("fixture: logging in as %s through %s: %w", f.Workload.Username, f.Nodes[i].Addr, err)
		}
		err = ws.Query(fmt.Sprintf("SELECT k FROM %s.%s LIMIT 1", f.Keyspace, f.Table)).Consistency(gocql.Quorum).ExecContext(ctx)
		ws.Close()
		if err != nil {
			return fmt.Errorf("fixture: a QUORUM read as %s through %s: %w", f.Workload.Username, f.Nodes[i].Addr, err)
		}
	}
	f.logf("fixture: system_auth at RF 3, roles %s and %s, keyspace %s (RF 3) ready in %v", f.Admin.Username,
		f.Workload.Username, f.Keyspace, time.Since(start).Round(time.Millisecond))
	return nil
}

// execAll runs idempotent setup statements in order at QUORUM, waiting for schema agreement
// after each. A failed statement is tried again (logged) every 500 ms until ctx ends: right
// after a replication change, auth caches may briefly hold what a partial replica said.
func (f *Fixture) execAll(ctx context.Context, s *gocql.Session, stmts ...string) error {
	for _, stmt := range stmts {
		for attempt := 1; ; attempt++ {
			err := s.Query(stmt).Consistency(gocql.Quorum).ExecContext(ctx)
			if err == nil {
				err = s.AwaitSchemaAgreement(ctx)
			}
			if err == nil {
				break
			}
			f.logf("fixture: %s (attempt %d): %v", summary(stmt), attempt, err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("fixture: %s: %w", summary(stmt), err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// summary names a statement without its password.
func summary(stmt string) string {
	if i := strings.Index(stmt, "PASSWORD"); i >= 0 {
		return stmt[:i] + "…"
	}
	return stmt
}

// Stop stops the cluster (all nodes in parallel).
func (f *Fixture) Stop(ctx context.Context) error { return f.Cluster.Stop(ctx) }

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Internode sockets (port 7000) --------------------------------------------------------

// Conn is one established internode TCP connection as ss shows it, from the side of the
// process that owns the socket.
type Conn struct {
	Local, Peer string // "127.0.0.11:41234", "127.0.0.12:7000"
	PID         int
}

var ssUsersPID = regexp.MustCompile(`pid=(\d+)`)

// InternodeConns lists the established TCP sockets of the cluster's storage port on the
// nodes' addresses, with their owning pid.
func (f *Fixture) InternodeConns(ctx context.Context) ([]Conn, error) {
	out, err := exec.CommandContext(ctx, "ss", "-Htnp", "state", "established", f.ssFilter()).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("fixture: ss: %w\n%s", err, out)
	}
	var conns []Conn
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// Recv-Q Send-Q Local:Port Peer:Port users:(("java",pid=123,fd=45))
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		c := Conn{Local: fields[2], Peer: fields[3]}
		if m := ssUsersPID.FindStringSubmatch(sc.Text()); m != nil {
			c.PID, _ = strconv.Atoi(m[1])
		}
		conns = append(conns, c)
	}
	return conns, sc.Err()
}

// ssFilter selects the TCP sockets of the storage port with either end on a node's address:
// every internode connection, both ends (one end of each is a node's storage endpoint).
func (f *Fixture) ssFilter() string {
	addrs := f.Coordinators()
	port := strconv.Itoa(f.Nodes[0].Spec.StoragePort)
	var terms []string
	for _, a := range addrs {
		terms = append(terms, "src "+a, "dst "+a)
	}
	return fmt.Sprintf("( %s ) and ( sport = :%s or dport = :%s )", strings.Join(terms, " or "), port, port)
}

// KillInternode destroys (ss -K, needs root or CAP_NET_ADMIN) every internode connection of
// the given nodes (by index; all nodes when none), both ends: the connections they accepted
// (one end is the node's storage endpoint) and the ones they opened. The latter are found by
// owner pid, because Cassandra does not bind outbound sockets to listen_address: on loopback
// they leave from 127.0.0.1:<ephemeral>, not from the node's address. Returns how many sockets
// were killed.
func (f *Fixture) KillInternode(ctx context.Context, nodes ...int) (int, error) {
	if len(nodes) == 0 {
		for i := range f.Nodes {
			nodes = append(nodes, i)
		}
	}
	conns, err := f.InternodeConns(ctx)
	if err != nil {
		return 0, err
	}
	var terms []string
	pids := map[int]bool{}
	for _, i := range nodes {
		ep := f.Nodes[i].Spec.StorageAddr()
		terms = append(terms, "src "+ep, "dst "+ep)
		if pid, err := f.Nodes[i].Node.PID(); err == nil {
			pids[pid] = true
		}
	}
	for _, c := range conns {
		if pids[c.PID] && f.isStorageEndpoint(c.Peer) {
			terms = append(terms, "src "+c.Local, "dst "+c.Local)
		}
	}
	filter := fmt.Sprintf("( %s ) and ( sport = :%d or dport = :%d )", strings.Join(terms, " or "),
		f.Nodes[0].Spec.StoragePort, f.Nodes[0].Spec.StoragePort)
	out, err := exec.CommandContext(ctx, "ss", "-K", "-Htn", filter).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("fixture: ss -K %s: %w\n%s", filter, err, out)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n, nil
}

func (f *Fixture) isStorageEndpoint(addr string) bool {
	for _, n := range f.Nodes {
		if n.Spec.StorageAddr() == addr {
			return true
		}
	}
	return false
}

// MeshEdges maps the internode connections to node pairs: edges[i][j] lists the sockets node i
// owns whose peer is node j's storage endpoint (connections i opened to j).
func (f *Fixture) MeshEdges(conns []Conn) [][][]Conn {
	pids := map[int]int{}
	for i, n := range f.Nodes {
		if pid, err := n.Node.PID(); err == nil {
			pids[pid] = i
		}
	}
	edges := make([][][]Conn, len(f.Nodes))
	for i := range edges {
		edges[i] = make([][]Conn, len(f.Nodes))
	}
	for _, c := range conns {
		i, ok := pids[c.PID]
		if !ok {
			continue
		}
		for j, n := range f.Nodes {
			if c.Peer == n.Spec.StorageAddr() {
				edges[i][j] = append(edges[i][j], c)
			}
		}
	}
	return edges
}

package cassnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultClusterAddrs are the loopback addresses of a test cluster's nodes (127.0.0.1 stays
// free for the single-node suites). Linux routes all of 127.0.0.0/8 to lo: nothing to set up.
var DefaultClusterAddrs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

// DefaultClusterJVMOpts are added to every cluster node's JVM: C1 only (faster start on
// 2 cores) and a short shutdown announcement (gossip tells peers within 200 ms, not 2 s).
var DefaultClusterJVMOpts = []string{"-XX:TieredStopAtLevel=1", "-Dcassandra.shutdown_announce_in_ms=200"}

// Default waits of a cluster.
const (
	DefaultUpTimeout   = 90 * time.Second
	DefaultStopTimeout = 60 * time.Second
)

// NodeSpec describes one node of a cluster before it starts: where its files go and which
// addresses and ports it uses. ClusterOptions.PrepareNode fills Dir and CryptoDir.
type NodeSpec struct {
	Index       int    // 0-based
	Name        string // "node1", "node2", ...
	Addr        string // listen_address and rpc_address
	Dir         string // node dir: cassandra.yaml, data, logs, pid file
	CryptoDir   string // keystore.jks and truststore.jks (Dir/crypto)
	Seeds       string // "127.0.0.11:7000": the first node
	NativePort  int
	StoragePort int
	JMXPort     int // on 127.0.0.1 (Cassandra's JMX is local only)
	JolokiaPort int // on Addr
}

// TemplateVars returns the non-secret placeholders of test/cassandra/cassandra-cluster.yaml.tmpl;
// KEYSTORE_PASSWORD and TRUSTSTORE_PASSWORD are the caller's (e.g. a secrets dir).
func (s *NodeSpec) TemplateVars() map[string]string {
	return map[string]string{
		"NODE_DIR":       s.Dir,
		"CRYPTO_DIR":     s.CryptoDir,
		"LISTEN_ADDRESS": s.Addr,
		"SEEDS":          s.Seeds,
		"NATIVE_PORT":    strconv.Itoa(s.NativePort),
		"STORAGE_PORT":   strconv.Itoa(s.StoragePort),
	}
}

// TemplateEnv is TemplateVars as KEY=VALUE entries (for a renderer reading its environment).
func (s *NodeSpec) TemplateEnv() []string {
	var env []string
	for k, v := range s.TemplateVars() {
		env = append(env, k+"="+v)
	}
	return env
}

// StorageAddr is Addr:StoragePort, the endpoint gossip reports for this node.
func (s *NodeSpec) StorageAddr() string {
	return net.JoinHostPort(s.Addr, strconv.Itoa(s.StoragePort))
}

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Dir holds one directory per node (Dir/node1, ...). Required.
	Dir string
	// Addrs are the nodes' addresses, the first is the seed; DefaultClusterAddrs when empty.
	Addrs []string
	// NativePort and StoragePort are the same on every node (9042 and 7000 when zero).
	NativePort, StoragePort int
	// HeapSize is -Xms/-Xmx of every node ("512m" when empty).
	HeapSize string
	// JVMOpts are added after DefaultClusterJVMOpts.
	JVMOpts []string
	// PrepareNode must leave spec.Dir/cassandra.yaml (rendered from ClusterTemplatePath with
	// spec.TemplateVars) and the stores it names in spec.CryptoDir. Called once per node,
	// in order, before any node starts. Required.
	PrepareNode func(ctx context.Context, spec *NodeSpec) error
	// StartTimeout bounds each node's wait for CQL (DefaultTimeout when zero); UpTimeout the
	// wait until every node sees every node live (DefaultUpTimeout when zero).
	StartTimeout, UpTimeout time.Duration
	// Logf receives progress lines (nil: silent).
	Logf func(format string, args ...any)
}

// ClusterTimings are measured by StartCluster and Stop, each from the start of that call.
type ClusterTimings struct {
	SeedCQL time.Duration // node 1's CQL is up
	AllCQL  time.Duration // every node's CQL is up
	AllUp   time.Duration // every node sees every node live (the cluster is usable)
	Stop    time.Duration // the last Stop took
}

// Cluster is a running multi-node cluster started by StartCluster.
type Cluster struct {
	Nodes   []*Node    // in the order of Addrs; Nodes[0] is the seed
	Specs   []NodeSpec // the specs PrepareNode saw
	Timings ClusterTimings
	opts    ClusterOptions
}

// StartCluster starts a cluster the way measured fastest on 2 cores: node 1 until its CQL is
// up, then all the others together, then waits until every node's gossip sees all nodes live.
// On failure every started node is stopped and the error carries the log tails.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Dir == "" || opts.PrepareNode == nil {
		return nil, errors.New("cassnode: ClusterOptions.Dir and PrepareNode are required")
	}
	if len(opts.Addrs) == 0 {
		opts.Addrs = DefaultClusterAddrs
	}
	if opts.NativePort == 0 {
		opts.NativePort = DefaultNativePort
	}
	if opts.StoragePort == 0 {
		opts.StoragePort = DefaultStoragePort
	}
	if opts.HeapSize == "" {
		opts.HeapSize = "512m"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultTimeout
	}
	if opts.UpTimeout <= 0 {
		opts.UpTimeout = DefaultUpTimeout
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	for _, a := range opts.Addrs {
		if ip := net.ParseIP(a); ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("cassnode: cluster address %q is not a loopback IPv4 address", a)
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cassnode: %w", err)
	}
	if err := Lock(ctx); err != nil {
		return nil, err
	}
	if err := checkAddrsFree(opts.Addrs, opts.StoragePort, opts.NativePort); err != nil {
		return nil, err
	}
	jmx, err := FreePorts(len(opts.Addrs))
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	seeds := net.JoinHostPort(opts.Addrs[0], strconv.Itoa(opts.StoragePort))
	for i, addr := range opts.Addrs {
		jolokia, err := FreePortsOn(addr, 1)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("node%d", i+1)
		s := NodeSpec{Index: i, Name: name, Addr: addr, Dir: filepath.Join(dir, name),
			CryptoDir: filepath.Join(dir, name, "crypto"), Seeds: seeds,
			NativePort: opts.NativePort, StoragePort: opts.StoragePort, JMXPort: jmx[i], JolokiaPort: jolokia[0]}
		if err := os.MkdirAll(s.CryptoDir, 0o755); err != nil {
			return nil, fmt.Errorf("cassnode: %w", err)
		}
		if err := opts.PrepareNode(ctx, &s); err != nil {
			return nil, fmt.Errorf("cassnode: preparing %s: %w", name, err)
		}
		c.Specs = append(c.Specs, s)
	}

	start := time.Now()
	fail := func(err error) (*Cluster, error) {
		var tails strings.Builder
		for _, n := range c.Nodes {
			if n != nil {
				fmt.Fprintf(&tails, "\n----- %s (%s) -----\n%s", n.Host, n.LogPath(), n.LogTail(25))
			}
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), DefaultStopTimeout)
		defer cancel()
		if serr := c.Stop(stopCtx); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, fmt.Errorf("%w%s", err, tails.String())
	}
	c.Nodes = make([]*Node, len(c.Specs))
	opts.Logf("cassnode: starting %s (seed) and waiting for its CQL", c.Specs[0].Name)
	if c.Nodes[0], err = Start(ctx, c.Specs[0].Dir, c.nodeOptions(&c.Specs[0])); err != nil {
		return fail(fmt.Errorf("cassnode: starting %s: %w", c.Specs[0].Name, err))
	}
	c.Timings.SeedCQL = time.Since(start)
	opts.Logf("cassnode: %s CQL up after %v; starting the other %d nodes together", c.Specs[0].Name,
		c.Timings.SeedCQL.Round(time.Millisecond), len(c.Specs)-1)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := 1; i < len(c.Specs); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := Start(ctx, c.Specs[i].Dir, c.nodeOptions(&c.Specs[i]))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("cassnode: starting %s: %w", c.Specs[i].Name, err))
				return
			}
			c.Nodes[i] = n
		}(i)
	}
	wg.Wait()
	if len(errs) > 0 {
		return fail(errors.Join(errs...))
	}
	c.Timings.AllCQL = time.Since(start)
	opts.Logf("cassnode: every node's CQL up after %v; waiting until every node sees all %d live",
		c.Timings.AllCQL.Round(time.Millisecond), len(c.Nodes))
	upCtx, cancel := context.WithTimeout(ctx, opts.UpTimeout)
	defer cancel()
	if _, err := c.WaitAllUp(upCtx); err != nil {
		return fail(err)
	}
	c.Timings.AllUp = time.Since(start)
	opts.Logf("cassnode: cluster up: every node sees all live after %v", c.Timings.AllUp.Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) nodeOptions(s *NodeSpec) Options {
	jvm := append(append([]string{}, DefaultClusterJVMOpts...), c.opts.JVMOpts...)
	return Options{
		Host: s.Addr, NativePort: s.NativePort, StoragePort: s.StoragePort,
		JMXPort: s.JMXPort, JolokiaHost: s.Addr, JolokiaPort: s.JolokiaPort,
		Wait: true, Timeout: c.opts.StartTimeout, HeapSize: c.opts.HeapSize,
		Env: []string{"JVM_EXTRA_OPTS=" + strings.Join(jvm, " ")},
	}
}

// checkAddrsFree fails early, and clearly, when something (a cluster left over by a killed
// test binary, another worktree's run) already listens on a node's address and port.
func checkAddrsFree(addrs []string, ports ...int) error {
	var busy []string
	for _, a := range addrs {
		for _, p := range ports {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(p)))
			if err != nil {
				busy = append(busy, net.JoinHostPort(a, strconv.Itoa(p)))
				continue
			}
			l.Close()
		}
	}
	if len(busy) == 0 {
		return nil
	}
	out, _ := exec.Command("ss", "-Hltnp").CombinedOutput()
	return fmt.Errorf("cassnode: %s already in use (a cluster left running? stop it with test/cassandra/stop.sh NODE_DIR, or pick other addresses); listeners:\n%s",
		strings.Join(busy, ", "), out)
}

// Endpoints are the nodes' storage endpoints, as gossip's …WithPort attributes name them.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Specs))
	for i := range c.Specs {
		eps[i] = c.Specs[i].StorageAddr()
	}
	return eps
}

// Views asks every node for its gossip view, in parallel; errs[i] is node i's failure.
func (c *Cluster) Views(ctx context.Context) (views []*Gossip, errs []error) {
	views, errs = make([]*Gossip, len(c.Nodes)), make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i], errs[i] = n.Gossip(ctx)
		}()
	}
	wg.Wait()
	return views, errs
}

// WaitAllUp polls every node's gossip (Jolokia, StorageService) until each sees exactly all
// nodes live and none unreachable, joining, leaving or moving; it returns those views. When
// ctx ends first, the error holds what each node last said.
func (c *Cluster) WaitAllUp(ctx context.Context) ([]*Gossip, error) {
	eps := c.Endpoints()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		views, errs := c.Views(ctx)
		ok := true
		for i := range views {
			if errs[i] != nil || !views[i].SeesAllUp(eps) {
				ok = false
			}
		}
		if ok {
			return views, nil
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for i := range views {
				if errs[i] != nil {
					fmt.Fprintf(&b, "\n%s: %v", c.Specs[i].Name, errs[i])
				} else {
					fmt.Fprintf(&b, "\n%s", views[i])
				}
			}
			return views, fmt.Errorf("cassnode: not every node sees %v live: %w; last views:%s", eps, ctx.Err(), b.String())
		case <-t.C:
		}
	}
}

// Status is a `nodetool status` equivalent from every node's point of view (Jolokia).
func (c *Cluster) Status(ctx context.Context) string {
	views, errs := c.Views(ctx)
	var b strings.Builder
	for i := range views {
		if errs[i] != nil {
			fmt.Fprintf(&b, "%s: %v\n", c.Specs[i].Name, errs[i])
			continue
		}
		b.WriteString(views[i].String())
	}
	return b.String()
}

// RestartTimes are the instants of one node's restart.
type RestartTimes struct {
	Begin   time.Time // Restart called (SIGTERM follows at once)
	Stopped time.Time // the process is gone
	CQLUp   time.Time // the restarted node's CQL is up
	AllUp   time.Time // every node sees every node live again
}

// Restart restarts node i (stop, start, wait for CQL) and waits until every node sees all
// live again. The other nodes keep running: their PIDs do not change.
func (c *Cluster) Restart(ctx context.Context, i int) (RestartTimes, error) {
	if i < 0 || i >= len(c.Nodes) {
		return RestartTimes{}, fmt.Errorf("cassnode: no node %d", i)
	}
	n := c.Nodes[i]
	rt := RestartTimes{Begin: time.Now()}
	if err := n.Stop(ctx); err != nil {
		return rt, fmt.Errorf("cassnode: restart %s: stop: %w", c.Specs[i].Name, err)
	}
	rt.Stopped = time.Now()
	if err := n.start(ctx, true); err != nil {
		return rt, fmt.Errorf("cassnode: restart %s: start: %w", c.Specs[i].Name, err)
	}
	rt.CQLUp = time.Now()
	upCtx, cancel := context.WithTimeout(ctx, c.opts.UpTimeout)
	defer cancel()
	if _, err := c.WaitAllUp(upCtx); err != nil {
		return rt, fmt.Errorf("cassnode: restart %s: %w", c.Specs[i].Name, err)
	}
	rt.AllUp = time.Now()
	return rt, nil
}

// Stop stops every node in parallel (SIGTERM; SIGKILL after stop.sh's STOP_TIMEOUT).
// Stopping a stopped cluster is not an error.
func (c *Cluster) Stop(ctx context.Context) error {
	start := time.Now()
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Stop(ctx); err != nil {
				errs[i] = fmt.Errorf("cassnode: stopping %s: %w", c.Specs[i].Name, err)
			}
		}()
	}
	wg.Wait()
	c.Timings.Stop = time.Since(start)
	return errors.Join(errs...)
}

// ClusterTemplatePath is <repo>/test/cassandra/cassandra-cluster.yaml.tmpl.
func ClusterTemplatePath() (string, error) {
	d, err := ScriptsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "cassandra-cluster.yaml.tmpl"), nil
}

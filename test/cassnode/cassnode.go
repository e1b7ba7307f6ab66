// Package cassnode starts and stops a real single-node Apache Cassandra 5.0 for tests, by
// wrapping the scripts in test/cassandra (fetch.sh, start.sh, stop.sh, wipe.sh, nodetool.sh).
//
// The node directory must hold a rendered cassandra.yaml (from test/cassandra/cassandra.yaml.tmpl)
// whose ports match Options. Typical use:
//
//	if err := cassnode.Available(); err != nil {
//		t.Skip(err)
//	}
//	n, err := cassnode.Start(ctx, dir, cassnode.Options{Wait: true})
//	...
//	defer n.Stop(context.Background())
//
// StartCluster (cluster.go) starts several such nodes as one cluster on 127.0.0.11, .12, .13
// (test/cassandra/cassandra-cluster.yaml.tmpl), waits until every node's gossip sees all of them
// live (Jolokia, StorageService), and restarts or stops them; test/cluster shares one for its
// package.
//
// Only the standard library is used.
package cassnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default ports, as used by test/cassandra/start.sh and the template.
const (
	DefaultNativePort  = 9042
	DefaultStoragePort = 7000
	DefaultJMXPort     = 7199
	DefaultJolokiaPort = 8778
	// DefaultTimeout bounds the wait for CQL readiness when Options.Timeout is zero.
	DefaultTimeout = 180 * time.Second
)

// CQLReadyLine is the log message Cassandra prints when the native transport accepts clients.
const CQLReadyLine = "Starting listening for CQL clients"

// Options configures Start. Zero ports mean the defaults above.
type Options struct {
	// Host is the node's listen/rpc address as written in its cassandra.yaml (default
	// 127.0.0.1); recorded on the Node for NativeAddr and StorageAddr.
	Host string
	// NativePort and StoragePort must match the node's cassandra.yaml; they are recorded
	// on the Node (e.g. for NativeAddr) and used by TemplateVars, not passed to start.sh.
	NativePort  int
	StoragePort int
	// JMXPort is the local JMX port (nodetool). Passed as JMX_PORT.
	JMXPort int
	// JolokiaPort is the Jolokia agent port. Passed as JOLOKIA_PORT.
	JolokiaPort int
	// JolokiaHost is the address the Jolokia agent listens on (default 127.0.0.1).
	// Passed as JOLOKIA_HOST.
	JolokiaHost string
	// DisableJolokia starts the node without the Jolokia agent (JOLOKIA_PORT=0).
	DisableJolokia bool
	// Wait makes Start return only when CQL is up (or fail). Without it Start returns right
	// after launch; call (*Node).WaitCQL later.
	Wait bool
	// Timeout bounds the CQL wait (START_TIMEOUT); DefaultTimeout when zero.
	Timeout time.Duration
	// HeapSize sets -Xms/-Xmx (HEAP_SIZE, e.g. "512m"); start.sh's default when empty.
	HeapSize string
	// Env holds extra KEY=VALUE entries for the scripts (e.g. JVM_EXTRA_OPTS=...).
	Env []string
}

func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.JolokiaHost == "" {
		o.JolokiaHost = "127.0.0.1"
	}
	if o.NativePort == 0 {
		o.NativePort = DefaultNativePort
	}
	if o.StoragePort == 0 {
		o.StoragePort = DefaultStoragePort
	}
	if o.JMXPort == 0 {
		o.JMXPort = DefaultJMXPort
	}
	if o.JolokiaPort == 0 {
		o.JolokiaPort = DefaultJolokiaPort
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// TemplateVars returns the values for the placeholders of test/cassandra/cassandra.yaml.tmpl.
// cryptoDir must hold keystore.jks and truststore.jks.
func (o Options) TemplateVars(nodeDir, cryptoDir, keystorePassword, truststorePassword string) map[string]string {
	o = o.withDefaults()
	return map[string]string{
		"NODE_DIR":            nodeDir,
		"CRYPTO_DIR":          cryptoDir,
		"KEYSTORE_PASSWORD":   keystorePassword,
		"TRUSTSTORE_PASSWORD": truststorePassword,
		"NATIVE_PORT":         strconv.Itoa(o.NativePort),
		"STORAGE_PORT":        strconv.Itoa(o.StoragePort),
	}
}

// Node is a Cassandra process started by Start for the directory Dir.
type Node struct {
	Dir         string
	Host        string // listen/rpc address (127.0.0.1 unless Options.Host says otherwise)
	NativePort  int
	StoragePort int
	JMXPort     int    // on 127.0.0.1 (Cassandra's local JMX)
	JolokiaHost string // address of the Jolokia agent
	JolokiaPort int    // 0 when the agent is disabled
	opts        Options
}

// Start launches Cassandra for dir (which must contain cassandra.yaml) via start.sh.
// With opts.Wait it returns once the CQL ready line is logged; on failure the node is stopped
// and the error carries the script's output (including the log tail).
func Start(ctx context.Context, dir string, opts Options) (*Node, error) {
	opts = opts.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "cassandra.yaml")); err != nil {
		return nil, fmt.Errorf("cassnode: %w (render cassandra.yaml.tmpl into the node dir first)", err)
	}
	if err := Lock(ctx); err != nil {
		return nil, err
	}
	n := &Node{Dir: abs, Host: opts.Host, NativePort: opts.NativePort, StoragePort: opts.StoragePort,
		JMXPort: opts.JMXPort, JolokiaHost: opts.JolokiaHost, JolokiaPort: opts.JolokiaPort, opts: opts}
	if opts.DisableJolokia {
		n.JolokiaPort = 0
	}
	if err := n.start(ctx, opts.Wait); err != nil {
		return nil, err
	}
	return n, nil
}

// start runs start.sh for the node (waiting for CQL when wait is set).
func (n *Node) start(ctx context.Context, wait bool) error {
	args := []string{n.Dir}
	if !wait {
		args = []string{"--no-wait", n.Dir}
	}
	if _, err := runScript(ctx, "start.sh", n.env(), args...); err != nil {
		// start.sh stops the node itself on timeout/early death; this covers a cancelled ctx
		// (the script was killed while java, in its own session, kept running).
		stopCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, _ = runScript(stopCtx, "stop.sh", n.env(), n.Dir)
		return err
	}
	return nil
}

// Restart stops the node and starts it again on the same directory, ports and options,
// returning once CQL is up (whatever Options.Wait said at Start). The data is kept, so the
// node rejoins its cluster with its old tokens and host id.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.Stop(ctx); err != nil {
		return fmt.Errorf("cassnode: restart %s: stop: %w", n.Dir, err)
	}
	if err := n.start(ctx, true); err != nil {
		return fmt.Errorf("cassnode: restart %s: start: %w", n.Dir, err)
	}
	return nil
}

func (n *Node) env() []string {
	env := []string{
		"JMX_PORT=" + strconv.Itoa(n.JMXPort),
		"JOLOKIA_PORT=" + strconv.Itoa(n.JolokiaPort),
		"JOLOKIA_HOST=" + n.JolokiaHost,
		"START_TIMEOUT=" + strconv.Itoa(int(math.Ceil(n.opts.Timeout.Seconds()))),
	}
	if n.opts.HeapSize != "" {
		env = append(env, "HEAP_SIZE="+n.opts.HeapSize)
	}
	return append(env, n.opts.Env...)
}

// Stop stops the node (SIGTERM, then SIGKILL after 30 s). Stopping a stopped node is not an error.
func (n *Node) Stop(ctx context.Context) error {
	_, err := runScript(ctx, "stop.sh", n.env(), n.Dir)
	return err
}

// Wipe stops the node and deletes its data, commitlog, hints, caches and logs (keeps cassandra.yaml).
func (n *Node) Wipe(ctx context.Context) error {
	_, err := runScript(ctx, "wipe.sh", n.env(), n.Dir)
	return err
}

// PID returns the pid in the node's pid file (written by start.sh, removed by stop.sh).
func (n *Node) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.Dir, "cassandra.pid"))
	if err != nil {
		return 0, fmt.Errorf("cassnode: no pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("cassnode: bad pid file: %w", err)
	}
	return pid, nil
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	pid, err := n.PID()
	if err != nil {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// LogPath is the node's stdout/stderr log (one per start; the previous one is stdout.log.1).
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "stdout.log") }

// NativeAddr is Host:NativePort.
func (n *Node) NativeAddr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.NativePort)) }

// StorageAddr is Host:StoragePort, the internode (gossip and messaging) endpoint.
func (n *Node) StorageAddr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.StoragePort)) }

// JolokiaURL is the agent's base URL (empty when disabled).
func (n *Node) JolokiaURL() string {
	if n.JolokiaPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://%s/jolokia/", net.JoinHostPort(n.JolokiaHost, strconv.Itoa(n.JolokiaPort)))
}

// RSS returns the resident set size of the node's JVM in bytes (VmRSS in /proc/PID/status).
func (n *Node) RSS() (int64, error) {
	pid, err := n.PID()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("cassnode: reading the status of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("cassnode: VmRSS of pid %d: %w", pid, err)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("cassnode: no VmRSS for pid %d", pid)
}

// LaunchedAt is when start.sh launched the JVM (from NODE_DIR/launched_at, epoch millis).
func (n *Node) LaunchedAt() (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(n.Dir, "launched_at"))
	if err != nil {
		return time.Time{}, fmt.Errorf("cassnode: %w", err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("cassnode: bad launched_at: %w", err)
	}
	return time.UnixMilli(ms), nil
}

// CQLReadyAt returns the timestamp of the (last) CQL ready line in the node's log.
func (n *Node) CQLReadyAt() (time.Time, error) {
	ts, _, err := FindLogLine(n.LogPath(), CQLReadyLine)
	return ts, err
}

// StartupDuration is CQLReadyAt - LaunchedAt.
func (n *Node) StartupDuration() (time.Duration, error) {
	l, err := n.LaunchedAt()
	if err != nil {
		return 0, err
	}
	r, err := n.CQLReadyAt()
	if err != nil {
		return 0, err
	}
	return r.Sub(l), nil
}

// WaitCQL waits until the CQL ready line is logged, the process dies, or ctx ends.
func (n *Node) WaitCQL(ctx context.Context) (time.Time, error) {
	return n.WaitForLog(ctx, CQLReadyLine)
}

// WaitForLog polls the node's log until a line containing substr appears (returning its
// timestamp), the process dies, or ctx ends.
func (n *Node) WaitForLog(ctx context.Context, substr string) (time.Time, error) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		ts, _, err := FindLogLine(n.LogPath(), substr)
		if err == nil {
			return ts, nil
		}
		if !n.Running() {
			return time.Time{}, fmt.Errorf("cassnode: node is not running (no %q in %s)\n%s", substr, n.LogPath(), n.LogTail(30))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("cassnode: waiting for %q: %w", substr, ctx.Err())
		case <-t.C:
		}
	}
}

// LogTail returns the last lines of the node's log (for test failure messages).
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Nodetool runs nodetool against the node's JMX port.
func (n *Node) Nodetool(ctx context.Context, args ...string) (string, error) {
	return Nodetool(ctx, n.JMXPort, args...)
}

// ErrNoLogLine is returned by FindLogLine when no line matches.
var ErrNoLogLine = errors.New("cassnode: log line not found")

// logTS matches the timestamp that test/cassandra/logback.xml puts at the start of every line.
var logTS = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{2}:\d{2}))\s`)

// FindLogLine returns the timestamp and text of the last line of the log at path that
// contains substr and starts with a timestamp (RFC 3339 with milliseconds).
func FindLogLine(path, substr string) (time.Time, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, "", err
	}
	defer f.Close()
	var (
		found time.Time
		line  string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024) // the config dump line is long
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, substr) {
			continue
		}
		m := logTS.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		found, line = ts, l
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, "", err
	}
	if line == "" {
		return time.Time{}, "", fmt.Errorf("%w: %q in %s", ErrNoLogLine, substr, path)
	}
	return found, line, nil
}

// Nodetool runs test/cassandra/nodetool.sh against 127.0.0.1:jmxPort and returns its
// combined output.
func Nodetool(ctx context.Context, jmxPort int, args ...string) (string, error) {
	if jmxPort == 0 {
		jmxPort = DefaultJMXPort
	}
	return runScript(ctx, "nodetool.sh", []string{"JMX_PORT=" + strconv.Itoa(jmxPort)}, args...)
}

// Fetch runs fetch.sh (downloads the jars on first use; a no-op when the cache is complete).
func Fetch(ctx context.Context) error {
	_, err := runScript(ctx, "fetch.sh", nil)
	return err
}

// RepoRoot returns the repository root: the nearest directory holding go.mod, searched upward
// from the working directory, then from this source file.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, d := range starts {
		for {
			if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
				if _, err := os.Stat(filepath.Join(d, "test", "cassandra", "start.sh")); err == nil {
					return d, nil
				}
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", errors.New("cassnode: repository root (go.mod with test/cassandra/) not found")
}

// ScriptsDir is <repo>/test/cassandra.
func ScriptsDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "cassandra"), nil
}

// TemplatePath is <repo>/test/cassandra/cassandra.yaml.tmpl.
func TemplatePath() (string, error) {
	d, err := ScriptsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "cassandra.yaml.tmpl"), nil
}

// CacheDir is where fetch.sh puts the jars: $CASSANDRA_CACHE or <repo>/.cache/cassandra.
func CacheDir() (string, error) {
	if c := os.Getenv("CASSANDRA_CACHE"); c != "" {
		return c, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "cassandra"), nil
}

// Available reports why a node cannot be started here (nil when it can): bash and setsid
// missing, java missing or not JDK 11/17, or mvn missing while the jar cache is incomplete.
func Available() error {
	if _, err := ScriptsDir(); err != nil {
		return err
	}
	for _, tool := range []string{"bash", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("cassnode: %s not found in PATH", tool)
		}
	}
	java := javaBin()
	out, err := exec.Command(java, "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cassnode: java not usable (%s): %v", java, err)
	}
	if major := javaMajor(string(out)); major != 11 && major != 17 {
		return fmt.Errorf("cassnode: Cassandra 5.0 needs JDK 11 or 17, %s is %d", java, major)
	}
	if !cacheComplete() {
		if _, err := exec.LookPath("mvn"); err != nil {
			return errors.New("cassnode: mvn not found in PATH and the Cassandra jar cache is not filled (run test/cassandra/fetch.sh)")
		}
	}
	return nil
}

func javaBin() string {
	if j := os.Getenv("JAVA"); j != "" {
		return j
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if _, err := os.Stat(filepath.Join(h, "bin", "java")); err == nil {
			return filepath.Join(h, "bin", "java")
		}
	}
	return "java"
}

var javaVersionRE = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

func javaMajor(versionOutput string) int {
	m := javaVersionRE.FindStringSubmatch(versionOutput)
	if m == nil {
		return 0
	}
	major, _ := strconv.Atoi(m[1])
	if major == 1 && m[2] != "" { // 1.8 style
		major, _ = strconv.Atoi(m[2])
	}
	return major
}

func cacheComplete() bool {
	c, err := CacheDir()
	if err != nil {
		return false
	}
	for _, f := range []string{".stamp", "jolokia-agent.jar", "jamm.jar"} {
		if _, err := os.Stat(filepath.Join(c, f)); err != nil {
			return false
		}
	}
	return true
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago.
func FreePorts(n int) ([]int, error) { return FreePortsOn("127.0.0.1", n) }

// FreePortsOn returns n distinct TCP ports that were free on host a moment ago (the kernel
// picks them; a port held by a wildcard listener is never returned).
func FreePortsOn(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("cassnode: a free port on %s: %w", host, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// runScript runs test/cassandra/<name> with extra env and returns its combined output.
func runScript(ctx context.Context, name string, env []string, args ...string) (string, error) {
	dir, err := ScriptsDir()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(dir, name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	// Own process group, so a cancelled ctx kills the script and its children (sleep, grep)
	// at once; the JVM runs in its own session (setsid) and is stopped by stop.sh instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	s := out.String()
	if err != nil {
		if ctx.Err() != nil {
			return s, fmt.Errorf("cassnode: %s %s: %w (%v)\n%s", name, strings.Join(args, " "), ctx.Err(), err, s)
		}
		return s, fmt.Errorf("cassnode: %s %s: %w\n%s", name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

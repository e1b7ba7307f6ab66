// Package cluster holds the end-to-end tests that need a real multi-node Cassandra: one
// 3-node Cassandra 5.0 cluster (127.0.0.11–13, TLS on internode and CQL with client
// certificates, PasswordAuthenticator) is started by TestMain for the whole package and
// shared through fx. Tests must leave it as they found it: every node up and seeing all.
//
// Set CLUSTER_ADDRS=127.0.0.21,127.0.0.22,127.0.0.23 to run beside another cluster.
package cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// fx is the package's cluster, started by TestMain.
var fx *Fixture

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := cassnode.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "a real Cassandra is required (./test/deps.sh): %v\n", err)
		return 1
	}
	if _, err := exec.LookPath("ss"); err != nil {
		fmt.Fprintln(os.Stderr, "ss (iproute2) is required:", err)
		return 1
	}
	binDir, err := os.MkdirTemp("", "cta-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	agent := filepath.Join(binDir, "cassandra-tls-agent")
	build := exec.Command("go", "build", "-o", agent, "./cmd/cassandra-tls-agent")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the agent:", err)
		return 1
	}

	var addrs []string
	if v := os.Getenv("CLUSTER_ADDRS"); v != "" {
		addrs = strings.Split(v, ",")
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	// Up to ~3 min of this may be waiting for cassnode.Lock while another package's nodes run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	start := time.Now()
	fx, err = NewFixture(ctx, FixtureOptions{Agent: agent, Addrs: addrs, Logf: logf})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the cluster:", err)
		return 1
	}
	measure("start", "seed CQL %v, all CQL %v, all see all %v, with auth setup %v",
		fx.Cluster.Timings.SeedCQL.Round(time.Millisecond), fx.Cluster.Timings.AllCQL.Round(time.Millisecond),
		fx.Cluster.Timings.AllUp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	measureRSS("after start")

	// The cluster's JVMs run in their own sessions and outlive this process: stop them on
	// SIGINT/SIGTERM and before `go test -timeout` panics (which skips deferred calls).
	var stopOnce sync.Once
	stopCluster := func(why string) {
		stopOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*cassnode.DefaultStopTimeout)
			defer cancel()
			if err := fx.Stop(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "stopping the cluster (%s): %v\n", why, err)
				return
			}
			measure("stop", "%v (%s)", fx.Cluster.Timings.Stop.Round(time.Millisecond), why)
		})
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		stopCluster("signal " + s.String())
		os.Exit(2)
	}()
	if t := flag.Lookup("test.timeout"); t != nil {
		// m.Run starts the -timeout alarm: stop the cluster a little before it rings.
		if d, ok := t.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			timer := time.AfterFunc(d-min(d/10, 90*time.Second), func() { stopCluster("test timeout near") })
			defer timer.Stop()
		}
	}

	code := m.Run()
	measureRSS("at the end")
	stopCluster("tests done")
	if code == 0 {
		os.RemoveAll(fx.Root)
	} else {
		fmt.Fprintf(os.Stderr, "cluster files kept for inspection in %s\n", fx.Root)
	}
	printMeasurements()
	return code
}

func measureRSS(when string) {
	var parts []string
	for _, n := range fx.Nodes {
		rss, err := n.Node.RSS()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d MiB", n.Name, rss>>20))
	}
	measure("rss", "%s: %s", when, strings.Join(parts, ", "))
}

var (
	measurementsMu sync.Mutex
	measurements   []string
)

// measure records a figure for the summary printed at the end and for
// .cache/measurements.txt (so the README's numbers can be traced to a run).
func measure(name, format string, args ...any) {
	line := fmt.Sprintf("cluster_%s %s", name, fmt.Sprintf(format, args...))
	measurementsMu.Lock()
	measurements = append(measurements, line)
	measurementsMu.Unlock()
	fmt.Fprintln(os.Stderr, "MEASURED", line)
	p := filepath.Join(repoRoot(), ".cache", "measurements.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

func printMeasurements() {
	measurementsMu.Lock()
	defer measurementsMu.Unlock()
	fmt.Fprintln(os.Stderr, "measurements:")
	for _, m := range measurements {
		fmt.Fprintln(os.Stderr, "  "+m)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

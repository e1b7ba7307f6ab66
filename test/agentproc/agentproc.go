// Package agentproc runs the real cassandra-tls-agent binary as a sidecar
// process for end-to-end tests: start it with a config, wait for /readyz,
// read its metrics, stop it with SIGINT and show its log when a test fails.
package agentproc

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sidecar is a running `cassandra-tls-agent sidecar`.
type Sidecar struct {
	Name   string
	Addr   string // host:port of /metrics, /healthz, /readyz
	cmd    *exec.Cmd
	exited chan struct{}
	log    *buffer
}

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *buffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// FreeAddr returns a loopback address with a port the kernel just gave out.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start writes config (which must listen on addr, see FreeAddr) and runs
// the sidecar with it; env entries are added to the environment. It does
// not wait for readiness. The process is stopped when the test ends, and
// its log printed if the test failed.
func Start(t testing.TB, bin, name, addr, config string, env ...string) *Sidecar {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sidecar{Name: name, Addr: addr, log: &buffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "sidecar", "--config", p)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("%s sidecar log:\n%s", name, s.log.String())
		}
	})
	return s
}

// Stop sends SIGINT and waits for the process to exit (killing it after 10 s).
func (s *Sidecar) Stop(t testing.TB) {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("%s sidecar did not stop on SIGINT", s.Name)
	}
}

// Pid is the sidecar's process id.
func (s *Sidecar) Pid() int { return s.cmd.Process.Pid }

// Log is what the sidecar has logged so far.
func (s *Sidecar) Log() string { return s.log.String() }

// Get fetches a path of the sidecar's HTTP listener.
func (s *Sidecar) Get(path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.Addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WaitReady polls /readyz until it answers 200 (ready) or 503 (not ready),
// failing the test after within or when the process exits.
func (s *Sidecar) WaitReady(t testing.TB, ready bool, within time.Duration) {
	t.Helper()
	want := http.StatusOK
	if !ready {
		want = http.StatusServiceUnavailable
	}
	deadline := time.Now().Add(within)
	for {
		code, body := s.Get("/readyz")
		if code == want {
			return
		}
		select {
		case <-s.exited:
			t.Fatalf("the %s sidecar exited (code %d):\n%s", s.Name, s.cmd.ProcessState.ExitCode(), s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s /readyz = %d %q, want %d", s.Name, code, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Metric returns the value of the first series of name whose labels contain
// the substring labels, or -1 when there is none.
func (s *Sidecar) Metric(name, labels string) float64 {
	if vs := s.series(name, labels); len(vs) > 0 {
		return vs[0]
	}
	return -1
}

// Sum adds up every series of name whose labels contain the substring
// labels (a counter over all its reasons, say), or -1 when there is none.
func (s *Sidecar) Sum(name, labels string) float64 {
	vs := s.series(name, labels)
	if len(vs) == 0 {
		return -1
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	return sum
}

// series scrapes /metrics for the values of name's series whose labels
// contain the substring labels, in the order exported.
func (s *Sidecar) series(name, labels string) []float64 {
	_, body := s.Get("/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{([^}]*)\})? (\S+)$`)
	var out []float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if strings.Contains(m[1], labels) {
			v, _ := strconv.ParseFloat(m[2], 64)
			out = append(out, v)
		}
	}
	return out
}

// String names the sidecar for messages.
func (s *Sidecar) String() string { return fmt.Sprintf("%s sidecar (%s)", s.Name, s.Addr) }

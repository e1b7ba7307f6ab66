package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is a long-running process under measurement.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the tail only
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(name string, argv ...string) (*proc, error) {
	p := &proc{name: name, log: &syncBuf{}}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) alive() bool {
	return p.cmd.ProcessState == nil && p.cmd.Process.Signal(syscallZero) == nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgent runs `cassandra-tls-agent sidecar` building one JKS pair from
// src into out, with the given debounce and resync and no reload action.
func startAgent(agent, dir, src, out, debounce, resync string) (*proc, error) {
	// Every watched directory's parent is ours too (the agent watches the
	// password file's directory and its parent): no event from the rest of
	// the machine's /tmp reaches it.
	pw := filepath.Join(dir, "secrets", "password")
	os.MkdirAll(filepath.Dir(pw), 0o700)
	os.WriteFile(pw, []byte(password), 0o600)
	cfg := fmt.Sprintf(`stores:
  - name: node
    source: %s
    passwordFile: %s
    keystore:   {path: %s, type: jks, alias: cassandra}
    truststore: {path: %s, type: jks}
watch: {debounce: %s, resync: %s}
http: {listen: "%s"}
log: {format: text, level: warn}
`, src, pw, filepath.Join(out, "keystore.jks"), filepath.Join(out, "truststore.jks"), debounce, resync, freeAddr())
	p := filepath.Join(dir, "sidecar.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return start("cassandra-tls-agent sidecar", agent, "sidecar", "--config", p)
}

// startReloader runs prometheus-config-reloader watching src and calling
// hook on every change, delay the wait before it calls (its default 1s).
func startReloader(bin, src, hook, delay string) (*proc, error) {
	return start("prometheus-config-reloader", bin, "--watched-dir="+src, "--reload-url="+hook,
		"--delay-interval="+delay, "--listen-address="+freeAddr(), "--log-level=warn")
}

// webhook counts reload calls and timestamps each.
type webhook struct {
	url string
	ch  chan time.Time
}

func newWebhook() (*webhook, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	w := &webhook{url: "http://" + ln.Addr().String() + "/-/reload", ch: make(chan time.Time, 1024)}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.ch <- time.Now()
	})}
	go srv.Serve(ln)
	return w, func() { srv.Close() }, nil
}

// procStat is what /proc says of a process and all its threads.
type procStat struct {
	rssKiB   int64
	cpuNanos int64 // time on a CPU, every thread (schedstat: nanoseconds, not 10 ms ticks)
	switches int64 // voluntary + nonvoluntary context switches of every thread
	threads  int
}

func readProc(pid int) (procStat, error) {
	var s procStat
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rssKiB = statusField(string(st2), "VmRSS:")
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		tb, err := os.ReadFile(t)
		if err != nil {
			continue // the thread just exited
		}
		s.switches += statusField(string(tb), "voluntary_ctxt_switches:") + statusField(string(tb), "nonvoluntary_ctxt_switches:")
		s.threads++
		// schedstat: on-CPU nanoseconds, wait nanoseconds, timeslices.
		if sb, err := os.ReadFile(filepath.Join(filepath.Dir(t), "schedstat")); err == nil {
			if f := strings.Fields(string(sb)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				s.cpuNanos += ns
			}
		}
	}
	return s, nil
}

func statusField(status, key string) int64 {
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, key) {
			v, _ := strconv.ParseInt(strings.Fields(strings.TrimPrefix(l, key))[0], 10, 64)
			return v
		}
	}
	return 0
}

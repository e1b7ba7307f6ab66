package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
)

// jolokiaFake answers like a Jolokia agent: HTTP 200 with the real status in
// the body — including for failures, which is what the action must catch.
func jolokiaFake(t *testing.T, status int, calls *atomic.Int32) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"mbean":"org.apache.cassandra.net:type=MessagingService"`) ||
			!strings.Contains(string(body), `"operation":"reloadSslCertificates"`) {
			t.Errorf("unexpected request %s", body)
		}
		calls.Add(1)
		w.Write([]byte(`{"status":` + strconv.Itoa(status) + `,"error":"javax.management.InstanceNotFoundException"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jolokia/"
}

func TestJolokiaChecksBodyStatus(t *testing.T) {
	var calls atomic.Int32
	if err := (&Jolokia{URL: jolokiaFake(t, 200, &calls)}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := (&Jolokia{URL: jolokiaFake(t, 404, &calls)}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Fatalf("a 404 in the body must fail: %v", err)
	}
}

func TestRunnerRetriesAndCounts(t *testing.T) {
	var calls atomic.Int32
	m := metrics.New("test", "go")
	r := &Runner{Metrics: m, Log: slog.New(slog.DiscardHandler), Backoff: time.Millisecond, Steps: []Step{
		{Action: &Jolokia{URL: jolokiaFake(t, 404, &calls)}, Retries: 2},
		{Action: &Exec{Command: []string{"true"}}},
		{Action: &Exec{Command: []string{"sleep", "5"}}, Timeout: 50 * time.Millisecond},
		{Action: &Exec{Command: []string{"false"}}, Stores: []string{"other"}},
		{Action: panicky{}},
	}}
	start := time.Now()
	err := r.Run(context.Background(), "node")
	if err == nil || !strings.Contains(err.Error(), "jolokia") || !strings.Contains(err.Error(), "sleep") || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("the timeout did not stop sleep 5")
	}
	if calls.Load() != 3 {
		t.Errorf("jolokia called %d times, want 1 + 2 retries", calls.Load())
	}
	if got := m.Reloads.WithLabelValues("exec", "success").Value(); got != 1 {
		t.Errorf("exec successes = %v, want 1 (the store-filtered step must not run)", got)
	}
	if got := m.Reloads.WithLabelValues("jolokia", "error").Value(); got != 1 {
		t.Errorf("jolokia errors = %v", got)
	}
}

type panicky struct{}

func (panicky) Name() string                  { return "panicky" }
func (panicky) Run(ctx context.Context) error { panic("boom") }

func TestSignalByPIDFileAndName(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pidFile := filepath.Join(t.TempDir(), "pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	if err := (&Signal{Signal: syscall.SIGTERM, PIDFile: pidFile}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("process not signalled")
	}
	if err := (&Signal{Signal: syscall.SIGHUP, Process: "no-such-process-xyz"}).Run(context.Background()); err == nil {
		t.Fatal("signal to a missing process succeeded")
	}
	if _, err := ParseSignal("sighup"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSignal("SIGFOO"); err == nil {
		t.Fatal("unknown signal accepted")
	}
}

func TestWebhookStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	if err := (&Webhook{URL: srv.URL, ExpectedStatus: 202}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := (&Webhook{URL: srv.URL}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "status 202, want 200") {
		t.Fatalf("err = %v", err)
	}
}

// forkingCommand records its own pid and those of the two children it
// forks in pidFile, then waits for them: a process tree, as `nodetool` or a
// wrapper script can be. With ignoreTerm every process ignores SIGTERM.
func forkingCommand(pidFile string, ignoreTerm bool) []string {
	script := `echo $$ >> "$0"; sleep 100 & echo $! >> "$0"; sleep 100 & echo $! >> "$0"; wait`
	if ignoreTerm {
		script = `trap "" TERM; ` + script
	}
	return []string{"sh", "-c", script, pidFile}
}

// waitPIDs polls pidFile until it lists n pids.
func waitPIDs(t *testing.T, pidFile string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(pidFile)
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command wrote %d of %d pids", len(pids), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a file, with a deadline
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// assertAllEnd fails unless every pid is gone within d. Survivors are
// killed one by one (never by group: before the fix they share the test's).
func assertAllEnd(t *testing.T, pids []int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes %v of the command's tree %v survived", left, pids)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc, with a deadline
	}
}

// TestExecTimeoutEndsTheProcessTree: a command that forks, timed out after
// 200 ms, returns within about a second and leaves no process behind —
// also when its processes ignore SIGTERM (SIGKILL after the grace).
func TestExecTimeoutEndsTheProcessTree(t *testing.T) {
	for _, ignoreTerm := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore SIGTERM %v", ignoreTerm), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			e := &Exec{Command: forkingCommand(pidFile, ignoreTerm), KillGrace: 300 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				assertAllEnd(t, waitPIDs(t, pidFile, 3), 0)
				t.Fatal("Run did not return 5 s after its 200 ms timeout")
			}
			took := time.Since(start)
			if took > 1500*time.Millisecond {
				t.Errorf("Run returned after %v, want about the timeout plus the grace", took)
			}
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "process group") {
				t.Errorf("err = %v, want a timeout that says the process group was ended", err)
			}
			assertAllEnd(t, waitPIDs(t, pidFile, 3), 2*time.Second)
			t.Logf("returned after %v", took.Round(time.Millisecond))
		})
	}
}

// TestExecCancelEndsTheProcessTree: the agent stopping (its context
// cancelled) ends a running reload command's tree at once.
func TestExecCancelEndsTheProcessTree(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	e := &Exec{Command: forkingCommand(pidFile, false)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	pids := waitPIDs(t, pidFile, 3)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		assertAllEnd(t, pids, 0)
		t.Fatal("Run did not return after its context was cancelled")
	}
	assertAllEnd(t, pids, 2*time.Second)
}

// TestExecLeftoverChildrenDoNotHoldTheAction: a command that exits but
// leaves a child holding its output pipe does not keep the action waiting,
// and the child is ended.
func TestExecLeftoverChildrenDoNotHoldTheAction(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	e := &Exec{Command: []string{"sh", "-c", `echo $$ >> "$0"; sleep 100 & echo $! >> "$0"`, pidFile}, KillGrace: 300 * time.Millisecond}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("err = %v, want success (the command exited 0)", err)
		}
	case <-time.After(5 * time.Second):
		assertAllEnd(t, waitPIDs(t, pidFile, 2), 0)
		t.Fatal("Run waited for a leftover child")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v", took)
	}
	assertAllEnd(t, waitPIDs(t, pidFile, 2), 2*time.Second)
}

package reload

import (
	"context"
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
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("exec", "success")); got != 1 {
		t.Errorf("exec successes = %v, want 1 (the store-filtered step must not run)", got)
	}
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("jolokia", "error")); got != 1 {
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

package reload

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
)

// hangingServer accepts requests and answers none until the test ends.
func hangingServer(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL + "/"
}

// resettingServer resets every connection once the request has arrived.
func resettingServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(buf)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String() + "/"
}

func answering(t *testing.T, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jolokia/"
}

// TestReloadFaults: each failure of a Jolokia agent or a webhook is bounded
// by the step's timeout (per try, retries included), counted once in
// reloads_total{result="error"} and reload_duration_seconds, and reported
// with an error that says what happened.
func TestReloadFaults(t *testing.T) {
	const timeout = 200 * time.Millisecond
	const retries = 1
	faults := []struct {
		name   string
		action func(t *testing.T) Action
		cause  string
	}{
		{"jolokia HTTP 500", func(t *testing.T) Action {
			return &Jolokia{URL: answering(t, 500, "<html>Internal Server Error</html>")}
		}, "HTTP 500: <html>Internal Server Error</html>"},
		{"jolokia hangs", func(t *testing.T) Action { return &Jolokia{URL: hangingServer(t)} }, "context deadline exceeded"},
		{"jolokia HTTP 200 with an error status", func(t *testing.T) Action {
			return &Jolokia{URL: answering(t, 200, `{"status":404,"error_type":"javax.management.InstanceNotFoundException","error":"javax.management.InstanceNotFoundException : org.apache.cassandra.net:type=MessagingService"}`)}
		}, "Jolokia status 404: javax.management.InstanceNotFoundException"},
		{"jolokia HTTP 200 with garbage", func(t *testing.T) Action {
			return &Jolokia{URL: answering(t, 200, "\x00\x1b[31mgarbage\nlevel=ERROR msg=forged\xff")}
		}, "unreadable Jolokia response"},
		{"jolokia resets", func(t *testing.T) Action { return &Jolokia{URL: resettingServer(t)} }, "connection reset"},
		{"webhook hangs", func(t *testing.T) Action { return &Webhook{URL: hangingServer(t)} }, "context deadline exceeded"},
		{"webhook resets", func(t *testing.T) Action { return &Webhook{URL: resettingServer(t)} }, "connection reset"},
		{"webhook wrong status", func(t *testing.T) Action { return &Webhook{URL: answering(t, 503, "busy")} }, "status 503, want 200: busy"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			a := f.action(t)
			m := metrics.New("test", "go")
			r := &Runner{Metrics: m, Log: slog.New(slog.DiscardHandler), Backoff: 10 * time.Millisecond,
				Steps: []Step{{Action: a, Timeout: timeout, Retries: retries}}}
			start := time.Now()
			err := r.Run(context.Background(), "node")
			took := time.Since(start)
			if err == nil {
				t.Fatal("the reload succeeded")
			}
			// Two tries of at most the timeout, one backoff (≤ 15 ms), slack for a loaded machine.
			if bound := (retries+1)*timeout + time.Second; took > bound {
				t.Errorf("took %v, want at most %v", took, bound)
			}
			if !strings.Contains(err.Error(), f.cause) || !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q, want the endpoint and %q", err, f.cause)
			}
			if i := strings.IndexFunc(err.Error(), unicode.IsControl); i >= 0 || !utf8.ValidString(err.Error()) {
				t.Errorf("the error carries control characters or invalid UTF-8 from the server: %q", err)
			}
			if got := m.Reloads.WithLabelValues(a.Name(), "error").Value(); got != 1 {
				t.Errorf("reloads_total{%s,error} = %v, want 1", a.Name(), got)
			}
			if got := m.ReloadDuration.Len(); got != 1 {
				t.Errorf("reload_duration_seconds series = %d, want 1", got)
			}
			t.Logf("%v (%v)", err, took.Round(time.Millisecond))
		})
	}
}

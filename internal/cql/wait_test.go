package cql

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProber answers per host: an error until the host's ready attempt.
type fakeProber struct {
	mu      sync.Mutex
	readyAt map[string]int // host → attempt at which it answers (0: never)
	calls   map[string]int
	err     error
}

func (f *fakeProber) Probe(ctx context.Context, host string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[host]++
	if n := f.readyAt[host]; n > 0 && f.calls[host] >= n {
		return "5.0.6", nil
	}
	return "", f.err
}

func TestWaitPolicies(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:9042: connect: connection refused")
	tests := []struct {
		policy  Policy
		readyAt map[string]int
		ok      bool
		rounds  int
	}{
		{Any, map[string]int{"a": 3, "b": 0, "c": 0}, true, 3},
		{All, map[string]int{"a": 1, "b": 2, "c": 4}, true, 4},
		{Quorum, map[string]int{"a": 2, "b": 0, "c": 5}, true, 5},
		{Quorum, map[string]int{"a": 2, "b": 0, "c": 0}, false, 0},
		{All, map[string]int{"a": 1, "b": 1, "c": 0}, false, 0},
	}
	for _, tc := range tests {
		fp := &fakeProber{readyAt: tc.readyAt, calls: map[string]int{}, err: refused}
		var slept time.Duration
		now := time.Unix(0, 0)
		o := WaitOptions{
			Hosts: []string{"a", "b", "c"}, Require: tc.policy, Timeout: time.Hour,
			Now: func() time.Time { return now },
			Sleep: func(ctx context.Context, d time.Duration) error {
				if slept += d; slept > time.Minute {
					return context.DeadlineExceeded
				}
				now = now.Add(d)
				return nil
			},
		}
		r, err := Wait(context.Background(), fp, o)
		if tc.ok != (err == nil) {
			t.Fatalf("%s %v: err = %v", tc.policy, tc.readyAt, err)
		}
		if tc.ok && r.Attempts != tc.rounds {
			t.Errorf("%s %v: ready after %d rounds, want %d", tc.policy, tc.readyAt, r.Attempts, tc.rounds)
		}
		if tc.ok && fp.calls["a"] > tc.readyAt["a"] {
			t.Errorf("%s: a ready host was probed again (%d calls)", tc.policy, fp.calls["a"])
		}
		if !tc.ok {
			var nr *NotReadyError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), "connection refused (nothing listening yet)") {
				t.Errorf("%s: error lacks the cause: %v", tc.policy, err)
			}
		}
	}
}

func TestBackoffIsCappedLow(t *testing.T) {
	fp := &fakeProber{readyAt: map[string]int{"a": 30}, calls: map[string]int{}, err: errors.New("i/o timeout")}
	var pauses []time.Duration
	_, err := Wait(context.Background(), fp, WaitOptions{Hosts: []string{"a"},
		Sleep: func(ctx context.Context, d time.Duration) error { pauses = append(pauses, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pauses {
		if p < 50*time.Millisecond || p >= 750*time.Millisecond {
			t.Errorf("pause %v outside [50ms, 750ms)", p)
		}
	}
}

func TestRefusedKeepsTheInitialPace(t *testing.T) {
	fp := &fakeProber{readyAt: map[string]int{"a": 12}, calls: map[string]int{}, err: errors.New("dial tcp: connect: connection refused")}
	var pauses []time.Duration
	_, err := Wait(context.Background(), fp, WaitOptions{Hosts: []string{"a"}, InitialBackoff: 100 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error { pauses = append(pauses, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pauses {
		if p >= 150*time.Millisecond {
			t.Errorf("pause %v after a refused connection, want < 150ms (no backoff growth)", p)
		}
	}
}

// deadlineProber fails with err until the wait's deadline is near, then
// blocks on its last attempt until the context ends — a slow node whose
// last probe the deadline cuts.
type deadlineProber struct{ err error }

func (p deadlineProber) Probe(ctx context.Context, host string) (string, error) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 150*time.Millisecond {
		<-ctx.Done()
		return "", &ProbeError{Cause: "timeout", Err: ctx.Err()}
	}
	return "", p.err
}

// TestWaitKeepsTheHostsCause: the final error names the cause the host gave
// (authentication failed), not the timeout of the attempt the deadline cut.
func TestWaitKeepsTheHostsCause(t *testing.T) {
	auth := errors.New("gocql: unable to create session: Provided username cassandra and/or password are incorrect")
	_, err := Wait(context.Background(), deadlineProber{auth}, WaitOptions{Hosts: []string{"h:9042"}, Timeout: 400 * time.Millisecond,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("err = %v, want the host's cause", err)
	}
}

func TestClassify(t *testing.T) {
	for msg, want := range map[string]string{
		"gocql: unable to create session: unable to connect to initial hosts: dial tcp 127.0.0.1:9042: connect: connection refused": "connection refused (nothing listening yet)",
		"tls: failed to verify certificate: x509: certificate signed by unknown authority":                                          "server certificate not trusted (unknown CA)",
		"remote error: tls: certificate required":                                                                                   "TLS rejected by the server (client certificate missing or not trusted)",
		"Provided username and/or password are incorrect":                                                                           "authentication failed (username or password rejected)",
		"x509: certificate is valid for node1, localhost, not node2":                                                                "server certificate does not match the server name",
		"read tcp: i/o timeout": "timeout",
		"something else":        "error",
	} {
		if got := Classify(errors.New(msg)); got != want {
			t.Errorf("Classify(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestSummaryHidesPasswords(t *testing.T) {
	s := Summary("CREATE ROLE reaper WITH PASSWORD = 'hunter2' AND LOGIN = true")
	if strings.Contains(s, "hunter2") || !strings.HasPrefix(s, "CREATE ROLE reaper") {
		t.Errorf("Summary = %q", s)
	}
}

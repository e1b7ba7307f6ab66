package cql

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

func TestServerNameFollowsTheDialledName(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	tests := []struct {
		cfg   *tls.Config
		hosts []string
		want  string
	}{
		{base, []string{"node1.cassandra.test:9042"}, "node1.cassandra.test"},
		{base, []string{"node1.cassandra.test"}, "node1.cassandra.test"},
		{base, []string{"127.0.0.1:9042"}, ""},
		{base, []string{"[::1]:9042"}, ""},
		{base, []string{"a:9042", "b:9042"}, ""}, // one config for several hosts: left alone
		{&tls.Config{ServerName: "explicit.example"}, []string{"node1.cassandra.test:9042"}, "explicit.example"},
	}
	for _, tc := range tests {
		cl := (&Client{TLS: tc.cfg}).cluster(tc.hosts...)
		if got := cl.SslOpts.Config.ServerName; got != tc.want {
			t.Errorf("hosts %v, ServerName %q: got %q, want %q", tc.hosts, tc.cfg.ServerName, got, tc.want)
		}
	}
	if base.ServerName != "" {
		t.Error("the shared config was modified")
	}
}

// causeProber fails with a TLS cause until the context ends, then with the
// context's error, the way a probe cut short by the wait's deadline does.
type causeProber struct{}

func (causeProber) Probe(ctx context.Context, host string) (string, error) {
	select {
	case <-ctx.Done():
		return "", &ProbeError{Cause: "timeout", Err: ctx.Err()}
	case <-time.After(20 * time.Millisecond):
		return "", &ProbeError{Cause: "server certificate does not match the server name", Err: errors.New("x509: certificate is valid for *.example.net, not 10.0.0.5")}
	}
}

func TestDeadlineKeepsTheLastRealCause(t *testing.T) {
	_, err := Wait(context.Background(), causeProber{}, WaitOptions{Hosts: []string{"h:1"}, Timeout: 250 * time.Millisecond,
		InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	var nr *NotReadyError
	if !errors.As(err, &nr) || Classify(nr.Causes["h:1"]) != "server certificate does not match the server name" {
		t.Errorf("the final cause is %v, want the certificate name mismatch seen before the deadline", err)
	}
}

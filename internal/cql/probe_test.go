package cql

import (
	"crypto/tls"
	"testing"
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

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func runWith(env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errb, Now: time.Now,
		Getenv:  func(k string) string { return env[k] },
		Environ: func() []string { return nil }}
	code := Run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func TestExitCodesAndUsage(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, ExitUsage, "Usage: cassandra-tls-agent COMMAND"},
		{"help", nil, []string{"--help"}, ExitOK, "sidecar"},
		{"unknown command", nil, []string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{"command help", nil, []string{"stores", "--help"}, ExitOK, "[CASSANDRA_TLS_AGENT_PASSWORD_FILE]"},
		{"missing required flag", nil, []string{"stores"}, ExitUsage, "--source (a directory) or --credential-bundle (one PEM file) is required"},
		{"two sources", nil, []string{"stores", "--source", "d", "--credential-bundle", "b.pem"}, ExitUsage, "set --source or --credential-bundle, not both"},
		{"bundle without CAs", nil, []string{"stores", "--credential-bundle", "b.pem", "--pem-dir", "p"}, ExitUsage, "--credential-bundle needs --trust-bundle: the bundle holds no CA"},
		{"bundle from env", map[string]string{"CASSANDRA_TLS_AGENT_CREDENTIAL_BUNDLE": "/nonexistent/b.pem", "CASSANDRA_TLS_AGENT_TRUST_BUNDLE": "/t.pem", "CASSANDRA_TLS_AGENT_PEM_DIR": "/tmp/x"}, []string{"stores"}, ExitFailed, "/nonexistent/b.pem: file does not exist"},
		{"unknown flag", nil, []string{"wait", "--nope"}, ExitUsage, "flag provided but not defined"},
		{"bad env value", map[string]string{"CASSANDRA_TLS_AGENT_MODE": "999"}, []string{"stores", "--source", "x"}, ExitUsage, "CASSANDRA_TLS_AGENT_MODE"},
		{"flag from env", map[string]string{"CASSANDRA_TLS_AGENT_SOURCE": "/nonexistent", "CASSANDRA_TLS_AGENT_PEM_DIR": "/tmp/x"}, []string{"stores"}, ExitFailed, "/nonexistent/tls.crt: file does not exist"},
		{"password never from a flag", nil, []string{"stores", "--source", "x", "--keystore", "k"}, ExitUsage, "no password"},
		{"config required", nil, []string{"init"}, ExitUsage, "--config is required"},
		{"bad policy", nil, []string{"wait", "--hosts", "h:1", "--require", "most"}, ExitUsage, `readiness policy "most"`},
		{"version", nil, []string{"version"}, ExitOK, "cassandra-tls-agent dev"},
		{"render format", nil, []string{"render", "--template", "t", "--out", "o", "--format", "json"}, ExitUsage, `format "json": want yaml, properties, ini or text`},
	}
	for _, tc := range tests {
		code, out, errs := runWith(tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%s: exit %d (want %d), output lacks %q:\n%s%s", tc.name, code, tc.code, tc.want, out, errs)
		}
	}
}

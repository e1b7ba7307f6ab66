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
		{"missing required flag", nil, []string{"stores"}, ExitUsage, "--source is required"},
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

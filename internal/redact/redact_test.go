package redact

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8778/jolokia/", "http://127.0.0.1:8778/jolokia/"},
		{"https://user:s3cret@hooks.example.com/reload", "https://REDACTED@hooks.example.com/reload"},
		{"https://user@hooks.example.com/reload", "https://REDACTED@hooks.example.com/reload"},
		{"https://h.example.com/r?token=abc&token=def&x=1", "https://h.example.com/r?token=REDACTED&token=REDACTED&x=REDACTED"},
		{"https://h.example.com/r#frag-secret", "https://h.example.com/r"},
		{"http://u:p@h:bad-port/?token=t", "(unparsable URL)"},
		{"mailto:someone-secret", "mailto:REDACTED"},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestErrorKeepsTheCause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://user:pw-secret@127.0.0.1:1/?token=tok-secret", nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("a cancelled request succeeded")
	}
	red := Error(err)
	if s := red.Error(); strings.Contains(s, "tok-secret") || strings.Contains(s, "user") || !strings.Contains(s, "127.0.0.1:1") {
		t.Errorf("redacted error %q", s)
	}
	if !errors.Is(red, context.Canceled) {
		t.Errorf("the cause is lost: %v", red)
	}
	if _, err := http.NewRequest(http.MethodGet, "http://u:pw-secret@h:bad/", nil); err == nil || strings.Contains(Error(err).Error(), "pw-secret") {
		t.Errorf("a parse error repeats the URL: %v", Error(err))
	}
}

func TestSecrets(t *testing.T) {
	raw := "https://hookuser:hunter2@h/r?token=tok-1"
	got := Secrets("echo: https://hookuser:hunter2@h/r?token=tok-1 Basic xyz", URLSecrets(raw)...)
	for _, s := range []string{"hookuser", "hunter2", "tok-1"} {
		if strings.Contains(got, s) {
			t.Errorf("%q still in %q", s, got)
		}
	}
}

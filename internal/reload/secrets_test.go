package reload

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The secrets a reload URL may carry; none may reach an error or a log.
const (
	hookUser  = "hookuser-9f3a"
	hookPass  = "hunter2-pw-77c1"
	hookToken = "tok-SECRET-4b2e"
)

// closedAddr is an address nothing listens on (connection refused).
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// echoServer answers status with a body that quotes the request — its URL,
// query and Authorization header — as careless servers do.
func echoServer(t *testing.T, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		u, p, _ := r.BasicAuth()
		w.Write([]byte("cannot handle " + r.URL.String() + " user=" + u + " pass=" + p + " auth=" + r.Header.Get("Authorization")))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestReloadURLSecretsNeverReachErrorsOrLogs: webhook and Jolokia URLs with
// user:password@ and ?token=… that fail (refused, HTTP 500 echoing the
// request, a hang past the timeout, a URL that does not parse): the
// runner's error and its JSON log name the host but hold no secret.
func TestReloadURLSecretsNeverReachErrorsOrLogs(t *testing.T) {
	hang := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); hung.Close() })
	hosts := map[string]string{
		"refused": closedAddr(t),
		"500":     echoServer(t, http.StatusInternalServerError),
		"hang":    strings.TrimPrefix(hung.URL, "http://"),
	}
	for name, host := range hosts {
		raw := "http://" + hookUser + ":" + hookPass + "@" + host + "/reload?token=" + hookToken + "&x=1"
		for _, action := range []Action{&Webhook{URL: raw}, &Jolokia{URL: raw}} {
			t.Run(action.Name()+" "+name, func(t *testing.T) {
				var logs bytes.Buffer
				r := &Runner{Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
					Backoff: time.Millisecond, Steps: []Step{{Action: action, Retries: 1, Timeout: 300 * time.Millisecond}}}
				err := r.Run(context.Background(), "node")
				if err == nil {
					t.Fatal("the reload succeeded")
				}
				encoded := base64.StdEncoding.EncodeToString([]byte(hookUser + ":" + hookPass)) // the echoed Authorization header
				for _, secret := range []string{hookUser, hookPass, hookToken, encoded} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error holds %q: %v", secret, err)
					}
					if strings.Contains(logs.String(), secret) {
						t.Errorf("the log holds %q:\n%s", secret, logs.String())
					}
				}
				if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "REDACTED") {
					t.Errorf("the error should name the host, with the secrets redacted: %v", err)
				}
				t.Log(err)
			})
		}
	}
	t.Run("unparsable URL", func(t *testing.T) {
		raw := "http://" + hookUser + ":" + hookPass + "@host:bad-port/reload?token=" + hookToken
		for _, action := range []Action{&Webhook{URL: raw}, &Jolokia{URL: raw}} {
			err := action.Run(context.Background())
			if err == nil || strings.Contains(err.Error(), hookPass) || strings.Contains(err.Error(), hookToken) || strings.Contains(err.Error(), hookUser) {
				t.Errorf("%s: %v", action.Name(), err)
			}
		}
	})
}

// authServer records the Authorization header of each request.
type authServer struct {
	mu   sync.Mutex
	seen []string
	url  string
}

func newAuthServer(t *testing.T, body string) *authServer {
	s := &authServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/"
	return s
}

func (s *authServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return ""
	}
	return s.seen[len(s.seen)-1]
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// TestCredentialFilesAreReadAtEveryCall: mounted Secrets rotate, so the
// Jolokia password file and the webhook's password and bearer token files
// are read at each call: after the file changes, the next call sends the
// new value.
func TestCredentialFilesAreReadAtEveryCall(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	write := func(v string) {
		if err := os.WriteFile(file, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jolokia := newAuthServer(t, `{"status":200}`)
	hook := newAuthServer(t, "ok")
	cases := []struct {
		name   string
		action Action
		srv    *authServer
		want   func(v string) string
	}{
		{"jolokia basic", &Jolokia{URL: jolokia.url, Username: "jmx", PasswordFile: file}, jolokia, func(v string) string { return basic("jmx", v) }},
		{"http basic", &Webhook{URL: hook.url, Username: "hook", PasswordFile: file}, hook, func(v string) string { return basic("hook", v) }},
		{"http bearer", &Webhook{URL: hook.url, BearerTokenFile: file}, hook, func(v string) string { return "Bearer " + v }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []string{"first-secret", "rotated-secret"} {
				write(v)
				if err := c.action.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := c.srv.last(); got != c.want(v) {
					t.Errorf("Authorization %q, want %q", got, c.want(v))
				}
			}
			// An unreadable file fails the call, naming the file.
			os.Remove(file)
			if err := c.action.Run(context.Background()); err == nil || !strings.Contains(err.Error(), file) {
				t.Errorf("missing file: %v", err)
			}
		})
	}
}

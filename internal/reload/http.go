package reload

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/redact"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

// Credentials authenticate an HTTP action. The files are read at every
// call: they are mounted Secrets, which the kubelet updates in place.
type Credentials struct {
	// Username with PasswordFile: basic authentication.
	Username     string
	PasswordFile string
	// BearerTokenFile: "Authorization: Bearer <token>".
	BearerTokenFile string
}

// httpRequest is one call of an HTTP action. Its errors name the method and
// the URL with every secret redacted — the URL's user:password@ and query
// values, the credentials — and scrub them from any text the server sent
// back, which may quote the request.
type httpRequest struct {
	method, url string
	body        []byte
	contentType string
	creds       Credentials
	client      *http.Client
	maxBody     int64
}

// httpResponse is what came back: the status and the start of the body.
type httpResponse struct {
	status int
	body   []byte
}

// do sends the request. The returned snippet turns text from the server
// into the start of it, without the request's secrets, for an error.
func (r httpRequest) do(ctx context.Context) (resp *httpResponse, snippet func([]byte) string, err error) {
	where := r.describe()
	secrets := redact.URLSecrets(r.url)
	// Scrub, then truncate: a cut must not leave half a secret behind.
	scrub := func(b []byte) string { return trunc([]byte(redact.Secrets(string(b), secrets...))) }
	// A backstop: whatever an error below quotes, no secret of this
	// request survives in its message.
	defer func() { err = redact.Scrub(err, secrets...) }()
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return nil, scrub, fmt.Errorf("%s: %w", where, redact.Cause(err))
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	switch c := r.creds; {
	case c.BearerTokenFile != "":
		token, err := secret.ReadFile(c.BearerTokenFile)
		if err != nil {
			return nil, scrub, fmt.Errorf("%s: bearer token: %w", where, err)
		}
		req.Header.Set("Authorization", "Bearer "+string(token))
		secrets = append(secrets, string(token))
	case c.PasswordFile != "":
		pw, err := secret.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, scrub, fmt.Errorf("%s: password: %w", where, err)
		}
		req.SetBasicAuth(c.Username, string(pw))
		secrets = append(secrets, string(pw))
	case req.URL.User != nil:
		// What http.Client does with user:password@, done here so that the
		// header's value is known and scrubbed too.
		pw, _ := req.URL.User.Password()
		req.SetBasicAuth(req.URL.User.Username(), pw)
	}
	if auth := req.Header.Get("Authorization"); auth != "" {
		// The header, and its base64 part, which a server may echo.
		_, cred, _ := bytes.Cut([]byte(auth), []byte(" "))
		secrets = append(secrets, auth, string(cred))
		if dec, err := base64.StdEncoding.DecodeString(string(cred)); err == nil {
			secrets = append(secrets, string(dec))
		}
	}
	c := r.client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, scrub, fmt.Errorf("%s: %w", where, redact.Cause(err))
	}
	defer res.Body.Close()
	limit := r.maxBody
	if limit <= 0 {
		limit = 4096
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return nil, scrub, fmt.Errorf("%s: HTTP %d, reading the response: %w", where, res.StatusCode, redact.Cause(err))
	}
	return &httpResponse{status: res.StatusCode, body: data}, scrub, nil
}

// describe is how errors name the request.
func (r httpRequest) describe() string { return r.method + " " + redact.URL(r.url) }

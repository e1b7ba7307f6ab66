// Package redact keeps secrets that travel inside URLs — user:password@,
// ?token=… — and secrets a server echoes back out of logs and error
// messages.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// Mark replaces every redacted value.
const Mark = "REDACTED"

// URL returns raw with its userinfo replaced by REDACTED, every query value
// replaced by REDACTED (the keys stay, to tell the URLs apart) and the
// fragment dropped. A URL that does not parse is never echoed.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(Mark)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i := range vs {
				vs[i] = Mark
			}
			q[k] = vs
		}
		// Encode sorts the keys; the order of a redacted query does not matter.
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	// Opaque URLs ("mailto:…", "host:port" parsed as scheme:opaque) may
	// hold anything.
	if u.Opaque != "" {
		u.Opaque = Mark
	}
	return u.String()
}

// Error returns err with the URL of a *url.Error (what net/http returns
// for a failed request, and url.Parse for a bad URL) redacted; the cause
// stays wrapped for errors.Is and errors.As. Other errors are returned as
// they are.
func Error(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: ue.Err}
}

// MinSecret is the shortest value Secrets replaces: a shorter one (a query
// value "1") would turn every occurrence of it in the text into REDACTED
// and leave nothing readable. URL always redacts userinfo and query values,
// whatever their length.
const MinSecret = 4

// Secrets returns s with every secret of MinSecret bytes or more replaced
// by REDACTED: for text a server sent back, which may quote the request.
func Secrets(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) >= MinSecret {
			s = strings.ReplaceAll(s, secret, Mark)
		}
	}
	return s
}

// URLSecrets lists the secret parts of raw (user name, password, query
// values), for Secrets.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return out
}

// Scrub returns err with every secret replaced by REDACTED (see Secrets) in
// its message; errors.Is and errors.As still see err. A backstop for
// messages built from parts that might quote a secret.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &scrubbed{err: err, secrets: secrets}
}

type scrubbed struct {
	err     error
	secrets []string
}

func (e *scrubbed) Error() string { return Secrets(e.err.Error(), e.secrets...) }
func (e *scrubbed) Unwrap() error { return e.err }

// Cause returns the error a *url.Error wraps (net/http's errors repeat the
// URL, which the caller names itself, redacted), else err.
func Cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Package verify checks that a TLS endpoint really serves the certificate
// we just published: a reload that Cassandra accepted but could not apply
// (it answers success and logs an error) is only caught by looking.
package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// Served dials addr and returns the leaf certificate the server presents.
// o.Client, if set, is offered as client certificate (Cassandra's ports may
// require one); o.ServerName is sent as SNI. The server is not verified
// here: the caller compares the leaf against the one it expects, which is a
// stricter check.
func Served(ctx context.Context, addr string, o Options) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	cfg := &tls.Config{
		InsecureSkipVerify: true, // the fingerprint comparison is the verification
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server sent no certificate")
			}
			c, err := x509.ParseCertificate(raw[0])
			leaf = c
			return err
		},
	}
	if o.Client != nil {
		cfg.Certificates = []tls.Certificate{*o.Client}
	}
	cfg.ServerName = o.ServerName
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if conn != nil {
		conn.Close()
	}
	if leaf != nil {
		// The server's certificate is known even if the handshake failed
		// afterwards (e.g. it rejected our client certificate).
		return leaf, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, errors.New("no certificate seen")
}

// Options for Until.
type Options struct {
	Deadline time.Duration // default 60s
	// Backoff starts here (default 200ms), doubles, capped at 2s, jittered.
	Backoff time.Duration
	Client  *tls.Certificate
	// ServerName is sent as SNI (the fingerprint, not the name, is checked).
	ServerName string
}

// Until dials addr until it serves want, or the deadline passes. It returns
// the fingerprint last served.
func Until(ctx context.Context, addr string, want *x509.Certificate, o Options) (string, error) {
	deadline := o.Deadline
	if deadline <= 0 {
		deadline = time.Minute
	}
	backoff := o.Backoff
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	wantFP := pki.Fingerprint(want)
	var last string
	var lastErr error
	for {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := Served(dctx, addr, o)
		dcancel()
		if err == nil {
			if last = pki.Fingerprint(got); last == wantFP {
				return last, nil
			}
		}
		// An attempt cut short by the deadline says less than the one
		// before it: keep the cause the endpoint gave. The dial's own
		// timer can fire before the context's, so the clock decides too.
		if err != nil && (lastErr == nil || !cutShort(ctx)) {
			lastErr = err
		}
		pause := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
		select {
		case <-ctx.Done():
			if last != "" {
				return last, fmt.Errorf("%s still serves %s, not %s, after %s", addr, last, wantFP, deadline)
			}
			return "", fmt.Errorf("%s: no certificate seen within %s: %s: %w", addr, deadline, Cause(lastErr), lastErr)
		case <-time.After(pause):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// cutShort reports whether ctx has ended or its deadline is (all but) here.
func cutShort(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < 10*time.Millisecond
}

// Cause says in plain words why no certificate was seen.
func Cause(err error) string {
	var op *net.OpError
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listening)"
	case errors.As(err, &op) && op.Op == "dial":
		return "could not connect"
	case errors.Is(err, syscall.ECONNRESET):
		return "the endpoint reset the connection"
	case errors.As(err, &rec):
		return "the endpoint answered, but not with TLS"
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls:"):
		return "the endpoint refused the TLS handshake"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "the endpoint accepted the connection but did not answer the TLS handshake in time"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the endpoint closed the connection during the TLS handshake"
	}
	return "TLS handshake failed"
}

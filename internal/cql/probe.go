package cql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// TLSFiles names the PEM material of a CQL client.
type TLSFiles struct {
	CAFile   string // trusted CAs for the server certificate; required for TLS
	CertFile string // client certificate (leaf first), for require_client_auth
	KeyFile  string
	// ServerName is checked against the server certificate's SANs. Empty
	// means the host part of each dialled address.
	ServerName string
}

// Config builds a verifying tls.Config. gocql does not verify the server
// unless told to; this never returns a config that skips verification.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.CAFile == "" {
		return nil, errors.New("TLS needs a CA file to verify the server")
	}
	data, err := pki.ReadFile(f.CAFile)
	if err != nil {
		return nil, err
	}
	cas, err := pki.ParseCertificates(data, f.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: f.ServerName, MinVersion: tls.VersionTLS12}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a client certificate needs its key and vice versa")
	}
	if f.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Client holds what every connection to the cluster needs.
type Client struct {
	TLS      *tls.Config // nil for plaintext
	Username string
	Password []byte
	// ConnectTimeout bounds dial + TLS + auth; Timeout bounds each query.
	ConnectTimeout, Timeout time.Duration
	Log                     *slog.Logger
}

// cluster configures a session whose connections live no longer than ctx.
func (c *Client) cluster(ctx context.Context, hosts ...string) *gocql.ClusterConfig {
	cl := gocql.NewCluster(hosts...)
	cl.DisableInitialHostLookup = true // probe exactly the hosts we were given
	cl.ProtoVersion = 4                // spoken by Cassandra 3.11 to 5.0; skips version discovery
	// No schema metadata: by default a session awaits schema agreement and
	// reads every keyspace, table and column before it is usable, which
	// probes and bootstrap statements never look at (0.26 s of a probe of a
	// warm node here, 0.53 s of a freshly started one).
	cl.Metadata.CacheMode = gocql.Disabled
	cl.NumConns = 1
	cl.ConnectTimeout = orDefault(c.ConnectTimeout, 5*time.Second)
	cl.Timeout = orDefault(c.Timeout, 10*time.Second)
	cl.Logger = gocqlLogger{c.Log}
	// Our dialer, not SslOpts: gocql bounds only the TCP connect by
	// ConnectTimeout and runs the TLS handshake under the session's own
	// context, which nothing cancels while CreateSession waits — a host
	// that accepts and never answers kept a socket and goroutines forever,
	// at every probe.
	tlsCfg := c.TLS
	if tlsCfg != nil {
		tlsCfg = serverNameFor(tlsCfg, hosts)
	}
	cl.HostDialer = &hostDialer{tls: tlsCfg, timeout: cl.ConnectTimeout, life: ctx}
	if c.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: string(c.Password)}
	} else {
		// Without a password the client is known by its certificate
		// (Cassandra 5.0's MutualTlsAuthenticator), or needs no
		// authentication at all (AllowAllAuthenticator sends no AUTHENTICATE).
		cl.Authenticator = certificateAuth{}
	}
	return cl
}

// serverNameFor returns cfg with ServerName set to the host's name when
// cfg has none and the one host is given by a DNS name. gocql otherwise
// checks the certificate against the IP it resolved the name to, and a node
// whose certificate names only DNS names (*.example.net, as managed services
// issue them) is refused although it was reached by a matching name.
func serverNameFor(cfg *tls.Config, hosts []string) *tls.Config {
	if cfg.ServerName != "" || len(hosts) != 1 {
		return cfg
	}
	host := hosts[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" || net.ParseIP(host) != nil {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	return cfg
}

// hostDialer dials each connection of a session: the TCP connect and the TLS
// handshake together bounded by the connect timeout and by life, and the
// connection closed when life ends, so that whatever gocql still waits on
// fails at once instead of holding the socket.
type hostDialer struct {
	tls     *tls.Config // nil for plaintext; always verifying (see TLSFiles.Config, MaterialTLS)
	timeout time.Duration
	life    context.Context
}

func (d *hostDialer) DialHost(ctx context.Context, host *gocql.HostInfo) (*gocql.DialedHost, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	defer context.AfterFunc(d.life, cancel)()
	addr := host.ConnectAddressAndPort()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(d.life, func() { conn.Close() })
	dialed, err := gocql.WrapTLS(ctx, conn, host.HostnameAndPort(), d.tls)
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return dialed, nil
}

// Session opens a session to hosts (used for bootstrap statements). Its
// connections are closed when ctx ends; the caller closes the session.
func (c *Client) Session(ctx context.Context, hosts ...string) (*gocql.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, &ProbeError{Cause: "timeout", Err: err}
	}
	s, err := c.cluster(ctx, hosts...).CreateSession()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, &ProbeError{Cause: Classify(err), Err: err}
	}
	return s, nil
}

// Probe connects to one host and runs SELECT release_version FROM
// system.local, returning the version. A session is created per probe: a
// failed initial connect is fatal for a gocql session, so retrying means
// starting over. The probe returns when ctx ends; CreateSession takes no
// context, but the session's connections are closed then, so the work left
// behind ends at once and releases its socket and goroutines.
func (c *Client) Probe(ctx context.Context, host string) (string, error) {
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.Session(ctx, host)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer s.Close()
		var v string
		err = s.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v)
		if err != nil {
			err = &ProbeError{Cause: Classify(err), Err: err}
		}
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return "", &ProbeError{Cause: "timeout", Err: fmt.Errorf("%s: %w", host, ctx.Err())}
	}
}

// closeWithin closes s, waiting at most d: gocql's Session.Close can wait
// forever for a control connection that is reconnecting (a known class of
// driver deadlocks), and a finished init must not hang on it. What is left
// behind ends with the process.
func closeWithin(s *gocql.Session, d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// ProbeError carries a plain-words cause next to the driver's error.
type ProbeError struct {
	Cause string
	Err   error
}

func (e *ProbeError) Error() string { return e.Cause + ": " + e.Err.Error() }
func (e *ProbeError) Unwrap() error { return e.Err }

// Classify maps a driver error to a cause an operator can act on. gocql
// flattens errors into strings, so this matches on text.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Cause
	}
	if c := identityCause(err.Error()); c != "" {
		return c
	}
	s := strings.ToLower(err.Error())
	for _, c := range causes {
		for _, m := range c.match {
			if strings.Contains(s, m) {
				return c.cause
			}
		}
	}
	return "error"
}

var causes = []struct {
	cause string
	match []string
}{
	{"connection refused (nothing listening yet)", []string{"connection refused"}},
	{"server certificate not trusted (unknown CA)", []string{"certificate signed by unknown authority"}},
	{"server certificate does not match the server name", []string{"certificate is valid for", "certificate is not valid for any names", "doesn't contain any ip sans"}},
	{"server certificate expired or not yet valid", []string{"certificate has expired or is not yet valid"}},
	{"TLS rejected by the server (client certificate missing or not trusted)", []string{"certificate required", "bad certificate", "unknown certificate authority", "unknown_ca", "handshake failure"}},
	// The password half of MutualTlsWithPasswordFallbackAuthenticator, given
	// the empty token of a client without a password (and without a certificate).
	{causeNeedsPassword, []string{causeNeedsPassword, "authentication id must not be null", "password must not be null", "username or password is empty"}},
	{causeNoIdentity, []string{"unable to extract spiffe from the certificate", "unable to extract client identity from certificate"}},
	{"client certificate refused by the server's certificate authenticator", []string{"invalid or not supported certificate"}},
	{"authentication failed (username or password rejected)", []string{"and/or password are incorrect", "authentication", "bad credentials"}},
	{"timeout", []string{"i/o timeout", "deadline exceeded", "timed out", "timeout"}},
	{"DNS lookup failed", []string{"no such host"}},
	{"connection closed by the server (plaintext vs TLS mismatch, or node starting)", []string{"eof", "connection reset", "broken pipe"}},
	{"node not ready for queries", []string{"cannot achieve consistency", "unavailable", "bootstrapping", "overloaded"}},
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// gocqlLogger sends the driver's chatter to debug level.
type gocqlLogger struct{ log *slog.Logger }

func (l gocqlLogger) logger() *slog.Logger {
	if l.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.log
}
func (l gocqlLogger) Error(msg string, f ...gocql.LogField) {
	l.logger().Debug("gocql: "+msg, fields(f)...)
}
func (l gocqlLogger) Warning(msg string, f ...gocql.LogField) {
	l.logger().Debug("gocql: "+msg, fields(f)...)
}
func (l gocqlLogger) Info(msg string, f ...gocql.LogField) {
	l.logger().Debug("gocql: "+msg, fields(f)...)
}
func (l gocqlLogger) Debug(msg string, f ...gocql.LogField) {
	l.logger().Debug("gocql: "+msg, fields(f)...)
}

func fields(f []gocql.LogField) []any {
	out := make([]any, 0, 2*len(f))
	for _, x := range f {
		out = append(out, x.Name, x.Value.String())
	}
	return out
}

// MaterialTLS is a client tls.Config from validated store material: the
// store's leaf as client certificate, its CAs as roots.
func MaterialTLS(m *pki.Material, serverName string) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range m.CAs {
		pool.AddCert(c)
	}
	return &tls.Config{
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{m.TLSCertificate()},
	}
}

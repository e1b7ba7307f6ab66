package peers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ProbeOptions shape a probe. The zero value offers no client certificate
// and gives up after 5 s.
type ProbeOptions struct {
	// Client is offered when the server asks for a client certificate:
	// normally the node's current certificate, so that a peer's log shows a
	// familiar name. The observation is complete before the server judges it,
	// so a rejected certificate still gives a valid Observation. Nil sends an
	// empty certificate list.
	Client *tls.Certificate
	// Timeout bounds one probe, TCP connect and handshake together
	// (default 5s). The context's deadline applies too.
	Timeout time.Duration
	// ServerName is sent as SNI; it is not checked against the certificate.
	ServerName string
	// MaxVersion caps the TLS version offered (tls.VersionTLS12 or
	// tls.VersionTLS13); zero offers both. For tests and diagnostics.
	MaxVersion uint16
	// Parallel bounds how many probes ProbeAll runs at once (default 8).
	Parallel int
}

// DefaultProbeTimeout is ProbeOptions.Timeout's default.
const DefaultProbeTimeout = 5 * time.Second

// DefaultParallel is ProbeOptions.Parallel's default.
const DefaultParallel = 8

// Observation is what one probe of Addr learned from the TLS handshake.
// Nothing in it is verified: it is what the server sent.
type Observation struct {
	Addr string
	// Chain is the certificate chain the server presented, leaf first, as
	// sent. It is captured as soon as the server's Certificate message is
	// read, so it is set even when the handshake fails afterwards.
	Chain []*x509.Certificate
	// ClientAuthRequested reports that the server sent a CertificateRequest.
	ClientAuthRequested bool
	// AcceptableCAs are the distinguished names (DER RDNSequences) of the
	// server's CertificateRequest, in the server's order: the subjects of
	// the CAs the peer trusts for client certificates. Empty when the
	// server did not ask, or asked without naming CAs.
	AcceptableCAs [][]byte
	// Version is the negotiated TLS version (tls.VersionTLS12, …), 0 when
	// the handshake failed before the server's certificate.
	Version uint16
	// Err is nil when the observation is complete: the chain is known and
	// either the CertificateRequest was seen or the handshake finished
	// without one. Otherwise it names the address and the cause; Chain may
	// still be set ("served chain seen, no certificate request seen"). In
	// TLS 1.3 Go reveals the request only once the server's Finished is
	// verified, so a handshake failing earlier never counts as complete.
	Err error
	// HandshakeErr is the error that ended a handshake after the
	// observation was complete (Err is nil): typically the server refusing
	// our client certificate. Informational only, and not always visible:
	// in TLS 1.3 the client's side of the handshake is over before the
	// server judges the client certificate, so a refusal there arrives
	// after the probe has hung up.
	HandshakeErr error
}

// Probe dials addr, runs a TLS handshake and records what the server sent.
// The server is not verified (any certificate is accepted and captured);
// compare the result with Accepts and ServedBy. The connection is closed
// before Probe returns. Failures are reported in Observation.Err.
func Probe(ctx context.Context, addr string, o ProbeOptions) Observation {
	obs := Observation{Addr: addr}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("no answer within %s: %w", timeout, context.DeadlineExceeded))
	defer cancel()

	cfg := &tls.Config{
		// Capture, do not verify: the caller compares names and keys,
		// which is both stricter and what a rotation needs to know.
		InsecureSkipVerify: true,
		ServerName:         o.ServerName,
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         o.MaxVersion,
		// Called once the server's Certificate message is parsed, in both
		// TLS 1.2 and 1.3, before the client sends anything of its own.
		VerifyConnection: func(cs tls.ConnectionState) error {
			obs.Chain = append([]*x509.Certificate(nil), cs.PeerCertificates...)
			obs.Version = cs.Version
			return nil
		},
		// Called only when the server sent a CertificateRequest. In TLS 1.3
		// that message precedes the server's Certificate, but Go hands it
		// over here, after the server's Finished was checked.
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			obs.ClientAuthRequested = true
			obs.AcceptableCAs = make([][]byte, len(cri.AcceptableCAs))
			for i, name := range cri.AcceptableCAs {
				obs.AcceptableCAs[i] = bytes.Clone(name)
			}
			if o.Client != nil {
				return o.Client, nil
			}
			return &tls.Certificate{}, nil
		},
	}

	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		obs.Err = withCause(ctx, err)
		return obs
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	err = conn.HandshakeContext(ctx)
	switch {
	case err == nil:
		// Complete, whether or not the server asked for a certificate.
	case obs.Chain != nil && obs.ClientAuthRequested:
		obs.HandshakeErr = err
	case obs.Chain != nil:
		obs.Err = fmt.Errorf("tls handshake with %s: served chain seen, no certificate request seen: %w", addr, withCause(ctx, err))
	default:
		obs.Err = fmt.Errorf("tls handshake with %s: %w", addr, withCause(ctx, err))
	}
	return obs
}

// withCause makes a timeout say which one: an interrupted handshake only
// returns "context deadline exceeded".
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	switch {
	case err == ctx.Err(): // an interrupted handshake
		return cause
	case cause == ctx.Err(): // the caller's context: err says enough
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// ProbeAll probes every address, at most o.Parallel at once, and returns
// the observations in the order of addrs.
func ProbeAll(ctx context.Context, addrs []string, o ProbeOptions) []Observation {
	out := make([]Observation, len(addrs))
	n := o.Parallel
	if n <= 0 {
		n = DefaultParallel
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(addrs)) {
		wg.Go(func() {
			for i := range next {
				out[i] = Probe(ctx, addrs[i], o)
			}
		})
	}
	for i := range addrs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Accepts reports whether the server named ca among the CAs it accepts for
// client certificates: ca.RawSubject is byte-equal to one of AcceptableCAs.
//
// This is a comparison of names only, because a CertificateRequest carries
// nothing else. Two CAs with the same subject are indistinguishable: a peer
// that trusts an old CA is reported as accepting a new CA of the same name,
// and a leaf from the new CA would then be refused by that peer. CAs that
// replace each other must therefore have distinct subjects (a generation or
// date in the CN).
func (o Observation) Accepts(ca *x509.Certificate) bool {
	if ca == nil || !o.ClientAuthRequested {
		return false
	}
	for _, name := range o.AcceptableCAs {
		if bytes.Equal(name, ca.RawSubject) {
			return true
		}
	}
	return false
}

// ServedBy reports whether the served chain comes from ca: ca is one of the
// chain's certificates (normally the last), or ca issued one of them
// (normally the top one, when the server does not send its root).
//
// "Issued" means the certificate's issuer name equals ca's subject and its
// signature verifies with ca's key (x509.Certificate.CheckSignatureFrom). A
// ca that CheckSignatureFrom refuses as an issuer (no CA basic constraints
// or no certSign key usage) is still checked by signature, since a
// truststore may hold such a certificate as a trust anchor. Only when the
// signature cannot be checked at all — an algorithm Go does not support or
// refuses as insecure (e.g. SHA-1) — does ServedBy fall back to the names
// alone, and then, like Accepts, cannot tell apart two CAs of one subject.
func (o Observation) ServedBy(ca *x509.Certificate) bool {
	if ca == nil {
		return false
	}
	for _, c := range o.Chain {
		if bytes.Equal(c.Raw, ca.Raw) || issuedBy(c, ca) {
			return true
		}
	}
	return false
}

func issuedBy(c, ca *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, ca.RawSubject) {
		return false
	}
	err := c.CheckSignatureFrom(ca)
	var constraint x509.ConstraintViolationError
	if errors.As(err, &constraint) {
		err = ca.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	}
	var insecure x509.InsecureAlgorithmError
	if errors.Is(err, x509.ErrUnsupportedAlgorithm) || errors.As(err, &insecure) {
		return true // names match and the signature cannot be checked
	}
	return err == nil
}

// CANames returns the accepted CA names of o as strings (RFC 2253 style,
// e.g. "CN=cluster CA 2025,O=example"), for logs and display only.
func CANames(o Observation) []string {
	names := make([]string, 0, len(o.AcceptableCAs))
	for _, der := range o.AcceptableCAs {
		names = append(names, nameString(der))
	}
	return names
}

func nameString(der []byte) string {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil || len(rest) > 0 {
		return fmt.Sprintf("(unparsable name %x)", der)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdns)
	return n.String()
}

package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// EndpointOptions say how to look at a TLS endpoint.
type EndpointOptions struct {
	// Address is host:port.
	Address string
	// ServerName is the name the certificate must carry (and the SNI sent).
	// Empty means the host part of Address, as a client dialling it would use.
	ServerName string
	// CAs verify the served chain; nil means the system trust store.
	// CAFile only labels messages.
	CAs    []*x509.Certificate
	CAFile string
	// Client is offered when the server asks for a client certificate.
	Client *tls.Certificate
	// Timeout bounds each connection (default 10 s).
	Timeout time.Duration
	// Now judges validity; Within flags a served leaf expiring before Now+Within.
	Now    time.Time
	Within time.Duration
}

// EndpointReport is what an endpoint serves and accepts, with diagnoses in
// plain words. Problems is empty when a client configured like the options
// would connect: the chain verifies against the CAs for ServerName and, when
// the server requires a client certificate, it accepted the one offered.
type EndpointReport struct {
	Address    string `json:"address"`
	ServerName string `json:"server_name"`
	// ServerNameFrom is "--server-name" or "address".
	ServerNameFrom string     `json:"server_name_from"`
	TLSVersion     string     `json:"tls_version"`
	Chain          []CertInfo `json:"chain"`
	// TrustedBy is "--ca FILE" or "the system trust store".
	TrustedBy string `json:"trusted_by"`
	// ChainVerifies: the chain ends at one of the CAs (names aside).
	ChainVerifies bool `json:"chain_verifies"`
	// NameMatches: the leaf carries ServerName.
	NameMatches bool `json:"name_matches"`
	// Verified = ChainVerifies && NameMatches.
	Verified bool `json:"verified"`
	// ClientAuth is "not requested", "requested" (an empty certificate is
	// accepted) or "required"; "requested or required" when it could not be told.
	ClientAuth string `json:"client_auth"`
	// AcceptableCAs are the CA names the server sends in its
	// CertificateRequest: the subjects of the certificates in its truststore.
	AcceptableCAs     []string  `json:"acceptable_client_cas"`
	ClientCertificate *CertInfo `json:"client_certificate,omitempty"`
	// ClientAccepted is nil when no client certificate was offered or the
	// server's verdict could not be seen.
	ClientAccepted *bool    `json:"client_certificate_accepted,omitempty"`
	Notes          []string `json:"notes"`
	Problems       []string `json:"problems"`
	// Served is the chain as sent (for --save-chain).
	Served []*x509.Certificate `json:"-"`
}

// Endpoint connects to o.Address and reports. An error means no TLS
// server certificate was seen at all (nothing listening, not TLS, timeout).
func Endpoint(ctx context.Context, o EndpointOptions) (*EndpointReport, error) {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: want HOST:PORT: %w", o.Address, err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	r := &EndpointReport{Address: o.Address, ServerName: o.ServerName, ServerNameFrom: "--server-name"}
	if r.ServerName == "" {
		r.ServerName, r.ServerNameFrom = host, "address"
	}
	sni := r.ServerName
	if net.ParseIP(sni) != nil {
		sni = "" // an IP is never sent as SNI
	}
	popts := peers.ProbeOptions{Client: o.Client, Timeout: o.Timeout, ServerName: sni}
	obs := peers.Probe(ctx, o.Address, popts)
	if obs.Err != nil {
		return nil, explainProbeError(o.Address, obs.Err)
	}
	if len(obs.Chain) == 0 {
		return nil, fmt.Errorf("%s: the server sent no certificate", o.Address)
	}
	r.Served = obs.Chain
	r.TLSVersion = tls.VersionName(obs.Version)
	for i, c := range obs.Chain {
		role := "leaf"
		if i > 0 {
			role = "chain"
		}
		r.Chain = append(r.Chain, describe(role, "", c))
	}
	r.verify(obs.Chain, o)
	if obs.ClientAuthRequested {
		r.clientAuth(ctx, obs, popts, o)
	} else {
		r.ClientAuth = "not requested"
		if o.Client != nil {
			r.note("the server did not ask for a client certificate; yours was not sent")
		}
	}
	if o.Client != nil && o.Client.Leaf != nil {
		ci := describe("client", "", o.Client.Leaf)
		r.ClientCertificate = &ci
		if err := pki.CheckValidity(o.Client.Leaf, o.Now); err != nil {
			if r.ClientAccepted != nil && *r.ClientAccepted {
				r.problem("your client %v; this server still accepted it (a JDK server such as Cassandra does not check the dates of a certificate that is itself in its truststore), but a server that checks them refuses it — renew it and upload the new one", err)
			} else {
				r.problem("your client %v; renew it (certs self-signed) and upload the new one", err)
			}
		}
	}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	if r.Problems == nil {
		r.Problems = []string{}
	}
	return r, nil
}

func (r *EndpointReport) note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

func (r *EndpointReport) problem(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// verify judges the chain and the name separately, so each failure gets
// its own diagnosis, then together.
func (r *EndpointReport) verify(chain []*x509.Certificate, o EndpointOptions) {
	leaf := chain[0]
	var roots *x509.CertPool
	if o.CAs != nil {
		roots = x509.NewCertPool()
		for _, c := range o.CAs {
			roots.AddCert(c)
		}
		r.TrustedBy = "--ca " + o.CAFile
	} else {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		r.TrustedBy = "the system trust store"
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: o.Now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	r.ChainVerifies = err == nil
	if err != nil {
		r.problem("%s", r.chainDiagnosis(err, chain, o))
	}
	if err := leaf.VerifyHostname(r.ServerName); err != nil {
		r.problem("%s", r.nameDiagnosis(leaf))
	} else {
		r.NameMatches = true
	}
	r.Verified = r.ChainVerifies && r.NameMatches
	if o.Within > 0 && r.ChainVerifies && leaf.NotAfter.Before(o.Now.Add(o.Within)) {
		r.problem("the server's certificate (%s) expires at %s, within %s", leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339), o.Within)
	}
}

func (r *EndpointReport) chainDiagnosis(err error, chain []*x509.Certificate, o EndpointOptions) string {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		c := inv.Cert
		switch inv.Reason {
		case x509.Expired:
			if o.Now.Before(c.NotBefore) {
				return fmt.Sprintf("the server's certificate %s is not valid until %s (check the clocks)", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
			}
			return fmt.Sprintf("the server's certificate %s expired at %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		case x509.IncompatibleUsage:
			return fmt.Sprintf("the server's certificate %s is not meant for TLS servers (its extended key usage lacks serverAuth); clients refuse it", c.Subject)
		}
		return fmt.Sprintf("the server's chain does not verify against %s: %v", r.TrustedBy, err)
	}
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		return fmt.Sprintf("the server's chain does not verify against %s: %v", r.TrustedBy, err)
	}
	top := chain[len(chain)-1]
	end := top.Subject.String()
	if !selfIssued(top) {
		end = top.Issuer.String() + ", which it does not send"
	}
	if o.CAs == nil {
		return fmt.Sprintf("the server's chain does not end at a CA of the system trust store (it ends at %s); pass the service's CA with --ca", end)
	}
	var have []string
	for _, c := range o.CAs {
		have = append(have, c.Subject.String())
	}
	msg := fmt.Sprintf("the server's chain does not end at your --ca (it ends at %s); %s holds %s", end, o.CAFile, strings.Join(have, "; "))
	for _, c := range o.CAs {
		if top.Issuer.String() == c.Subject.String() || top.Subject.String() == c.Subject.String() {
			msg += " — a CA of the same name but a different key: the server uses another CA than the one you have"
			break
		}
	}
	return msg
}

func selfIssued(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject)
}

// nameDiagnosis says which names the certificate carries and what to do.
func (r *EndpointReport) nameDiagnosis(leaf *x509.Certificate) string {
	names := certNames(leaf)
	what := "the certificate names " + strings.Join(names, ", ")
	if len(names) == 0 {
		what = fmt.Sprintf("the certificate carries no DNS or IP names (subject alternative names), only %s, which clients ignore", leaf.Subject)
	}
	if r.ServerNameFrom == "--server-name" {
		return fmt.Sprintf("%s; --server-name %s matches none of them — use one the certificate carries", what, r.ServerName)
	}
	hint := "use a matching name or --server-name"
	if ex := exampleName(leaf); ex != "" {
		hint = fmt.Sprintf("use a matching name (such as %s, resolving to this address) or --server-name %s", ex, ex)
	}
	return fmt.Sprintf("%s; you connected to %s — %s", what, r.ServerName, hint)
}

func certNames(c *x509.Certificate) []string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// exampleName is a name the certificate would accept: its first DNS name,
// with a wildcard label filled in.
func exampleName(c *x509.Certificate) string {
	if len(c.DNSNames) == 0 {
		return ""
	}
	if d := c.DNSNames[0]; strings.HasPrefix(d, "*.") {
		return "node1" + d[1:]
	} else {
		return d
	}
}

// clientAuth reports what the server accepts and whether it took what we
// offered. In TLS 1.3 the server judges a client certificate after the
// client's handshake is over, so the verdict is not part of the probe; the
// same offer is then repeated over TLS 1.2, where the server answers before
// its Finished.
func (r *EndpointReport) clientAuth(ctx context.Context, obs peers.Observation, popts peers.ProbeOptions, o EndpointOptions) {
	r.AcceptableCAs = peers.CANames(obs)
	verdict, seen := obs.HandshakeErr, true
	if obs.Version >= tls.VersionTLS13 {
		popts.MaxVersion = tls.VersionTLS12
		again := peers.Probe(ctx, o.Address, popts)
		if again.Err != nil {
			seen = false
			r.note("the server's verdict on a client certificate could not be seen: it arrives after a TLS 1.3 handshake, and a TLS 1.2 handshake failed (%v)", again.Err)
		} else {
			verdict = again.HandshakeErr
		}
	}
	accepts := "any CA (the server named none)"
	if len(r.AcceptableCAs) > 0 {
		accepts = strings.Join(r.AcceptableCAs, "; ")
	}
	switch {
	case !seen:
		r.ClientAuth = "requested or required"
	case o.Client == nil && verdict == nil:
		r.ClientAuth = "requested"
		r.note("the server asks for a client certificate but accepts connections without one")
	case o.Client == nil:
		r.ClientAuth = "required"
		r.problem("the server requires a client certificate signed by one of: %s — pass yours with --cert and --key", accepts)
	case verdict == nil:
		r.ClientAuth = "requested or required"
		yes := true
		r.ClientAccepted = &yes
	default:
		r.ClientAuth = "required"
		no := false
		r.ClientAccepted = &no
		r.problem("%s", r.refusal(obs, o.Client, accepts, verdict, o.Now))
	}
	if seen || o.Client == nil || o.Client.Leaf == nil {
		return
	}
	// No verdict: say at least whether the server names the issuer.
	if len(obs.AcceptableCAs) > 0 && !namesIssuer(obs, o.Client.Leaf) {
		r.problem("your client certificate is issued by %s, which is not among the CA names the server accepts: %s", o.Client.Leaf.Issuer, accepts)
	}
}

func (r *EndpointReport) refusal(obs peers.Observation, client *tls.Certificate, accepts string, verdict error, now time.Time) string {
	leaf := client.Leaf
	if leaf == nil {
		return fmt.Sprintf("the server refused your client certificate (%v); it requires one signed by one of: %s", verdict, accepts)
	}
	who := fmt.Sprintf("the server refused your client certificate %s (issued by %s)", leaf.Subject, leaf.Issuer)
	switch {
	case len(obs.AcceptableCAs) > 0 && !namesIssuer(obs, leaf):
		if selfIssued(leaf) {
			return fmt.Sprintf("%s: it is self-signed and not in the server's truststore — upload it to the service first; the server requires a client certificate signed by one of: %s", who, accepts)
		}
		return fmt.Sprintf("%s: the server requires a client certificate signed by one of: %s", who, accepts)
	case now.After(leaf.NotAfter):
		return fmt.Sprintf("%s: it expired at %s; renew it (and upload the new one)", who, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("%s: it is not valid until %s", who, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s although the server names its issuer among the CAs it accepts: the server holds a different certificate of that name, or refuses the certificate's key usage (%v)", who, verdict)
}

// namesIssuer reports whether the server's accepted CA names include the
// issuer of leaf (for a self-signed certificate, its own subject).
func namesIssuer(obs peers.Observation, leaf *x509.Certificate) bool {
	for _, n := range obs.AcceptableCAs {
		if string(n) == string(leaf.RawIssuer) {
			return true
		}
	}
	return false
}

// explainProbeError keeps the address and cause and adds what it usually
// means for a Cassandra port.
func explainProbeError(addr string, err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return fmt.Errorf("%s: connection refused: nothing listens there (wrong port, or the node is down): %w", addr, err)
	case strings.Contains(s, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%s: the server does not speak TLS on this port (client encryption off, or a plaintext port): %w", addr, err)
	case strings.Contains(s, "no such host"):
		return fmt.Errorf("%s: the name does not resolve: %w", addr, err)
	}
	return err
}

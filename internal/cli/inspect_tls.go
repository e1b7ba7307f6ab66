package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/inspect"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

const tlsScheme = "tls://"

// tlsTarget returns the index of the tls://HOST:PORT argument, or -1.
func tlsTarget(args []string) int {
	for i, a := range args {
		if strings.HasPrefix(a, tlsScheme) {
			return i
		}
	}
	return -1
}

func runInspectTLS(ctx context.Context, args []string, env Env) int {
	// The target may come before the flags (inspect tls://h:p --ca x), which
	// the flag package would stop at: take it out first.
	i := tlsTarget(args)
	target := args[i]
	args = append(append([]string{}, args[:i]...), args[i+1:]...)

	f := newFlags("inspect", "tls://HOST:PORT [--ca FILE] [--cert FILE --key FILE] [--server-name NAME] [flags]", `
Connect to a TLS endpoint (a Cassandra node's native port 9042, its storage
port 7000, a managed service's endpoint) and show, like openssl s_client
-showcerts but in plain words:
  - the served chain: subject, SANs, issuer, SHA-256, validity;
  - whether it verifies against --ca (or the system trust store) and for which
    server name (--server-name, else the host you connected to);
  - whether the server asks for a client certificate, the CA names it accepts
    for one (the subjects of its truststore), and whether it accepted the one
    given with --cert/--key (seen in a TLS 1.2 handshake: in TLS 1.3 the
    server judges it after the client is done);
  - what is wrong, e.g. "the server's chain does not end at your --ca (it
    ends at CN=…)", "the certificate names *.example.net; you connected to
    10.0.0.5 — use a matching name or --server-name", "the server requires a
    client certificate signed by one of: …".
--save-chain FILE writes the chain as served (PEM) for an explicit trust-on-
first-use step: compare its fingerprint with what the service publishes
before using it as --ca. Exits 1 when the chain does not verify, the name does
not match, the client certificate is missing, refused or expired; 0 otherwise.`, env)
	var (
		caFile, certFile, keyFile, serverName, saveChain, output string
		timeout, within                                          time.Duration
	)
	f.StringVar(&caFile, "ca", "", "CA file (PEM) the served chain must end at (default: the system trust store)")
	f.StringVar(&certFile, "cert", "", "client certificate (PEM) to offer")
	f.StringVar(&keyFile, "key", "", "client private key (PEM)")
	f.StringVar(&serverName, "server-name", "", "name the server certificate must carry, also sent as SNI (default: the host of the address)")
	f.StringVar(&saveChain, "save-chain", "", "write the served chain (PEM) to this file")
	f.StringVar(&output, "output", "text", "output format: text or json")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "bound on each connection")
	f.DurationVar(&within, "expiring-within", 0, "treat a served certificate expiring within this duration as a problem (e.g. 360h)")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	const cmd = "inspect"
	if f.NArg() > 0 {
		return usageError(env, cmd, "unexpected argument %q after %s", f.Arg(0), target)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(target, tlsScheme), "/")
	if output != "text" && output != "json" {
		return usageError(env, cmd, "--output %q: want text or json", output)
	}
	o := inspect.EndpointOptions{Address: addr, ServerName: serverName, Timeout: timeout, Now: env.Now(), Within: within}
	if caFile != "" {
		data, err := pki.ReadFile(caFile)
		if err != nil {
			return usageError(env, cmd, "--ca: %v", err)
		}
		if o.CAs, err = pki.ParseCertificates(data, caFile); err != nil {
			return usageError(env, cmd, "--ca: %v", err)
		}
		o.CAFile = caFile
	}
	if (certFile == "") != (keyFile == "") {
		return usageError(env, cmd, "--cert and --key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return usageError(env, cmd, "client certificate %s / %s: %v", certFile, keyFile, err)
		}
		o.Client = &pair
	}
	r, err := inspect.Endpoint(ctx, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cassandra-tls-agent inspect: %v\n", err)
		return ExitFailed
	}
	if saveChain != "" {
		var pemData []byte
		for _, c := range r.Served {
			pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		if err := atomicfile.Write(saveChain, pemData, 0o644); err != nil {
			fmt.Fprintf(env.Stderr, "cassandra-tls-agent inspect: --save-chain: %v\n", err)
			return ExitFailed
		}
		top := r.Served[len(r.Served)-1]
		msg := fmt.Sprintf("saved the served chain (%d certificate(s)) to %s; before trusting it, compare the SHA-256 fingerprints above with what the service publishes", len(r.Served), saveChain)
		if string(top.RawIssuer) != string(top.RawSubject) {
			msg += fmt.Sprintf("; the server does not send its root (%s): OpenSSL-based clients (cqlsh, Python) need that root as CA file, not this chain", top.Issuer)
		}
		r.Notes = append(r.Notes, msg)
	}
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printEndpoint(env.Stdout, r, env.Now())
	}
	if len(r.Problems) > 0 {
		return ExitFailed
	}
	return ExitOK
}

func printEndpoint(w io.Writer, r *inspect.EndpointReport, now time.Time) {
	fmt.Fprintf(w, "%s%s (%s)\n", tlsScheme, r.Address, r.TLSVersion)
	fmt.Fprintf(w, "\nserved chain:\n")
	for i, c := range r.Chain {
		fmt.Fprintf(w, "  [%d] %s\n", i, c.Subject)
		if len(c.SANs) > 0 {
			fmt.Fprintf(w, "      SANs:        %s\n", strings.Join(c.SANs, ", "))
		}
		fmt.Fprintf(w, "      issuer:      %s\n", c.Issuer)
		fmt.Fprintf(w, "      SHA-256:     %s\n", c.SHA256)
		fmt.Fprintf(w, "      valid:       %s → %s (%s)\n", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), remaining(c.NotAfter, now))
	}
	from := "the address"
	if r.ServerNameFrom == "--server-name" {
		from = "--server-name"
	}
	fmt.Fprintf(w, "\nverification against %s for the name %s (from %s):\n", r.TrustedBy, r.ServerName, from)
	fmt.Fprintf(w, "  chain:       %s\n", okFailed(r.ChainVerifies))
	fmt.Fprintf(w, "  name:        %s\n", okFailed(r.NameMatches))
	fmt.Fprintf(w, "\nclient certificate: %s\n", r.ClientAuth)
	if len(r.AcceptableCAs) > 0 {
		fmt.Fprintf(w, "  accepted CAs (the server's truststore):\n")
		for _, n := range r.AcceptableCAs {
			fmt.Fprintf(w, "    - %s\n", n)
		}
	}
	if c := r.ClientCertificate; c != nil {
		verdict := "verdict not seen"
		if r.ClientAccepted != nil {
			verdict = map[bool]string{true: "accepted by the server", false: "REFUSED by the server"}[*r.ClientAccepted]
		}
		fmt.Fprintf(w, "  yours:       %s (issuer %s, SHA-256 %s, not after %s): %s\n", c.Subject, c.Issuer, c.SHA256, c.NotAfter.Format(time.RFC3339), verdict)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintf(w, "\nstatus: OK\n")
		return
	}
	fmt.Fprintf(w, "\nstatus: %d problem(s)\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func okFailed(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILED"
}

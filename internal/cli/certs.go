package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/selfsigned"
)

// runCerts dispatches the certs subcommands.
func runCerts(ctx context.Context, args []string, env Env) int {
	const sub = `Usage: cassandra-tls-agent certs SUBCOMMAND [flags]

Subcommands:
  self-signed  a key and a self-signed client certificate (managed Cassandra services)

Run 'cassandra-tls-agent certs SUBCOMMAND --help' for its flags.
`
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, sub)
		return ExitUsage
	}
	switch args[0] {
	case "self-signed":
		return runSelfSigned(ctx, args[1:], env)
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, sub)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "cassandra-tls-agent certs: unknown subcommand %q\n\n%s", args[0], sub)
	return ExitUsage
}

func runSelfSigned(_ context.Context, args []string, env Env) int {
	f := newFlags("certs self-signed", "--out DIR (--subject /CN=…/O=… | --cn NAME [--ou --org --locality --state --country])", `
Make a private key and a self-signed client certificate, the way managed
Cassandra services (e.g. Azure Managed Instance for Apache Cassandra) ask for
one: upload tls.crt to the service, which adds it to every node's truststore
and requires client certificates; then connect with tls.key and tls.crt, and
the service's CA as the CA file (cqlshrc --cert/--key/--ca, wait, the drivers).

Writes --out/tls.key (PKCS#8 PEM, mode 0600) and --out/tls.crt (PEM, 0644),
each atomically. An existing tls.key or tls.crt is never replaced unless
--force is given: a key whose certificate was uploaded stays usable.

The certificate: subject = issuer = --subject (openssl -subj syntax, order
kept) or the separate attribute flags; a random positive 128-bit serial;
valid from 5 minutes ago (clock skew) for --days; key usage digitalSignature
(plus keyEncipherment for RSA); extended key usage clientAuth only; CA:FALSE.
Prints the SHA-256 fingerprint (what the service shows after the upload) and
the expiry date; renew before then: an expired certificate is refused by
'inspect' and should be by the service.

Key types: rsa2048 (default, what the services document), rsa3072, rsa4096,
p256, p384.

Example:
  cassandra-tls-agent certs self-signed --out ./client \
    --subject "/CN=orders-service/OU=Platform/O=Example Corp/C=DE" --days 365`, env)
	var (
		out, subject, keyType string
		fields                selfsigned.Fields
		days                  int
		force                 bool
	)
	f.StringVar(&out, "out", "", "directory for tls.key and tls.crt (created if missing)")
	f.StringVar(&subject, "subject", "", `distinguished name in openssl -subj form, e.g. "/CN=app/OU=Platform/O=Example/C=DE"`)
	f.StringVar(&fields.CommonName, "cn", "", "subject common name (instead of --subject)")
	f.StringVar(&fields.OrganizationalUnit, "ou", "", "subject organizational unit")
	f.StringVar(&fields.Organization, "org", "", "subject organization")
	f.StringVar(&fields.Locality, "locality", "", "subject locality (city)")
	f.StringVar(&fields.State, "state", "", "subject state or province")
	f.StringVar(&fields.Country, "country", "", "subject country, two letters (e.g. DE)")
	f.StringVar(&keyType, "key-type", string(selfsigned.RSA2048), "rsa2048, rsa3072, rsa4096, p256 or p384")
	f.IntVar(&days, "days", 365, "validity in days")
	f.BoolVar(&force, "force", false, "replace an existing tls.key and tls.crt")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	const cmd = "certs self-signed"
	if f.NArg() > 0 {
		return usageError(env, cmd, "unexpected argument %q (flags only)", f.Arg(0))
	}
	if out == "" {
		return usageError(env, cmd, "--out is required")
	}
	kt, err := selfsigned.ParseKeyType(keyType)
	if err != nil {
		return usageError(env, cmd, "--key-type: %v", err)
	}
	var o selfsigned.Options
	switch {
	case subject != "" && !fields.Empty():
		return usageError(env, cmd, "give the subject either as --subject or as --cn/--ou/--org/--locality/--state/--country, not both")
	case subject != "":
		if o.Subject, err = selfsigned.ParseSubject(subject); err != nil {
			return usageError(env, cmd, "--subject: %v", err)
		}
	case !fields.Empty():
		if o.Subject, err = fields.Subject(); err != nil {
			return usageError(env, cmd, "%v", err)
		}
	default:
		return usageError(env, cmd, `a subject is required: --subject "/CN=name/O=org" or --cn NAME`)
	}
	o.KeyType, o.Days, o.Now, o.Backdate = kt, days, env.Now(), selfsigned.DefaultBackdate
	r, err := selfsigned.Generate(o)
	if err != nil {
		return usageError(env, cmd, "%v", err)
	}
	keyPath, certPath, err := selfsigned.Write(out, r, force)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cassandra-tls-agent %s: %v\n", cmd, err)
		return ExitFailed
	}
	c := r.Cert
	w := env.Stdout
	fmt.Fprintf(w, "wrote %s (%s, PKCS#8, mode 0600)\n", keyPath, describeKeyType(kt))
	fmt.Fprintf(w, "wrote %s (self-signed client certificate)\n", certPath)
	fmt.Fprintf(w, "  subject:    %s\n", selfsigned.SubjectOf(c))
	fmt.Fprintf(w, "  serial:     %s\n", pki.SerialHex(c))
	fmt.Fprintf(w, "  SHA-256:    %s\n", pki.Fingerprint(c))
	fmt.Fprintf(w, "  not before: %s\n", c.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  not after:  %s (%d days)\n", c.NotAfter.UTC().Format(time.RFC3339), days)
	fmt.Fprintf(w, "next: upload %s to the service (it adds it to the nodes' truststores), then connect with\n  --cert %s --key %s and the service's CA as --ca\n", certPath, certPath, keyPath)
	return ExitOK
}

func describeKeyType(kt selfsigned.KeyType) string {
	s := string(kt)
	if strings.HasPrefix(s, "rsa") {
		return "RSA " + strings.TrimPrefix(s, "rsa")
	}
	return "ECDSA P-" + strings.TrimPrefix(s, "p")
}

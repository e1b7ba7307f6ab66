package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/inspect"
)

func runInspect(ctx context.Context, args []string, env Env) int {
	if tlsTarget(args) >= 0 {
		return runInspectTLS(ctx, args, env)
	}
	f := newFlags("inspect", "[flags] PATH | tls://HOST:PORT", `
Print what PATH holds — a PEM file, a credential bundle (a private key and its
chain in one PEM file, read as a store's credentialBundle is), a cert-manager
directory (tls.crt, tls.key, ca.crt), a JKS or a PKCS#12 store: for each
certificate its role, subject,
SANs, issuer, serial, SHA-256 fingerprint and validity, and whether the private
key matches the leaf. A cert-manager directory gets the same validation as the
stores command. Exits 1 when anything is invalid, expired, not yet valid, or
expires within --expiring-within; 0 otherwise.

With tls://HOST:PORT instead of PATH it connects to a TLS endpoint and shows
the served chain, whether it verifies, and the client CAs the server accepts:
see 'cassandra-tls-agent inspect tls:// --help'.`, env)
	var (
		passwordFile, passwordEnv, output string
		within                            time.Duration
	)
	f.StringVar(&passwordFile, "password-file", "", "file holding the store password (JKS and PKCS#12)")
	f.StringVar(&passwordEnv, "password-env", DefaultPasswordEnv, "environment variable holding the store password, used when --password-file is not set")
	f.DurationVar(&within, "expiring-within", 0, "treat certificates expiring within this duration as a problem (e.g. 360h)")
	f.StringVar(&output, "output", "text", "output format: text or json")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	if f.NArg() != 1 {
		return usageError(env, "inspect", "want exactly one PATH, got %d", f.NArg())
	}
	if output != "text" && output != "json" {
		return usageError(env, "inspect", "--output %q: want text or json", output)
	}
	o := inspect.Options{Now: env.Now(), Within: within}
	if passwordFile != "" || env.Getenv(passwordEnv) != "" {
		pw, err := agent.ReadPassword(passwordFile, passwordEnv, env.Getenv)
		if err != nil {
			return usageError(env, "inspect", "%v", err)
		}
		o.Password = pw
	}
	r, err := inspect.Path(f.Arg(0), o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "cassandra-tls-agent inspect: %v\n", err)
		return ExitFailed
	}
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if r.Problems == nil {
			r.Problems = []string{}
		}
		enc.Encode(r)
	} else {
		printReport(env.Stdout, r, env.Now())
	}
	if len(r.Problems) > 0 {
		return ExitFailed
	}
	return ExitOK
}

func printReport(w io.Writer, r *inspect.Report, now time.Time) {
	fmt.Fprintf(w, "%s (%s)\n", r.Path, r.Kind)
	for _, c := range r.Certificates {
		role := c.Role
		if c.Alias != "" {
			role += " [" + c.Alias + "]"
		}
		fmt.Fprintf(w, "\n%s\n", role)
		fmt.Fprintf(w, "  subject:     %s\n", c.Subject)
		if len(c.SANs) > 0 {
			fmt.Fprintf(w, "  SANs:        %s\n", strings.Join(c.SANs, ", "))
		}
		fmt.Fprintf(w, "  issuer:      %s\n", c.Issuer)
		fmt.Fprintf(w, "  serial:      %s\n", c.Serial)
		fmt.Fprintf(w, "  SHA-256:     %s\n", c.SHA256)
		fmt.Fprintf(w, "  not before:  %s\n", c.NotBefore.Format(time.RFC3339))
		fmt.Fprintf(w, "  not after:   %s (%s)\n", c.NotAfter.Format(time.RFC3339), remaining(c.NotAfter, now))
	}
	if r.KeyMatchesLeaf != nil {
		fmt.Fprintf(w, "\nprivate key matches leaf: %t\n", *r.KeyMatchesLeaf)
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

func remaining(t, now time.Time) string {
	d := t.Sub(now).Round(time.Minute)
	if d < 0 {
		return "expired " + (-d).String() + " ago"
	}
	return "expires in " + d.String()
}

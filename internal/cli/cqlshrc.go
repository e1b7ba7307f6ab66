package cli

import (
	"context"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cqlshrc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

func runCqlshrc(ctx context.Context, args []string, env Env) int {
	f := newFlags("cqlshrc", "--out FILE --host H [flags]", `
Write a cqlshrc for cqlsh (PyPI cqlsh 6.x; Cassandra 4.1 and 5.0): [connection]
hostname, port and ssl; [ssl] certfile (the CA), validate, userkey and usercert
(the client certificate for require_client_auth); [ssl] version only when
--tls-version is given, since only cqlsh 6.0 honours it. Credentials never go
into cqlshrc: with --password-file they are written to --credentials-out
(mode 0600, as cqlsh requires) and cqlshrc points at that file.

cqlsh would check the server certificate against [connection] hostname — it
has no option for another name — so against a node whose certificate names
only *.example.net (managed services), --host must be a matching name that
resolves to the node (DNS, /etc/hosts, a pod's hostAliases), not its IP.
Today cqlsh 6.2 with cassandra-driver 3.29 does not verify the server at all,
whatever validate says (the driver builds its TLS context with verification
off). --check makes the checks cqlsh skips: it connects to --host:--port
first and writes nothing when the chain does not end at --ca, the
certificate does not name --host, or the client certificate is refused or
expired.

Against a Cassandra 5.0 node that authenticates clients by their certificate
(MutualTlsAuthenticator, or its password fallback), --certificate-auth
writes an [auth_provider] section instead of credentials: the server still
sends AUTHENTICATE, and cqlsh without a provider stops with "Remote end
requires authentication".`, env)
	var (
		o                                   cqlshrc.Options
		username, passwordFile, credentials string
	)
	f.StringVar(&o.Host, "host", "", "Cassandra host")
	f.IntVar(&o.Port, "port", 9042, "native transport port")
	f.StringVar(&o.CAFile, "ca", "", "CA file (PEM); enables SSL")
	f.StringVar(&o.CertFile, "cert", "", "client certificate (PEM)")
	f.StringVar(&o.KeyFile, "key", "", "client private key (PEM)")
	f.BoolVar(&o.Validate, "validate", true, "verify the server certificate against --ca")
	f.StringVar(&o.TLSVersion, "tls-version", "", "[ssl] version, only for cqlsh 6.0 (e.g. TLSv1_2)")
	f.BoolVar(&o.CertificateAuth, "certificate-auth", false, "the node authenticates by the client certificate (Cassandra 5.0 MutualTlsAuthenticator): no password, an [auth_provider] that answers AUTHENTICATE")
	f.StringVar(&username, "username", "", "CQL username (for the credentials file)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the CQL password")
	f.StringVar(&credentials, "credentials-out", "", "credentials file to write (required with --password-file)")
	var (
		out          string
		check        bool
		checkTimeout time.Duration
	)
	f.StringVar(&out, "out", "", "cqlshrc path")
	f.BoolVar(&check, "check", false, "connect to --host:--port first and refuse to write when cqlsh's TLS settings would not hold")
	f.DurationVar(&checkTimeout, "check-timeout", 10*time.Second, "bound on each connection of --check")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	log, err := f.logger(env)
	if err != nil {
		return usageError(env, "cqlshrc", "%v", err)
	}
	if out == "" {
		return usageError(env, "cqlshrc", "--out is required")
	}
	if (passwordFile != "") != (credentials != "") || (passwordFile != "") != (username != "") {
		return usageError(env, "cqlshrc", "--username, --password-file and --credentials-out go together")
	}
	o.CredentialsFile = credentials
	var pw []byte
	if passwordFile != "" {
		if pw, err = secret.ReadFile(passwordFile); err != nil {
			return usageError(env, "cqlshrc", "%v", err)
		}
	}
	if err := o.Check(); err != nil {
		return usageError(env, "cqlshrc", "%v", err)
	}
	if check && !o.Validate {
		return usageError(env, "cqlshrc", "--check verifies what validate = true promises; it makes no sense with --validate=false")
	}
	if check {
		problems, err := checkCqlshrc(ctx, o, checkTimeout, env.Now())
		if err != nil {
			log.Error("cqlshrc check failed; nothing written", "error", err.Error())
			return ExitFailed
		}
		if len(problems) > 0 {
			for _, p := range problems {
				log.Error("cqlshrc check failed", "host", o.Host, "port", o.Port, "problem", p)
			}
			log.Error("cqlshrc not written: cqlsh would not connect safely with these settings", "problems", len(problems))
			return ExitFailed
		}
		log.Info("cqlshrc check passed: the chain ends at --ca, the certificate names --host, the client certificate is accepted", "host", o.Host, "port", o.Port)
	}
	if err := agent.WriteCqlshrcFiles(o, out, username, pw, log); err != nil {
		log.Error("writing cqlshrc failed", "error", err.Error())
		return ExitFailed
	}
	return ExitOK
}

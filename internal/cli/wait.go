package cli

import (
	"context"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

func runWait(ctx context.Context, args []string, env Env) int {
	f := newFlags("wait", "--hosts h:p[,h:p] --ca FILE [flags]", `
Wait until Cassandra answers a real CQL query (SELECT release_version FROM
system.local) over the same TLS and credentials the client will use — not an
open port, not a sleep. The server certificate is always verified against --ca
(against --server-name, or each host's name or IP). Hosts are probed in rounds
with exponential backoff and jitter capped at 0.5 s (refused connections retried every 0.1 s), so readiness is noticed
quickly; every failed attempt is logged with its cause in plain words (refused,
TLS rejected, authentication failed, timeout…). Exits 0 once --require is met,
1 at --timeout with the last cause of every host that did not answer — and,
for a TLS failure, a diagnosis like inspect tls:// gives (the CA the chain ends
at, the names the certificate carries, the client CAs the server accepts).

A node whose certificate names only DNS names (*.example.net, as managed
services issue them) is checked against the name in --hosts when it is a
name, or against --server-name: with --server-name the hosts may be IPs and
no hosts-file entry is needed.`, env)
	var (
		hosts                  listFlag
		files                  cql.TLSFiles
		username, passwordFile string
		require                string
		timeout, probeTimeout  time.Duration
		plaintext              bool
	)
	f.Var(&hosts, "hosts", "host:port to probe (repeatable or comma-separated)")
	f.StringVar(&files.CAFile, "ca", "", "CA file (PEM) to verify the server certificate")
	f.StringVar(&files.CertFile, "cert", "", "client certificate (PEM), for require_client_auth")
	f.StringVar(&files.KeyFile, "key", "", "client private key (PEM)")
	f.StringVar(&files.ServerName, "server-name", "", "name the server certificate must carry (default: the host dialled)")
	f.StringVar(&username, "username", "", "CQL username")
	f.StringVar(&passwordFile, "password-file", "", "file holding the CQL password")
	f.StringVar(&require, "require", "any", "how many hosts must answer: any, all or quorum")
	f.DurationVar(&timeout, "timeout", config.DefaultWaitTimeout, "give up after this long")
	f.DurationVar(&probeTimeout, "probe-timeout", config.DefaultProbeTimeout, "bound on one probe of one host")
	f.BoolVar(&plaintext, "plaintext", false, "connect without TLS (only for clusters without client encryption)")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	log, err := f.logger(env)
	if err != nil {
		return usageError(env, "wait", "%v", err)
	}
	if len(hosts) == 0 {
		return usageError(env, "wait", "--hosts is required")
	}
	policy, err := cql.ParsePolicy(require)
	if err != nil {
		return usageError(env, "wait", "%v", err)
	}
	client := &cql.Client{Log: log, Username: username}
	if !plaintext {
		if client.TLS, err = files.Config(); err != nil {
			return usageError(env, "wait", "%v (or --plaintext for a cluster without TLS)", err)
		}
		warnClientCertificate(log, client.TLS, files.CertFile, env.Now())
	}
	if passwordFile != "" {
		if client.Password, err = secret.ReadFile(passwordFile); err != nil {
			return usageError(env, "wait", "%v", err)
		}
		if username == "" {
			return usageError(env, "wait", "--password-file needs --username")
		}
	}
	ready, err := cql.Wait(ctx, client, cql.WaitOptions{Hosts: hosts, Require: policy, Timeout: timeout, ProbeTimeout: probeTimeout, Log: log})
	if err != nil {
		log.Error("CQL not ready", "error", err.Error())
		if !plaintext {
			explainTLSFailures(ctx, log, files, err, env.Now())
		}
		return ExitFailed
	}
	log.Info("CQL ready", "hosts", ready.Hosts, "attempts", ready.Attempts, "elapsed", ready.Elapsed.Round(time.Millisecond).String())
	return ExitOK
}

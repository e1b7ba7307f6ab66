package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/inspect"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// warnClientCertificate logs when the client certificate is outside its
// validity window. The wait goes on: Cassandra 5.0 accepts an expired
// certificate that is itself in its truststore (the JDK's trust manager
// skips the dates of a trust anchor), so readiness is real — but a server
// that checks dates, or the next one, will refuse it.
func warnClientCertificate(log *slog.Logger, cfg *tls.Config, certFile string, now time.Time) {
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.Certificates[0].Leaf == nil {
		return
	}
	if err := pki.CheckValidity(cfg.Certificates[0].Leaf, now); err != nil {
		log.Warn("the client certificate is not valid now: renew it (and upload the new one to a managed service); servers that check its dates refuse it",
			"cert", certFile, "error", err.Error())
	}
}

// explainTLSFailures looks once more at every host whose last failure was a
// TLS one — untrusted or misnamed server certificate, client certificate
// refused — and logs what inspect tls:// would say about it: which CA the
// chain ends at, which names the certificate carries, which client CAs the
// server accepts. The driver's own errors do not tell.
func explainTLSFailures(ctx context.Context, log *slog.Logger, files cql.TLSFiles, waitErr error, now time.Time) {
	var nr *cql.NotReadyError
	if !errors.As(waitErr, &nr) || ctx.Err() != nil {
		return
	}
	var hosts []string
	for h, err := range nr.Causes {
		c := cql.Classify(err)
		if strings.HasPrefix(c, "server certificate") || strings.HasPrefix(c, "TLS rejected") {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return
	}
	sort.Strings(hosts)
	o := inspect.EndpointOptions{ServerName: files.ServerName, CAFile: files.CAFile, Timeout: 5 * time.Second, Now: now}
	if data, err := pki.ReadFile(files.CAFile); err == nil {
		o.CAs, _ = pki.ParseCertificates(data, files.CAFile)
	}
	if files.CertFile != "" {
		if pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile); err == nil {
			o.Client = &pair
		}
	}
	for _, h := range hosts {
		o.Address = h
		if _, _, err := net.SplitHostPort(h); err != nil {
			o.Address = net.JoinHostPort(h, "9042")
		}
		r, err := inspect.Endpoint(ctx, o)
		if err != nil {
			log.Debug("diagnosis failed", "host", h, "error", err.Error())
			continue
		}
		for _, p := range r.Problems {
			log.Error("diagnosis", "host", h, "problem", p)
		}
	}
}

package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cqlshrc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/inspect"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// checkCqlshrc connects to the host and port a cqlshrc names, the way cqlsh
// will — the certificate must carry the [connection] hostname, since cqlsh
// has no option to check another name — and returns what would fail: the
// chain not ending at certfile, the name not matching, the client
// certificate missing or refused. cqlsh 6.2.x with cassandra-driver 3.29.x
// does not verify the server at all, whatever validate says, so this is the
// check it skips.
func checkCqlshrc(ctx context.Context, o cqlshrc.Options, timeout time.Duration, now time.Time) ([]string, error) {
	if o.CAFile == "" {
		return nil, fmt.Errorf("--check needs --ca: without TLS there is nothing to check")
	}
	port := o.Port
	if port == 0 {
		port = 9042
	}
	eo := inspect.EndpointOptions{Address: net.JoinHostPort(o.Host, strconv.Itoa(port)), CAFile: o.CAFile, Timeout: timeout, Now: now}
	data, err := pki.ReadFile(o.CAFile)
	if err != nil {
		return nil, err
	}
	if eo.CAs, err = pki.ParseCertificates(data, o.CAFile); err != nil {
		return nil, err
	}
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / %s: %w", o.CertFile, o.KeyFile, err)
		}
		eo.Client = &pair
	}
	r, err := inspect.Endpoint(ctx, eo)
	if err != nil {
		return nil, err
	}
	return r.Problems, nil
}

package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/rotation"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

// Discoverer returns where a store's peers are, from its rotation section.
func Discoverer(r *config.Rotation) peers.Discoverer {
	switch p := r.Peers; {
	case len(p.Static) > 0:
		return peers.Static{Addrs: p.Static}
	case p.DNS != "":
		return peers.DNS{Name: p.DNS}
	default:
		return jolokiaPeers{j: peers.Jolokia{URL: p.Jolokia, Username: p.JolokiaUsername, StoragePort: int(p.StoragePort),
			Client: jolokiaClient}, passwordFile: p.JolokiaPasswordFile}
	}
}

// jolokiaPeers reads the Jolokia password at every call: it is a mounted
// Secret, which rotates.
type jolokiaPeers struct {
	j            peers.Jolokia
	passwordFile string
}

func (d jolokiaPeers) Peers(ctx context.Context) ([]string, error) {
	if d.passwordFile != "" {
		pw, err := secret.ReadFile(d.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("jolokia password: %w", err)
		}
		d.j.Password = string(pw)
	}
	return d.j.Peers(ctx)
}

var jolokiaClient = &http.Client{Timeout: 10 * time.Second}

// ObservePeers discovers a store's peers and probes each once, offering
// client (the certificate the store serves now, so the peers' logs see a
// familiar name). A discovery failure is returned as one unconfirmed peer,
// never as an empty list: nobody confirmed is not nobody to confirm.
func ObservePeers(ctx context.Context, d peers.Discoverer, client *tls.Certificate) ([]peers.Observation, error) {
	addrs, err := d.Peers(ctx)
	if err != nil {
		return nil, err
	}
	return peers.ProbeAll(ctx, addrs, peers.ProbeOptions{Client: client}), nil
}

// rotationPeers turns observations into the gates' input.
func rotationPeers(obs []peers.Observation, discoveryErr error) []rotation.Peer {
	if discoveryErr != nil {
		return []rotation.Peer{{Name: "discovery", Err: discoveryErr}}
	}
	out := make([]rotation.Peer, 0, len(obs))
	for _, o := range obs {
		out = append(out, rotation.Peer{Name: o.Addr, Err: o.Err, Accepts: o.AcceptableCAs, Serves: o.Chain})
	}
	return out
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/peers"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// peerView is one peer as the peers command shows it.
type peerView struct {
	Store    string    `json:"store"`
	Peer     string    `json:"peer"`
	Error    string    `json:"error,omitempty"`
	Subject  string    `json:"leafSubject,omitempty"`
	Issuer   string    `json:"leafIssuer,omitempty"`
	SHA256   string    `json:"leafSHA256,omitempty"`
	NotAfter time.Time `json:"leafNotAfter,omitzero"`
	Accepts  []string  `json:"acceptsCAs"`
}

func runPeers(ctx context.Context, args []string, env Env) int {
	f := newFlags("peers", "--config FILE [--store NAME]", `
Show, for each store with a rotation section (or only --store), what each of
its peers serves and trusts: the peers are found as the sidecar finds them
(the local node's gossip through Jolokia, a static list or a DNS name) and
probed with a TLS handshake offering the store's current certificate. For each
peer: the served leaf (subject, issuer, SHA-256, notAfter) and the CA names it
accepts for client certificates (from its CertificateRequest). Exits 1 when a
peer cannot be probed or the peers disagree about the set of trusted CAs — a
CA rotation is in progress or stuck — and 0 when they all agree.`, env)
	var path, only, output string
	f.StringVar(&path, "config", "", "configuration file (YAML)")
	f.StringVar(&only, "store", "", "only this store")
	f.StringVar(&output, "output", "text", "output format: text or json")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	if output != "text" && output != "json" {
		return usageError(env, "peers", "--output %q: want text or json", output)
	}
	c, log, code := f.loadConfig(env, "peers", path)
	if c == nil {
		return code
	}
	var views []peerView
	agree := true
	for _, sc := range c.Stores {
		if sc.Rotation == nil || (only != "" && sc.Name != only) {
			continue
		}
		v, ok, err := observeStore(ctx, sc, agentEnv(env, log))
		if err != nil {
			fmt.Fprintf(env.Stderr, "cassandra-tls-agent peers: store %s: %v\n", sc.Name, err)
			return ExitFailed
		}
		views, agree = append(views, v...), agree && ok
	}
	if len(views) == 0 {
		return usageError(env, "peers", "no store with a rotation section%s", map[bool]string{true: " named " + only}[only != ""])
	}
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(views)
	} else {
		printPeers(env.Stdout, views, agree)
	}
	if !agree {
		return ExitFailed
	}
	return ExitOK
}

// observeStore probes one store's peers; ok is false when one could not be
// probed or they do not all accept the same CA names.
func observeStore(ctx context.Context, sc config.Store, env agent.Env) ([]peerView, bool, error) {
	src, spec, err := agent.StoreSpec(sc, env.Getenv)
	if err != nil {
		return nil, false, err
	}
	m, err := store.ReadBack(spec)
	if m == nil || err != nil { // nothing published yet: offer the source's certificate
		if m, err = pki.Load(src, env.Now()); err != nil {
			return nil, false, err
		}
	}
	client := m.TLSCertificate()
	obs, err := agent.ObservePeers(ctx, agent.Discoverer(sc.Rotation), &client)
	if err != nil {
		return nil, false, err
	}
	ok := true
	var first []string
	var views []peerView
	for i, o := range obs {
		v := peerView{Store: sc.Name, Peer: o.Addr, Accepts: peers.CANames(o)}
		slices.Sort(v.Accepts)
		if o.Err != nil {
			v.Error, ok = o.Err.Error(), false
		}
		if len(o.Chain) > 0 {
			leaf := o.Chain[0]
			v.Subject, v.Issuer, v.SHA256, v.NotAfter = leaf.Subject.String(), leaf.Issuer.String(), pki.Fingerprint(leaf), leaf.NotAfter.UTC()
		}
		if i == 0 {
			first = v.Accepts
		} else if !slices.Equal(first, v.Accepts) {
			ok = false
		}
		views = append(views, v)
	}
	return views, ok, nil
}

func printPeers(w io.Writer, views []peerView, agree bool) {
	for _, v := range views {
		fmt.Fprintf(w, "store %s, peer %s\n", v.Store, v.Peer)
		if v.Error != "" {
			fmt.Fprintf(w, "  NOT CONFIRMED: %s\n", v.Error)
		}
		if v.SHA256 != "" {
			fmt.Fprintf(w, "  serves:  %s\n           issuer %s\n           sha256 %s\n           notAfter %s\n",
				v.Subject, v.Issuer, v.SHA256, v.NotAfter.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "  accepts: %s\n", strings.Join(v.Accepts, "\n           "))
	}
	if agree {
		fmt.Fprintln(w, "all peers accept the same CAs")
	} else {
		fmt.Fprintln(w, "the peers DISAGREE (or one was not reached): a CA rotation is in progress or stuck")
	}
}

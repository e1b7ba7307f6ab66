package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/redact"
)

// Discoverer lists the storage endpoints ("host:port") of a cluster's nodes,
// sorted and without duplicates. It never returns an empty list without an
// error: a gate over no peers would pass vacuously.
type Discoverer interface {
	Peers(ctx context.Context) ([]string, error)
}

// Static is a fixed list of peers.
type Static struct {
	Addrs []string
}

// Peers returns Addrs, each checked for a port, sorted and deduplicated.
func (s Static) Peers(ctx context.Context) ([]string, error) {
	out := make([]string, 0, len(s.Addrs))
	for _, a := range s.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("static peers: %w", err)
		}
		if host == "" {
			return nil, fmt.Errorf("static peers: %q has no host", a)
		}
		if err := checkPort(port); err != nil {
			return nil, fmt.Errorf("static peers: %q: %w", a, err)
		}
		out = append(out, net.JoinHostPort(normalHost(host), port))
	}
	if len(out) == 0 {
		return nil, errors.New("static peers: no addresses")
	}
	return sortUnique(out), nil
}

// Resolver looks up a name's addresses; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DNS lists every address of a name, e.g. a headless Service whose records
// are the Cassandra pods.
type DNS struct {
	// Name is host:port, e.g. "dc1-all-pods-service.cassandra.svc.cluster.local:7000".
	Name string
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
}

// Peers resolves the host of Name and returns every A and AAAA record with
// Name's port, sorted and deduplicated.
func (d DNS) Peers(ctx context.Context) ([]string, error) {
	host, port, err := net.SplitHostPort(d.Name)
	if err != nil {
		return nil, fmt.Errorf("dns peers: %w", err)
	}
	if err := checkPort(port); err != nil {
		return nil, fmt.Errorf("dns peers %s: %w", d.Name, err)
	}
	var r Resolver = net.DefaultResolver
	if d.Resolver != nil {
		r = d.Resolver
	}
	addrs, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dns peers %s: %w", d.Name, err)
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, net.JoinHostPort(normalHost(a), port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dns peers %s: no addresses", d.Name)
	}
	return sortUnique(out), nil
}

// StorageServiceMBean holds the local node's view of gossip.
const StorageServiceMBean = "org.apache.cassandra.db:type=StorageService"

// DefaultStoragePort is Jolokia.StoragePort's default.
const DefaultStoragePort = 7000

// Jolokia asks the local Cassandra node, through a Jolokia agent in its JVM,
// which nodes gossip knows: live and unreachable ones both, since an
// unreachable peer is still a peer whose trust must be confirmed (probing it
// will fail, which holds a gate rather than passing it).
//
// It reads StorageService's LiveNodesWithPort and UnreachableNodesWithPort
// (Cassandra 4.0+, "127.0.0.1:7000"); when the node has no such attributes
// (Cassandra 3.11) it reads LiveNodes and UnreachableNodes ("127.0.0.1") and
// adds StoragePort. The four attributes are read in one bulk request (a
// JSON array of read requests), each with its own status: a read of several
// attributes at once fails as a whole, with status 404, when one of them
// does not exist.
type Jolokia struct {
	// URL is the agent's endpoint, e.g. http://127.0.0.1:8778/jolokia/.
	URL string
	// Username and Password, when set, are sent with basic authentication.
	Username, Password string
	// StoragePort is used only for attributes without ports (default 7000).
	StoragePort int
	// Client defaults to http.DefaultClient; the context bounds each call.
	Client *http.Client
}

// jolokiaAttributes are the attributes read, in the order of the bulk
// request: the pair with ports first, then the pair without.
func jolokiaAttributes() []string {
	return []string{"LiveNodesWithPort", "UnreachableNodesWithPort", "LiveNodes", "UnreachableNodes"}
}

// jolokiaResponse is one entry of a Jolokia reply. Jolokia answers HTTP 200
// and reports a failure (unknown MBean or attribute, an exception) in
// Status.
type jolokiaResponse struct {
	Status    int             `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"error_type"`
	Value     json.RawMessage `json:"value"`
}

// Peers reads the node's live and unreachable endpoints in one bulk request.
func (j Jolokia) Peers(ctx context.Context) ([]string, error) {
	attrs := jolokiaAttributes()
	resps, err := j.read(ctx, attrs)
	if err != nil {
		return nil, fmt.Errorf("jolokia %s: %w", redact.URL(j.URL), redact.Scrub(redact.Cause(err), j.secrets()...))
	}
	peers, err := endpoints(resps[0:2], attrs[0:2], 0)
	var notFound *attributeError
	if errors.As(err, &notFound) && notFound.status == http.StatusNotFound {
		// Cassandra 3.11: no ports in gossip's lists.
		port := j.StoragePort
		if port == 0 {
			port = DefaultStoragePort
		}
		var errPlain error
		peers, errPlain = endpoints(resps[2:4], attrs[2:4], port)
		if errPlain != nil {
			err = fmt.Errorf("%w; %w", err, errPlain)
		} else {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jolokia %s: %w", redact.URL(j.URL), redact.Scrub(redact.Cause(err), j.secrets()...))
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("jolokia %s: gossip lists no live or unreachable node", redact.URL(j.URL))
	}
	return sortUnique(peers), nil
}

// secrets are what errors must not quote: the URL's userinfo and query
// values, and the password.
func (j Jolokia) secrets() []string { return append(redact.URLSecrets(j.URL), j.Password) }

// read posts the bulk request and returns one response per attribute.
func (j Jolokia) read(ctx context.Context, attrs []string) ([]jolokiaResponse, error) {
	reqs := make([]map[string]any, len(attrs))
	for i, attr := range attrs {
		reqs[i] = map[string]any{"type": "read", "mbean": StorageServiceMBean, "attribute": attr}
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if j.Username != "" {
		req.SetBasicAuth(j.Username, j.Password)
	}
	c := j.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, trunc(data))
	}
	var resps []jolokiaResponse
	if err := json.Unmarshal(data, &resps); err != nil {
		// A request Jolokia could not take at all gets one object back.
		var one jolokiaResponse
		if json.Unmarshal(data, &one) == nil && one.Status != 0 && one.Status != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", one.Status, one.Error)
		}
		return nil, fmt.Errorf("unreadable response: %w: %s", err, trunc(data))
	}
	if len(resps) != len(attrs) {
		return nil, fmt.Errorf("%d responses to %d requests: %s", len(resps), len(attrs), trunc(data))
	}
	return resps, nil
}

// attributeError is a failed read of one attribute.
type attributeError struct {
	attr   string
	status int
	msg    string
}

func (e *attributeError) Error() string {
	return fmt.Sprintf("read StorageService.%s: status %d: %s", e.attr, e.status, e.msg)
}

// endpoints turns the values of attrs into host:port strings; port 0 means
// every value must carry its own.
func endpoints(resps []jolokiaResponse, attrs []string, port int) ([]string, error) {
	var out []string
	for i, r := range resps {
		if r.Status != http.StatusOK {
			msg := r.Error
			if msg == "" {
				msg = r.ErrorType
			}
			return nil, &attributeError{attr: attrs[i], status: r.Status, msg: msg}
		}
		var values []string
		if err := json.Unmarshal(r.Value, &values); err != nil {
			return nil, fmt.Errorf("read StorageService.%s: not a list of strings: %s", attrs[i], trunc(r.Value))
		}
		for _, v := range values {
			ep, err := parseEndpoint(v, port)
			if err != nil {
				return nil, fmt.Errorf("read StorageService.%s: %w", attrs[i], err)
			}
			out = append(out, ep)
		}
	}
	return out, nil
}

// parseEndpoint reads one of gossip's endpoints: "127.0.0.1:7000",
// "[::1]:7000", "/127.0.0.1:7000" or "host/127.0.0.1:7000" (an
// InetAddress's toString), and with defaultPort also a bare address. The
// address must be an IP, as gossip's are.
func parseEndpoint(s string, defaultPort int) (string, error) {
	v := strings.TrimSpace(s)
	if i := strings.LastIndex(v, "/"); i >= 0 {
		v = v[i+1:]
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		if defaultPort == 0 {
			return "", fmt.Errorf("endpoint %q: %w", s, err)
		}
		host, port = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"), strconv.Itoa(defaultPort)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: not an IP address", s)
	}
	if err := checkPort(port); err != nil {
		return "", fmt.Errorf("endpoint %q: %w", s, err)
	}
	return net.JoinHostPort(ip.Unmap().String(), port), nil
}

func checkPort(port string) error {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// normalHost writes an IP address in its canonical form ("::1" for
// "0:0:0:0:0:0:0:1") so that one address is one entry; names are kept.
func normalHost(h string) string {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

func sortUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func trunc(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

package cassnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// StorageServiceMBean is the MBean whose attributes describe the ring as this node's gossip sees it.
const StorageServiceMBean = "org.apache.cassandra.db:type=StorageService"

// jolokiaClient talks to agents on loopback only: no proxy, short per-call timeout.
var jolokiaClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
	Timeout:   10 * time.Second,
}

// JolokiaError is a failed Jolokia request: the agent answers HTTP 200 with a JSON status.
type JolokiaError struct {
	Status    int    `json:"status"`
	ErrorType string `json:"error_type"`
	Message   string `json:"error"`
}

func (e *JolokiaError) Error() string {
	return fmt.Sprintf("jolokia status %d: %s: %s", e.Status, e.ErrorType, e.Message)
}

// Jolokia POSTs one request (e.g. {"type":"read","mbean":...}) to the agent at url and
// returns the response's "value".
func Jolokia(ctx context.Context, url string, request any) (json.RawMessage, error) {
	body, err := json.Marshal(request)
	if err != nil {
		return nil, fmt.Errorf("cassnode: jolokia request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cassnode: jolokia request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := jolokiaClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cassnode: jolokia %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("cassnode: jolokia %s: reading the response: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cassnode: jolokia %s: HTTP %s: %.200s", url, resp.Status, data)
	}
	var r struct {
		JolokiaError
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("cassnode: jolokia %s: %w: %.200s", url, err, data)
	}
	if r.Status != http.StatusOK {
		e := r.JolokiaError
		return nil, fmt.Errorf("cassnode: jolokia %s: %w", url, &e)
	}
	return r.Value, nil
}

// ReadAttributes reads several attributes of one MBean in one request.
func ReadAttributes(ctx context.Context, url, mbean string, attrs ...string) (map[string]json.RawMessage, error) {
	v, err := Jolokia(ctx, url, map[string]any{"type": "read", "mbean": mbean, "attribute": attrs})
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("cassnode: jolokia %s %s: %w", url, mbean, err)
	}
	for _, a := range attrs {
		if _, ok := out[a]; !ok {
			return nil, fmt.Errorf("cassnode: jolokia %s %s: attribute %s missing from the answer", url, mbean, a)
		}
	}
	return out, nil
}

// Gossip is one node's view of the ring: StorageService attributes read through Jolokia, what
// `nodetool status` prints from the same MBean.
//
// Observed on Cassandra 5.0.9 (3 nodes on 127.0.0.11–13, storage_port 7000, IPv4 stack), as the
// raw Jolokia values:
//
//	LiveNodesWithPort        ["127.0.0.11:7000","127.0.0.12:7000","127.0.0.13:7000"]  (the local node included)
//	UnreachableNodesWithPort []
//	  node 2 stopped, seen from node 1: Live ["127.0.0.11:7000","127.0.0.13:7000"],
//	  Unreachable ["127.0.0.12:7000"]
//	LiveNodes                ["127.0.0.11","127.0.0.12","127.0.0.13"]  (no port)
//	LoadMapWithPort          {"127.0.0.11:7000":"101 KiB","127.0.0.12:7000":"110.1 KiB",...}
//	HostIdToEndpointWithPort {"880da53e-c09f-462a-b6f9-0246af9faeda":"127.0.0.11:7000",...}
//
// So an endpoint is "ip:port" (InetAddressAndPort.getHostAddressAndPort: an IPv6 address would
// be bracketed, "[::1]:7000"); the lists come from sets, so their order is unspecified (they
// came sorted here; ReadGossip sorts them). Note that on loopback the connections a node
// opens leave from 127.0.0.1:<ephemeral>, not from its listen_address: only the accepting end
// of an internode connection carries a gossip endpoint.
type Gossip struct {
	Node string // the node asked (its storage endpoint, "127.0.0.11:7000")
	// Live, Unreachable, Joining, Leaving and Moving are the …WithPort attributes.
	Live, Unreachable, Joining, Leaving, Moving []string
	// LiveHosts and UnreachableHosts are LiveNodes and UnreachableNodes (no port).
	LiveHosts, UnreachableHosts []string
	Load                        map[string]string // endpoint → load (LoadMapWithPort)
	HostIDs                     map[string]string // endpoint → host id (from HostIdToEndpointWithPort)
	At                          time.Time         // when the answer arrived
}

var gossipAttrs = []string{
	"LiveNodesWithPort", "UnreachableNodesWithPort", "JoiningNodesWithPort", "LeavingNodesWithPort",
	"MovingNodesWithPort", "LiveNodes", "UnreachableNodes", "LoadMapWithPort", "HostIdToEndpointWithPort",
}

// ReadGossip reads a node's ring view from its Jolokia agent at url.
func ReadGossip(ctx context.Context, url string) (*Gossip, error) {
	a, err := ReadAttributes(ctx, url, StorageServiceMBean, gossipAttrs...)
	if err != nil {
		return nil, err
	}
	g := &Gossip{At: time.Now()}
	lists := map[string]*[]string{
		"LiveNodesWithPort": &g.Live, "UnreachableNodesWithPort": &g.Unreachable, "JoiningNodesWithPort": &g.Joining,
		"LeavingNodesWithPort": &g.Leaving, "MovingNodesWithPort": &g.Moving, "LiveNodes": &g.LiveHosts,
		"UnreachableNodes": &g.UnreachableHosts,
	}
	for name, dst := range lists {
		if err := json.Unmarshal(a[name], dst); err != nil {
			return nil, fmt.Errorf("cassnode: %s from %s: %w (%s)", name, url, err, a[name])
		}
		sort.Strings(*dst)
	}
	if err := json.Unmarshal(a["LoadMapWithPort"], &g.Load); err != nil {
		return nil, fmt.Errorf("cassnode: LoadMapWithPort from %s: %w", url, err)
	}
	var idToEP map[string]string
	if err := json.Unmarshal(a["HostIdToEndpointWithPort"], &idToEP); err != nil {
		return nil, fmt.Errorf("cassnode: HostIdToEndpointWithPort from %s: %w", url, err)
	}
	g.HostIDs = map[string]string{}
	for id, ep := range idToEP {
		g.HostIDs[ep] = id
	}
	return g, nil
}

// Gossip reads the node's ring view through its Jolokia agent.
func (n *Node) Gossip(ctx context.Context) (*Gossip, error) {
	if n.JolokiaURL() == "" {
		return nil, errors.New("cassnode: the node runs without a Jolokia agent")
	}
	g, err := ReadGossip(ctx, n.JolokiaURL())
	if err != nil {
		return nil, err
	}
	g.Node = n.StorageAddr()
	return g, nil
}

// SeesAllUp reports whether the view has exactly endpoints live and nothing unreachable,
// joining, leaving or moving.
func (g *Gossip) SeesAllUp(endpoints []string) bool {
	want := slices.Clone(endpoints)
	sort.Strings(want)
	return slices.Equal(g.Live, want) && len(g.Unreachable) == 0 && len(g.Joining) == 0 &&
		len(g.Leaving) == 0 && len(g.Moving) == 0
}

// Status is nodetool's two-letter code for an endpoint: U/D (live/unreachable, "?" when
// gossip knows neither) then N/J/L/M (normal, joining, leaving, moving).
func (g *Gossip) Status(endpoint string) string {
	s := "?"
	switch {
	case slices.Contains(g.Live, endpoint):
		s = "U"
	case slices.Contains(g.Unreachable, endpoint):
		s = "D"
	}
	switch {
	case slices.Contains(g.Joining, endpoint):
		return s + "J"
	case slices.Contains(g.Leaving, endpoint):
		return s + "L"
	case slices.Contains(g.Moving, endpoint):
		return s + "M"
	}
	return s + "N"
}

// String renders the view like `nodetool status` (without tokens and ownership).
func (g *Gossip) String() string {
	eps := map[string]bool{}
	for _, l := range [][]string{g.Live, g.Unreachable, g.Joining, g.Leaving, g.Moving} {
		for _, e := range l {
			eps[e] = true
		}
	}
	for e := range g.HostIDs {
		eps[e] = true
	}
	all := make([]string, 0, len(eps))
	for e := range eps {
		all = append(all, e)
	}
	sort.Strings(all)
	var b strings.Builder
	fmt.Fprintf(&b, "as seen by %s:\n", g.Node)
	for _, e := range all {
		load := g.Load[e]
		if load == "" {
			load = "?"
		}
		fmt.Fprintf(&b, "  %s  %-18s %-12s %s\n", g.Status(e), e, load, g.HostIDs[e])
	}
	return b.String()
}

// Repair runs a full (not incremental) repair of keyspace on the node through Jolokia
// (StorageService repairAsync, then getParentRepairStatus until it completes), what
// `nodetool repair --full KEYSPACE` does. With replication factor = number of nodes, one
// node's repair covers every range.
func (n *Node) Repair(ctx context.Context, keyspace string) error {
	url := n.JolokiaURL()
	if url == "" {
		return errors.New("cassnode: the node runs without a Jolokia agent")
	}
	v, err := Jolokia(ctx, url, map[string]any{"type": "exec", "mbean": StorageServiceMBean,
		"operation": "repairAsync(java.lang.String,java.util.Map)",
		"arguments": []any{keyspace, map[string]string{"incremental": "false"}}})
	if err != nil {
		return fmt.Errorf("cassnode: repair %s on %s: %w", keyspace, n.Host, err)
	}
	var cmd int
	if err := json.Unmarshal(v, &cmd); err != nil || cmd <= 0 {
		return fmt.Errorf("cassnode: repair %s on %s: command %s: %v", keyspace, n.Host, v, err)
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		v, err := Jolokia(ctx, url, map[string]any{"type": "exec", "mbean": StorageServiceMBean,
			"operation": "getParentRepairStatus", "arguments": []any{cmd}})
		if err != nil {
			return fmt.Errorf("cassnode: repair %s on %s: status: %w", keyspace, n.Host, err)
		}
		var status []string // [state, messages...]; null while unknown
		if err := json.Unmarshal(v, &status); err != nil {
			return fmt.Errorf("cassnode: repair %s on %s: status %s: %w", keyspace, n.Host, v, err)
		}
		if len(status) > 0 {
			switch status[0] {
			case "COMPLETED":
				return nil
			case "FAILED":
				return fmt.Errorf("cassnode: repair %s on %s failed: %q", keyspace, n.Host, status[1:])
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cassnode: repair %s on %s (command %d, status %q): %w", keyspace, n.Host, cmd, status, ctx.Err())
		case <-t.C:
		}
	}
}

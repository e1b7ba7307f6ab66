package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/cassnode"
)

// TestClusterUp: every node's gossip (Jolokia, StorageService) sees all three nodes live and
// normal, they agree on the host ids, and each node serves its own certificate on CQL.
func TestClusterUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	views, err := fx.Cluster.WaitAllUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eps := fx.Cluster.Endpoints()
	var hostIDs map[string]string
	for i, v := range views {
		n := fx.Nodes[i]
		t.Logf("%s", v)
		if !slices.Equal(v.Live, eps) || len(v.Unreachable) != 0 {
			t.Errorf("%s: LiveNodesWithPort %q UnreachableNodesWithPort %q, want %q and none", n.Name, v.Live, v.Unreachable, eps)
		}
		if !slices.Equal(v.LiveHosts, fx.Coordinators()) {
			t.Errorf("%s: LiveNodes %q, want %q", n.Name, v.LiveHosts, fx.Coordinators())
		}
		for _, ep := range eps {
			if st := v.Status(ep); st != "UN" {
				t.Errorf("%s sees %s as %s, want UN", n.Name, ep, st)
			}
		}
		if len(v.HostIDs) != len(eps) {
			t.Errorf("%s knows %d host ids, want %d: %v", n.Name, len(v.HostIDs), len(eps), v.HostIDs)
		}
		if hostIDs == nil {
			hostIDs = v.HostIDs
		} else if !mapsEqual(hostIDs, v.HostIDs) {
			t.Errorf("%s's host ids %v differ from %s's %v", n.Name, v.HostIDs, fx.Nodes[0].Name, hostIDs)
		}
	}
	// The raw attribute values, as another component parsing them will get them.
	raw, err := cassnode.ReadAttributes(ctx, fx.Nodes[0].Node.JolokiaURL(), cassnode.StorageServiceMBean,
		"LiveNodesWithPort", "UnreachableNodesWithPort", "LiveNodes")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(raw)
	t.Logf("raw from %s: %s", fx.Nodes[0].Node.JolokiaURL(), b)

	pids := map[int]bool{}
	for _, n := range fx.Nodes {
		pid, err := n.Node.PID()
		if err != nil || !n.Node.Running() || pids[pid] {
			t.Errorf("%s: pid %d (%v), running %v", n.Name, pid, err, n.Node.Running())
		}
		pids[pid] = true
		// Each node serves its own leaf on its own address.
		conn, err := tls.Dial("tcp", n.Node.NativeAddr(), &tls.Config{InsecureSkipVerify: true,
			Certificates: []tls.Certificate{{Certificate: [][]byte{fx.Client.Leaf.Cert.Raw}, PrivateKey: fx.Client.Leaf.Key}}})
		if err != nil {
			t.Errorf("%s: TLS to %s: %v", n.Name, n.Node.NativeAddr(), err)
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !leaf.Equal(n.Leaf.Cert) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP(n.Addr)) {
			t.Errorf("%s serves %s with IPs %v, want its own leaf for %s", n.Name, leaf.Subject, leaf.IPAddresses, n.Addr)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

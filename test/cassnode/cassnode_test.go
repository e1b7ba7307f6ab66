package cassnode

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindLogLine(t *testing.T) {
	log := strings.Join([]string{
		"Jolokia: Agent 2.6.0 started with URL http://127.0.0.1:8778/jolokia and PID 1",
		"WARNING: Starting listening for CQL clients (no timestamp: ignored)",
		"2026-11-23T18:22:55.814Z INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T19:22:56.001+01:00 INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T18:22:57.000Z INFO  [main] Other - done",
	}, "\n") + "\n"
	p := filepath.Join(t.TempDir(), "stdout.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, line, err := FindLogLine(p, CQLReadyLine)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 23, 18, 22, 56, 1e6, time.UTC)
	if !ts.Equal(want) || !strings.Contains(line, "+01:00") {
		t.Fatalf("got %v %q, want %v (last match)", ts, line, want)
	}
	if _, _, err := FindLogLine(p, "never logged"); !errors.Is(err, ErrNoLogLine) {
		t.Fatalf("missing line: err = %v, want ErrNoLogLine", err)
	}
}

func TestJavaMajor(t *testing.T) {
	for in, want := range map[string]int{
		`openjdk version "17.0.15" 2025-04-15`: 17,
		`openjdk version "11.0.2" 2019-01-15`:  11,
		`java version "1.8.0_402"`:             8,
		`openjdk version "21" 2023-09-19`:      21,
		`garbage`:                              0,
	} {
		if got := javaMajor(in); got != want {
			t.Errorf("javaMajor(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "cassandra", "cassandra.yaml.tmpl")); err != nil {
		t.Fatal(err)
	}
}

func TestGossipStatus(t *testing.T) {
	eps := []string{"127.0.0.13:7000", "127.0.0.11:7000", "127.0.0.12:7000"}
	g := &Gossip{Node: "127.0.0.11:7000",
		Live:        []string{"127.0.0.11:7000", "127.0.0.13:7000"},
		Unreachable: []string{"127.0.0.12:7000"},
		Joining:     []string{"127.0.0.13:7000"},
		Load:        map[string]string{"127.0.0.11:7000": "101 KiB"},
		HostIDs:     map[string]string{"127.0.0.11:7000": "id-1", "127.0.0.12:7000": "id-2", "127.0.0.13:7000": "id-3"}}
	for ep, want := range map[string]string{"127.0.0.11:7000": "UN", "127.0.0.12:7000": "DN", "127.0.0.13:7000": "UJ", "10.0.0.1:7000": "?N"} {
		if got := g.Status(ep); got != want {
			t.Errorf("Status(%s) = %s, want %s", ep, got, want)
		}
	}
	if g.SeesAllUp(eps) {
		t.Error("SeesAllUp with a node unreachable and one joining")
	}
	out := g.String()
	if !strings.Contains(out, "DN  127.0.0.12:7000    ?            id-2") || !strings.Contains(out, "UN  127.0.0.11:7000    101 KiB") {
		t.Errorf("String():\n%s", out)
	}
	g.Live, g.Unreachable, g.Joining = []string{"127.0.0.11:7000", "127.0.0.12:7000", "127.0.0.13:7000"}, nil, nil
	if !g.SeesAllUp(eps) {
		t.Error("SeesAllUp false with every endpoint live (order must not matter)")
	}
	g.Live = append(g.Live, "127.0.0.14:7000")
	if g.SeesAllUp(eps) {
		t.Error("SeesAllUp true with a fourth, unexpected live node")
	}
}

// A leftover node on a cluster address makes StartCluster fail before it prepares or starts
// anything, naming the busy endpoint.
func TestStartClusterRefusesBusyAddress(t *testing.T) {
	t.Setenv(NoLockEnv, "1") // do not wait for a cluster another package may be running
	l, err := net.Listen("tcp", "127.0.0.31:7000")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.31:7000 here: %v", err)
	}
	defer l.Close()
	_, err = StartCluster(context.Background(), ClusterOptions{Dir: t.TempDir(), Addrs: []string{"127.0.0.31", "127.0.0.32"},
		PrepareNode: func(context.Context, *NodeSpec) error {
			t.Error("PrepareNode called although an address is busy")
			return nil
		}})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.31:7000 already in use") {
		t.Errorf("err = %v, want 127.0.0.31:7000 already in use", err)
	}
	_, err = StartCluster(context.Background(), ClusterOptions{Dir: t.TempDir(), Addrs: []string{"10.0.0.1"},
		PrepareNode: func(context.Context, *NodeSpec) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Errorf("a non-loopback address: err = %v", err)
	}
}

package cql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func TestServerNameFollowsTheDialledName(t *testing.T) {
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	tests := []struct {
		cfg   *tls.Config
		hosts []string
		want  string
	}{
		{base, []string{"node1.cassandra.test:9042"}, "node1.cassandra.test"},
		{base, []string{"node1.cassandra.test"}, "node1.cassandra.test"},
		{base, []string{"127.0.0.1:9042"}, ""},
		{base, []string{"[::1]:9042"}, ""},
		{base, []string{"a:9042", "b:9042"}, ""}, // one config for several hosts: left alone
		{&tls.Config{ServerName: "explicit.example"}, []string{"node1.cassandra.test:9042"}, "explicit.example"},
	}
	for _, tc := range tests {
		cl := (&Client{TLS: tc.cfg}).cluster(context.Background(), tc.hosts...)
		if got := cl.HostDialer.(*hostDialer).tls.ServerName; got != tc.want {
			t.Errorf("hosts %v, ServerName %q: got %q, want %q", tc.hosts, tc.cfg.ServerName, got, tc.want)
		}
	}
	if base.ServerName != "" {
		t.Error("the shared config was modified")
	}
}

// A session reads no schema metadata: the init's wait would otherwise pay a
// schema agreement and a read of every table and column at each probe.
func TestSessionsReadNoSchemaMetadata(t *testing.T) {
	for i, c := range []*Client{{}, {Username: "u", Password: []byte("p")}} {
		if m := c.cluster(context.Background(), "127.0.0.1:9042").Metadata.CacheMode; m != gocql.Disabled {
			t.Errorf("client %d: metadata cache mode %v, want Disabled", i, m)
		}
	}
}

// silentServer accepts connections, reads whatever the client sends and
// never answers — a hung node, or a port that is not CQL. A connection is
// closed on its side as soon as the client closes it, so a released client
// socket shows up as one fewer descriptor for the whole process.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestProbeOfSilentHostReleasesEverything: probes of a host that accepts
// and never answers each end at their timeout, and once they have returned
// the process's goroutines and file descriptors go back to where they were
// (the sidecar probes every resync: any leak grows without bound).
func TestProbeOfSilentHostReleasesEverything(t *testing.T) {
	addr := silentServer(t)
	for _, tc := range []struct {
		name             string
		tls              bool
		connect, probe   time.Duration
		wantReturnWithin time.Duration
	}{
		// The probe's deadline ends first.
		{"plaintext, probe deadline first", false, 2 * time.Second, 200 * time.Millisecond, 1500 * time.Millisecond},
		// The driver's connect timeout ends first.
		{"plaintext, connect timeout first", false, 200 * time.Millisecond, 2 * time.Second, 1500 * time.Millisecond},
		// The sidecar's case: TLS, whose handshake waits for a ServerHello that never comes.
		{"TLS, probe deadline first", true, 2 * time.Second, 200 * time.Millisecond, 1500 * time.Millisecond},
		{"TLS, connect timeout first", true, 200 * time.Millisecond, 2 * time.Second, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{ConnectTimeout: tc.connect, Timeout: tc.connect}
			if tc.tls {
				c.TLS = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "node1", MinVersion: tls.VersionTLS12}
			}
			// One probe first, so the driver's lazily started globals are in the baseline.
			probeOnce(t, c, addr, tc.probe, tc.wantReturnWithin)
			baseG, baseFD := settled(t)
			const n = 8
			for i := 0; i < n; i++ {
				probeOnce(t, c, addr, tc.probe, tc.wantReturnWithin)
			}
			deadline := time.Now().Add(10 * time.Second)
			var g, fd int
			for {
				g, fd = runtime.NumGoroutine(), openFDs(t)
				if g <= baseG && fd <= baseFD {
					break
				}
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("after %d probes: %d goroutines (baseline %d), %d fds (baseline %d)\n%s",
						n, g, baseG, fd, baseFD, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(20 * time.Millisecond) // polling a count, not synchronising
			}
			t.Logf("after %d probes: %d goroutines (baseline %d), %d fds (baseline %d)", n, g, baseG, fd, baseFD)
		})
	}
}

func probeOnce(t *testing.T, c *Client, addr string, timeout, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := c.Probe(ctx, addr)
	if err == nil {
		t.Fatal("a silent host answered")
	}
	if d := time.Since(start); d > within {
		t.Fatalf("the probe took %v, want it to end at its timeout (%v)", d, within)
	}
	if Classify(err) != "timeout" {
		t.Errorf("cause %q (%v), want timeout", Classify(err), err)
	}
}

// settled waits until the goroutine and descriptor counts stop falling and
// returns them: the baseline.
func settled(t *testing.T) (int, int) {
	t.Helper()
	g, fd := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		g2, fd2 := runtime.NumGoroutine(), openFDs(t)
		if g2 == g && fd2 == fd {
			break
		}
		g, fd = g2, fd2
	}
	return g, fd
}

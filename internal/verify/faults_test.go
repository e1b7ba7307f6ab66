package verify

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// faultServer accepts connections and hands each to fault, closing it
// afterwards; cleanup closes everything still open.
func faultServer(t *testing.T, fault func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				stop := context.AfterFunc(contextOf(done), func() { c.Close() })
				defer stop()
				fault(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func contextOf(done chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-done; cancel() }()
	return ctx
}

// readClientHello consumes what the client sends first.
func readClientHello(c net.Conn) {
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(buf)
}

// TestVerifyFaults: an endpoint that accepts and never answers, resets the
// connection, answers garbage or a TLS alert: Until ends at its deadline
// with an error that names the endpoint and says what happened.
func TestVerifyFaults(t *testing.T) {
	ca, _ := pkitest.CA("ca")
	want, _ := cert(t, ca)
	faults := []struct {
		name  string
		fault func(net.Conn)
		cause string
	}{
		{"accepts and never answers", func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}, "did not answer the TLS handshake"},
		{"resets the connection", func(c net.Conn) {
			readClientHello(c)
			c.(*net.TCPConn).SetLinger(0) // close with RST
		}, "connection reset"},
		{"answers garbage", func(c net.Conn) {
			readClientHello(c)
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS"))
		}, "not with TLS"},
		{"answers a TLS alert", func(c net.Conn) {
			readClientHello(c)
			c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}) // fatal handshake_failure
		}, "handshake failure"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			addr := faultServer(t, f.fault)
			const deadline = 2 * time.Second // room for a loaded machine: the first attempt must see the fault
			start := time.Now()
			_, err := Until(context.Background(), addr, want.Cert, Options{Deadline: deadline, Backoff: 50 * time.Millisecond})
			took := time.Since(start)
			if err == nil {
				t.Fatal("verified against a broken endpoint")
			}
			if took > deadline+time.Second {
				t.Errorf("Until took %v, deadline %v", took, deadline)
			}
			if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), f.cause) {
				t.Errorf("error %q, want the endpoint and %q", err, f.cause)
			}
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
		})
	}
}

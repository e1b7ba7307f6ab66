package verify

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// server serves whichever certificate cur points at, and requires a client
// certificate, as Cassandra's ports do.
func server(t *testing.T, cur *atomic.Pointer[tls.Certificate]) string {
	return pkitest.ServeTLS(t, &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil },
		ClientAuth:     tls.RequireAnyClientCert,
	}, nil)
}

func cert(t *testing.T, ca *pkitest.Cert) (*pkitest.Cert, *tls.Certificate) {
	leaf, err := pkitest.Leaf(ca, "node1", pkitest.P256)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
}

func TestUntilWaitsForTheNewCertificate(t *testing.T) {
	ca, _ := pkitest.CA("ca")
	_, oldCert := cert(t, ca)
	newLeaf, newCert := cert(t, ca)
	var cur atomic.Pointer[tls.Certificate]
	cur.Store(oldCert)
	addr := server(t, &cur)
	go func() { time.Sleep(300 * time.Millisecond); cur.Store(newCert) }()
	fp, err := Until(context.Background(), addr, newLeaf.Cert, Options{Deadline: 10 * time.Second, Backoff: 50 * time.Millisecond, Client: newCert})
	if err != nil || fp != pki.Fingerprint(newLeaf.Cert) {
		t.Fatalf("fp=%s err=%v", fp, err)
	}
}

func TestUntilReportsWhatIsServedAtTheDeadline(t *testing.T) {
	ca, _ := pkitest.CA("ca")
	oldLeaf, oldCert := cert(t, ca)
	newLeaf, _ := cert(t, ca)
	var cur atomic.Pointer[tls.Certificate]
	cur.Store(oldCert)
	addr := server(t, &cur)
	fp, err := Until(context.Background(), addr, newLeaf.Cert, Options{Deadline: 400 * time.Millisecond, Backoff: 50 * time.Millisecond})
	if err == nil || fp != pki.Fingerprint(oldLeaf.Cert) || !strings.Contains(err.Error(), "still serves") {
		t.Fatalf("fp=%s err=%v, want the old fingerprint and a 'still serves' error", fp, err)
	}
	// Nothing listening: an error that says so.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	if _, err := Until(context.Background(), dead, newLeaf.Cert, Options{Deadline: 200 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "no certificate seen") {
		t.Fatalf("dead endpoint: %v", err)
	}
}

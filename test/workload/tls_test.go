package workload

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// server is a TLS server on 127.0.0.1 requiring a client certificate from caA or caB; it
// reports the serial of each client certificate it saw.
func server(t *testing.T, leaf *pkitest.Cert, cas ...*pkitest.Cert) (string, chan string) {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c.Cert)
	}
	seen := make(chan string, 16)
	addr := pkitest.ServeTLS(t, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}, func(c *tls.Conn) {
		if c.Handshake() == nil {
			seen <- c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
	})
	return addr, seen
}

func handshake(d *DynamicTLS, addr, host string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, d.Config(host))
	if err := tc.Handshake(); err != nil {
		return err
	}
	// TLS 1.3: the server's verdict on the client certificate arrives after the handshake.
	_, err = tc.Read(make([]byte, 1))
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		return err
	}
	return nil
}

func publishDir(t *testing.T, dir string, leaf *pkitest.Cert, cas ...*pkitest.Cert) {
	t.Helper()
	var bundle []byte
	for _, c := range cas {
		bundle = append(bundle, pkitest.CertPEM(c.Cert)...)
	}
	if err := kubeletfs.Write(dir, map[string][]byte{"tls.crt": pkitest.CertPEM(leaf.Cert),
		"tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": bundle}); err != nil {
		t.Fatal(err)
	}
}

func serialOf(c *pkitest.Cert) string { return c.Cert.SerialNumber.String() }

// TestDynamicTLSFollowsFiles: one DynamicTLS, files swapped under it the kubelet's way: the
// next handshake sends the new client certificate and trusts the new CA bundle, verifies the
// dialled IP against the server's SANs, and keeps the last good material when a file breaks.
func TestDynamicTLSFollowsFiles(t *testing.T) {
	caA, _ := pkitest.CA("CA A")
	caB, _ := pkitest.CA("CA B")
	srvA, _ := pkitest.Leaf(caA, "server-a", pkitest.P256) // IP SAN 127.0.0.1
	srvB, _ := pkitest.Leaf(caB, "server-b", pkitest.P256)
	client1, _ := pkitest.New(caA, pkitest.Options{CN: "client-1"})
	client2, _ := pkitest.New(caA, pkitest.Options{CN: "client-2"})
	addrA, seenA := server(t, srvA, caA, caB)
	addrB, _ := server(t, srvB, caA, caB)

	dir := filepath.Join(t.TempDir(), "client-tls")
	publishDir(t, dir, client1, caA)
	d, err := NewDynamicTLS(TLSFiles{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "tls.crt"),
		KeyFile: filepath.Join(dir, "tls.key")})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(d, addrA, "127.0.0.1"); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	if got := <-seenA; got != serialOf(client1) {
		t.Errorf("server saw client serial %s, want client-1's %s", got, serialOf(client1))
	}
	if err := handshake(d, addrA, "127.0.0.2"); err == nil || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Errorf("a server certificate without the dialled IP was accepted (err %v)", err)
	}
	if err := handshake(d, addrB, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("a server from an untrusted CA: err %v, want unknown authority", err)
	}

	// Rotation: a new client leaf and a CA bundle with B, swapped in atomically.
	publishDir(t, dir, client2, caA, caB)
	if err := handshake(d, addrA, "127.0.0.1"); err != nil {
		t.Fatalf("handshake after the client rotation: %v", err)
	}
	if got := <-seenA; got != serialOf(client2) {
		t.Errorf("after the swap the server saw serial %s, want client-2's %s", got, serialOf(client2))
	}
	if err := handshake(d, addrB, "127.0.0.1"); err != nil {
		t.Errorf("server from CA B after B joined the bundle: %v", err)
	}
	if ca, cert := d.Loads(); ca != 2 || cert != 2 {
		t.Errorf("loads: CA %d, cert %d; want 2 and 2", ca, cert)
	}

	// A broken bundle and a key that does not match: the last good material stays in use.
	if err := kubeletfs.Write(dir, map[string][]byte{"tls.crt": pkitest.CertPEM(client1.Cert),
		"tls.key": pkitest.KeyPEM(client2.Key), "ca.crt": []byte("not PEM")}); err != nil {
		t.Fatal(err)
	}
	if err := handshake(d, addrB, "127.0.0.1"); err != nil {
		t.Errorf("with broken files the last good material should be used: %v", err)
	}
	if d.LastError() == nil {
		t.Errorf("broken files left no LastError")
	}
	if ca, cert := d.Loads(); ca != 2 || cert != 2 {
		t.Errorf("broken files were loaded: CA %d, cert %d loads", ca, cert)
	}
}

func TestNewDynamicTLSRefusesUnusableFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewDynamicTLS(TLSFiles{CAFile: filepath.Join(dir, "missing.crt")}); err == nil {
		t.Error("a missing CA file was accepted")
	}
	if _, err := NewDynamicTLS(TLSFiles{CAFile: "x", CertFile: "y"}); err == nil {
		t.Error("a certificate without a key was accepted")
	}
	if _, err := NewDynamicTLS(TLSFiles{}); err == nil {
		t.Error("no CA file was accepted")
	}
}

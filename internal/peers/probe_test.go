package peers

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// fixture is a small PKI: CAs A and B, a server leaf and a client leaf from
// A, and a client leaf from X, a CA nobody trusts.
type fixture struct {
	caA, caB, caX          *pkitest.Cert
	server, client, wrongC *pkitest.Cert
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	f.caA = must(pkitest.CA("cluster CA A"))
	f.caB = must(pkitest.CA("cluster CA B"))
	f.caX = must(pkitest.CA("unknown CA X"))
	f.server = must(pkitest.Leaf(f.caA, "node1", pkitest.P256))
	f.client = must(pkitest.Leaf(f.caA, "node2", pkitest.P256))
	f.wrongC = must(pkitest.Leaf(f.caX, "intruder", pkitest.P256))
	return f
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// tlsCert makes a tls.Certificate of c followed by chain.
func tlsCert(c *pkitest.Cert, chain ...*x509.Certificate) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, ch := range chain {
		tc.Certificate = append(tc.Certificate, ch.Raw)
	}
	return tc
}

func pool(cas ...*pkitest.Cert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c.Cert)
	}
	return p
}

func subjects(cas ...*pkitest.Cert) [][]byte {
	var out [][]byte
	for _, c := range cas {
		out = append(out, c.Cert.RawSubject)
	}
	return out
}

// sameNames compares lists of DER names as sets of equal size.
func sameNames(got, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, w) }) {
			return false
		}
	}
	return true
}

func TestProbe(t *testing.T) {
	f := newFixture(t)
	client, wrong := tlsCert(f.client), tlsCert(f.wrongC)
	cases := []struct {
		name       string
		version    uint16 // server MaxVersion
		clientAuth tls.ClientAuthType
		clientCAs  *x509.CertPool
		offer      *tls.Certificate
		requested  bool
		names      [][]byte
		// handshakeErr: the probe sees the server's refusal (TLS 1.2 only).
		handshakeErr bool
	}{
		{"TLS 1.3, two CAs, accepted client", tls.VersionTLS13, tls.RequireAndVerifyClientCert, pool(f.caA, f.caB), &client, true, subjects(f.caA, f.caB), false},
		{"TLS 1.2, two CAs, accepted client", tls.VersionTLS12, tls.RequireAndVerifyClientCert, pool(f.caA, f.caB), &client, true, subjects(f.caA, f.caB), false},
		// In 1.3 the client has finished before the server judges its
		// certificate: the refusal comes after we hung up.
		{"TLS 1.3, client refused", tls.VersionTLS13, tls.RequireAndVerifyClientCert, pool(f.caA, f.caB), &wrong, true, subjects(f.caA, f.caB), false},
		{"TLS 1.2, client refused", tls.VersionTLS12, tls.RequireAndVerifyClientCert, pool(f.caA, f.caB), &wrong, true, subjects(f.caA, f.caB), true},
		{"TLS 1.3, no client certificate offered", tls.VersionTLS13, tls.RequireAndVerifyClientCert, pool(f.caB), nil, true, subjects(f.caB), false},
		{"TLS 1.2, no client certificate offered", tls.VersionTLS12, tls.RequireAndVerifyClientCert, pool(f.caB), nil, true, subjects(f.caB), true},
		{"TLS 1.3, no client auth", tls.VersionTLS13, tls.NoClientCert, nil, &client, false, nil, false},
		{"TLS 1.2, no client auth", tls.VersionTLS12, tls.NoClientCert, nil, &client, false, nil, false},
		{"TLS 1.3, request without CA names", tls.VersionTLS13, tls.RequestClientCert, nil, &client, true, nil, false},
		{"TLS 1.2, request without CA names", tls.VersionTLS12, tls.RequestClientCert, nil, &client, true, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := pkitest.ServeTLS(t, &tls.Config{
				Certificates: []tls.Certificate{tlsCert(f.server, f.caA.Cert)},
				ClientAuth:   tc.clientAuth,
				ClientCAs:    tc.clientCAs,
				MaxVersion:   tc.version,
			}, nil)
			obs := Probe(context.Background(), addr, ProbeOptions{Client: tc.offer})
			if obs.Err != nil {
				t.Fatalf("Err = %v", obs.Err)
			}
			if obs.Addr != addr || obs.Version != tc.version {
				t.Errorf("Addr %q Version %x, want %q %x", obs.Addr, obs.Version, addr, tc.version)
			}
			if len(obs.Chain) != 2 || !obs.Chain[0].Equal(f.server.Cert) || !obs.Chain[1].Equal(f.caA.Cert) {
				t.Errorf("Chain = %v, want the server leaf and CA A", obs.Chain)
			}
			if obs.ClientAuthRequested != tc.requested {
				t.Errorf("ClientAuthRequested = %v, want %v", obs.ClientAuthRequested, tc.requested)
			}
			if !sameNames(obs.AcceptableCAs, tc.names) {
				t.Errorf("AcceptableCAs = %q, want %q", CANames(obs), CANames(Observation{AcceptableCAs: tc.names}))
			}
			if (obs.HandshakeErr != nil) != tc.handshakeErr {
				t.Errorf("HandshakeErr = %v, want an error: %v", obs.HandshakeErr, tc.handshakeErr)
			}
			for _, ca := range []*pkitest.Cert{f.caA, f.caB, f.caX} {
				want := slices.ContainsFunc(tc.names, func(n []byte) bool { return bytes.Equal(n, ca.Cert.RawSubject) })
				if got := obs.Accepts(ca.Cert); got != want {
					t.Errorf("Accepts(%s) = %v, want %v", ca.Cert.Subject, got, want)
				}
			}
			if !obs.ServedBy(f.caA.Cert) || obs.ServedBy(f.caB.Cert) {
				t.Errorf("ServedBy(A) = %v, ServedBy(B) = %v, want true, false", obs.ServedBy(f.caA.Cert), obs.ServedBy(f.caB.Cert))
			}
		})
	}
}

func TestCANames(t *testing.T) {
	f := newFixture(t)
	obs := Observation{ClientAuthRequested: true, AcceptableCAs: append(subjects(f.caA, f.caB), []byte{0x30, 0x03, 0x01})}
	got := CANames(obs)
	want := []string{"CN=cluster CA A,O=cassandra-tls-agent test", "CN=cluster CA B,O=cassandra-tls-agent test", "(unparsable name 300301)"}
	if !slices.Equal(got, want) {
		t.Errorf("CANames = %q, want %q", got, want)
	}
	if got[0] != f.caA.Cert.Subject.String() {
		t.Errorf("CANames[0] = %q, the certificate says %q", got[0], f.caA.Cert.Subject.String())
	}
}

// TestProbeFailures: every failure ends the probe with an error that names
// the address and the cause, within the timeout.
func TestProbeFailures(t *testing.T) {
	refused := closedPort(t)
	silent := pkitest.ServeSilent(t)
	plain := plainServer(t, "HTTP/1.1 400 Bad Request\r\n\r\n")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name, addr string
		ctx        context.Context
		want       []string
	}{
		{"refused", refused, context.Background(), []string{refused, "connection refused"}},
		{"silent server", silent, context.Background(), []string{"tls handshake with " + silent, "no answer within 300ms", "deadline exceeded"}},
		{"not TLS", plain, context.Background(), []string{"tls handshake with " + plain}},
		{"context cancelled", silent, cancelled, []string{silent, "canceled"}},
		{"no port", "127.0.0.1", context.Background(), []string{"127.0.0.1", "missing port"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			obs := Probe(tc.ctx, tc.addr, ProbeOptions{Timeout: 300 * time.Millisecond})
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v with a 300ms timeout", took)
			}
			if obs.Err == nil {
				t.Fatalf("no error: %+v", obs)
			}
			for _, w := range tc.want {
				if !strings.Contains(obs.Err.Error(), w) {
					t.Errorf("Err %q lacks %q", obs.Err, w)
				}
			}
			if obs.Chain != nil || obs.ClientAuthRequested {
				t.Errorf("learned something from a failed probe: %+v", obs)
			}
		})
	}
	t.Run("timeout is a deadline error", func(t *testing.T) {
		obs := Probe(context.Background(), silent, ProbeOptions{Timeout: 100 * time.Millisecond})
		if !errors.Is(obs.Err, context.DeadlineExceeded) {
			t.Errorf("Err %v is not context.DeadlineExceeded", obs.Err)
		}
	})
}

// TestProbeNoLeak: a server that accepts and never speaks costs the probe
// its timeout, then nothing: no goroutine stays behind.
func TestProbeNoLeak(t *testing.T) {
	silent := pkitest.ServeSilent(t)
	before := runtime.NumGoroutine()
	const n = 10
	obs := ProbeAll(context.Background(), slices.Repeat([]string{silent}, n), ProbeOptions{Timeout: 200 * time.Millisecond, Parallel: 4})
	for _, o := range obs {
		if !errors.Is(o.Err, context.DeadlineExceeded) {
			t.Errorf("Err = %v, want a timeout", o.Err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the probes:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}

func TestProbeAll(t *testing.T) {
	f := newFixture(t)
	serve := func(leaf *pkitest.Cert) string {
		return pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf)},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool(f.caA)}, nil)
	}
	leaves := []*pkitest.Cert{f.server, must(pkitest.Leaf(f.caA, "node2", pkitest.P256)), must(pkitest.Leaf(f.caB, "node3", pkitest.P256))}
	addrs := []string{serve(leaves[0]), closedPort(t), serve(leaves[1]), serve(leaves[2])}
	want := []*pkitest.Cert{leaves[0], nil, leaves[1], leaves[2]} // nil: an error
	for _, parallel := range []int{0, 1, 2, 100} {
		obs := ProbeAll(context.Background(), addrs, ProbeOptions{Parallel: parallel, Timeout: 2 * time.Second})
		if len(obs) != len(addrs) {
			t.Fatalf("parallel %d: %d observations for %d addresses", parallel, len(obs), len(addrs))
		}
		for i, o := range obs {
			if o.Addr != addrs[i] {
				t.Errorf("parallel %d: observation %d is of %s, want %s", parallel, i, o.Addr, addrs[i])
			}
			if want[i] == nil {
				if o.Err == nil {
					t.Errorf("parallel %d: the closed port gave no error", parallel)
				}
				continue
			}
			if o.Err != nil || len(o.Chain) != 1 || !o.Chain[0].Equal(want[i].Cert) {
				t.Errorf("parallel %d: observation %d: Err %v, chain %v", parallel, i, o.Err, o.Chain)
			}
		}
	}
	if got := ProbeAll(context.Background(), nil, ProbeOptions{}); len(got) != 0 {
		t.Errorf("ProbeAll(nil) = %v", got)
	}
}

// TestServedBy: chains from a root through an intermediate, served with and
// without the intermediate, against the root, the intermediate, an
// unrelated CA and a CA that shares the root's subject but not its key.
func TestServedBy(t *testing.T) {
	root := must(pkitest.CA("rotation root"))
	twin := must(pkitest.CA("rotation root")) // same subject, other key
	inter := must(pkitest.New(root, pkitest.Options{CN: "rotation intermediate", IsCA: true}))
	leaf := must(pkitest.Leaf(inter, "node1", pkitest.P256))
	other := must(pkitest.CA("other root"))
	// A truststore may hold a self-signed certificate that is no CA;
	// CheckSignatureFrom refuses it as an issuer, ServedBy still checks the key.
	anchor := must(pkitest.New(nil, pkitest.Options{CN: "plain anchor"}))
	anchored := must(pkitest.Leaf(anchor, "node9", pkitest.P256))

	// Served for real, to use a chain as the probe sees it.
	addr := pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, inter.Cert)}}, nil)
	served := Probe(context.Background(), addr, ProbeOptions{})
	if served.Err != nil || len(served.Chain) != 2 {
		t.Fatalf("probe: %v, chain %v", served.Err, served.Chain)
	}

	// A top certificate whose signature cannot be checked: names decide.
	unsupported := *inter.Cert
	unsupported.SignatureAlgorithm = x509.UnknownSignatureAlgorithm

	chain := func(cs ...*x509.Certificate) Observation { return Observation{Chain: cs} }
	cases := []struct {
		name string
		obs  Observation
		ca   *x509.Certificate
		want bool
	}{
		{"served leaf+intermediate, root issued the top", served, root.Cert, true},
		{"served leaf+intermediate, ends at the intermediate", served, inter.Cert, true},
		{"served leaf+intermediate, same-subject twin of the root", served, twin.Cert, false},
		{"served leaf+intermediate, unrelated CA", served, other.Cert, false},
		{"leaf only, its issuer", chain(leaf.Cert), inter.Cert, true},
		{"leaf only, the root is not seen", chain(leaf.Cert), root.Cert, false},
		{"full chain to the root", chain(leaf.Cert, inter.Cert, root.Cert), root.Cert, true},
		{"full chain, intermediate in the middle", chain(leaf.Cert, inter.Cert, root.Cert), inter.Cert, true},
		{"full chain, twin", chain(leaf.Cert, inter.Cert, root.Cert), twin.Cert, false},
		{"anchor without CA constraints", chain(anchored.Cert), anchor.Cert, true},
		{"unsupported signature, names match", chain(leaf.Cert, &unsupported), root.Cert, true},
		{"unsupported signature, names match, twin too", chain(leaf.Cert, &unsupported), twin.Cert, true},
		{"unsupported signature, other name", chain(leaf.Cert, &unsupported), other.Cert, false},
		{"nothing served", Observation{}, root.Cert, false},
		{"nil CA", served, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.obs.ServedBy(tc.ca); got != tc.want {
				t.Errorf("ServedBy = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAcceptsSameSubject: a CertificateRequest carries names only, so a
// peer that trusts CA A is reported as accepting A's same-named twin. The
// rotation must use distinct subjects for CAs that replace each other.
func TestAcceptsSameSubject(t *testing.T) {
	a := must(pkitest.CA("cluster CA"))
	twin := must(pkitest.CA("cluster CA"))
	other := must(pkitest.CA("cluster CA 2"))
	server := must(pkitest.Leaf(a, "node1", pkitest.P256))
	addr := pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(server)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool(a)}, nil)
	obs := Probe(context.Background(), addr, ProbeOptions{})
	if obs.Err != nil {
		t.Fatal(obs.Err)
	}
	if !obs.Accepts(a.Cert) || !obs.Accepts(twin.Cert) || obs.Accepts(other.Cert) {
		t.Errorf("Accepts: a %v, twin %v, other %v; want true, true (names only), false",
			obs.Accepts(a.Cert), obs.Accepts(twin.Cert), obs.Accepts(other.Cert))
	}
	// ServedBy checks keys, so it does tell the twins apart.
	if !obs.ServedBy(a.Cert) || obs.ServedBy(twin.Cert) {
		t.Errorf("ServedBy: a %v, twin %v; want true, false", obs.ServedBy(a.Cert), obs.ServedBy(twin.Cert))
	}
	// A peer that did not ask for a certificate accepts nothing.
	if (Observation{AcceptableCAs: subjects(a)}).Accepts(a.Cert) {
		t.Error("Accepts without a certificate request")
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// plainServer answers every connection with reply, in clear text.
func plainServer(t *testing.T, reply string) string {
	t.Helper()
	return pkitest.ServeTCP(t, func(c net.Conn) {
		c.Write([]byte(reply))
		c.Close()
	})
}

// TestProbeChainKeptOnFailure: a server whose key does not match its
// certificate fails the handshake after sending the certificate (its
// signature does not verify). The chain is kept; the observation is not
// complete, because no CertificateRequest was seen.
func TestProbeChainKeptOnFailure(t *testing.T) {
	f := newFixture(t)
	otherKey := must(pkitest.NewKey(pkitest.P256))
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			addr := pkitest.ServeTLS(t, &tls.Config{
				Certificates: []tls.Certificate{{Certificate: [][]byte{f.server.Cert.Raw}, PrivateKey: otherKey}},
				ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool(f.caA),
				MaxVersion: version,
			}, nil)
			obs := Probe(context.Background(), addr, ProbeOptions{})
			if obs.Err == nil || !strings.Contains(obs.Err.Error(), "tls handshake with "+addr+": served chain seen, no certificate request seen: ") {
				t.Errorf("Err = %v", obs.Err)
			}
			if len(obs.Chain) != 1 || !obs.Chain[0].Equal(f.server.Cert) || obs.Version != version {
				t.Errorf("Chain %v, version %x", obs.Chain, obs.Version)
			}
			if obs.ClientAuthRequested || obs.Accepts(f.caA.Cert) {
				t.Errorf("a request was reported: %+v", obs)
			}
		})
	}
}

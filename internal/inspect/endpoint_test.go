package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/selfsigned"
)

type endpointFixture struct {
	ca, otherCA, sameNameCA         *pkitest.Cert
	leaf, leafOnlyIP, expiredLeaf   *pkitest.Cert
	client, stranger, expiredClient *tls.Certificate
}

func selfSignedClient(t *testing.T, subject string, now time.Time, days int) *tls.Certificate {
	t.Helper()
	seq, err := selfsigned.ParseSubject(subject)
	if err != nil {
		t.Fatal(err)
	}
	r, err := selfsigned.Generate(selfsigned.Options{Subject: seq, KeyType: selfsigned.P256, Days: days, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{r.Cert.Raw}, PrivateKey: r.Key, Leaf: r.Cert}
}

func newEndpointFixture(t *testing.T) *endpointFixture {
	t.Helper()
	var f endpointFixture
	must := func(c *pkitest.Cert, err error) *pkitest.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.ca = must(pkitest.CA("managed CA"))
	f.otherCA = must(pkitest.CA("some other CA"))
	f.sameNameCA = must(pkitest.CA("managed CA"))
	f.leaf = must(pkitest.New(f.ca, pkitest.Options{CN: "node1", DNSNames: []string{"*.cassandra.test"}}))
	f.leafOnlyIP = must(pkitest.New(f.ca, pkitest.Options{CN: "node1", IPs: []net.IP{net.IPv4(10, 0, 0, 5)}}))
	f.expiredLeaf = must(pkitest.New(f.ca, pkitest.Options{CN: "node1", DNSNames: []string{"*.cassandra.test"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}))
	f.client = selfSignedClient(t, "/CN=orders/O=Example", time.Now(), 30)
	f.stranger = selfSignedClient(t, "/CN=stranger", time.Now(), 30)
	f.expiredClient = selfSignedClient(t, "/CN=expired/O=Example", time.Now().AddDate(0, 0, -10), 1)
	return &f
}

func serverCert(leaf *pkitest.Cert, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func TestEndpoint(t *testing.T) {
	f := newEndpointFixture(t)
	clients := x509.NewCertPool()
	clients.AddCert(f.client.Leaf)
	clients.AddCert(f.expiredClient.Leaf)
	managed := func(version uint16) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients, MaxVersion: version}
	}
	cases := []struct {
		name       string
		server     *tls.Config
		serverName string
		cas        []*x509.Certificate
		client     *tls.Certificate
		within     time.Duration
		verified   bool
		clientAuth string
		accepted   *bool // nil: no verdict expected
		problems   []string
		notes      []string
	}{
		{name: "managed service, matching name, trusted client (TLS 1.3)", server: managed(tls.VersionTLS13), serverName: "node1.cassandra.test",
			cas: []*x509.Certificate{f.ca.Cert}, client: f.client, verified: true, clientAuth: "requested or required", accepted: ptr(true)},
		{name: "managed service, matching name, trusted client (TLS 1.2)", server: managed(tls.VersionTLS12), serverName: "node1.cassandra.test",
			cas: []*x509.Certificate{f.ca.Cert}, client: f.client, verified: true, clientAuth: "requested or required", accepted: ptr(true)},
		{name: "connected by IP", server: managed(0), cas: []*x509.Certificate{f.ca.Cert}, client: f.client, clientAuth: "requested or required", accepted: ptr(true),
			problems: []string{"the certificate names *.cassandra.test; you connected to 127.0.0.1 — use a matching name (such as node1.cassandra.test, resolving to this address) or --server-name node1.cassandra.test"}},
		{name: "wrong --server-name", server: managed(0), serverName: "db.example.net", cas: []*x509.Certificate{f.ca.Cert}, client: f.client, clientAuth: "requested or required", accepted: ptr(true),
			problems: []string{"the certificate names *.cassandra.test; --server-name db.example.net matches none of them"}},
		{name: "wrong --ca", server: managed(0), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.otherCA.Cert}, client: f.client, clientAuth: "requested or required", accepted: ptr(true),
			problems: []string{"the server's chain does not end at your --ca (it ends at CN=managed CA,O=cassandra-tls-agent test); ca.crt holds CN=some other CA"}},
		{name: "a CA of the same name, another key", server: managed(0), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.sameNameCA.Cert}, client: f.client, clientAuth: "requested or required", accepted: ptr(true),
			problems: []string{"a CA of the same name but a different key"}},
		{name: "no root sent", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf)}}, serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.otherCA.Cert}, clientAuth: "not requested",
			problems: []string{"it ends at CN=managed CA,O=cassandra-tls-agent test, which it does not send"}},
		{name: "system trust store", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}}, serverName: "node1.cassandra.test", clientAuth: "not requested",
			problems: []string{"does not end at a CA of the system trust store (it ends at CN=managed CA,O=cassandra-tls-agent test); pass the service's CA with --ca"}},
		{name: "no client certificate (TLS 1.3)", server: managed(tls.VersionTLS13), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, verified: true, clientAuth: "required",
			problems: []string{"the server requires a client certificate signed by one of: CN=orders,O=Example; CN=expired,O=Example — pass yours with --cert and --key"}},
		{name: "no client certificate (TLS 1.2)", server: managed(tls.VersionTLS12), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, verified: true, clientAuth: "required",
			problems: []string{"the server requires a client certificate signed by one of: CN=orders,O=Example; CN=expired,O=Example"}},
		{name: "client certificate not uploaded", server: managed(0), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, client: f.stranger, verified: true, clientAuth: "required", accepted: ptr(false),
			problems: []string{"the server refused your client certificate CN=stranger (issued by CN=stranger): it is self-signed and not in the server's truststore — upload it to the service first; the server requires a client certificate signed by one of: CN=orders,O=Example; CN=expired,O=Example"}},
		{name: "expired client certificate", server: managed(0), serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, client: f.expiredClient, verified: true, clientAuth: "required", accepted: ptr(false),
			problems: []string{"the server refused your client certificate CN=expired,O=Example (issued by CN=expired,O=Example): it expired at", "your client certificate (subject \"CN=expired,O=Example\""}},
		{name: "expired client certificate the server accepts anyway", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}, ClientAuth: tls.RequireAnyClientCert},
			serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, client: f.expiredClient, verified: true, clientAuth: "requested or required", accepted: ptr(true),
			problems: []string{"this server still accepted it"}},
		{name: "expired server certificate", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.expiredLeaf, f.ca.Cert)}}, serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, clientAuth: "not requested",
			problems: []string{"the server's certificate CN=node1,O=cassandra-tls-agent test expired at"}},
		{name: "expiring within", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}}, serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, within: 30 * 24 * time.Hour, verified: true, clientAuth: "not requested",
			problems: []string{"the server's certificate (CN=node1,O=cassandra-tls-agent test) expires at"}},
		{name: "IP SAN only, wrong IP", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leafOnlyIP, f.ca.Cert)}}, cas: []*x509.Certificate{f.ca.Cert}, clientAuth: "not requested",
			problems: []string{"the certificate names 10.0.0.5; you connected to 127.0.0.1 — use a matching name or --server-name"}},
		{name: "optional client certificate", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clients}, serverName: "node1.cassandra.test",
			cas: []*x509.Certificate{f.ca.Cert}, verified: true, clientAuth: "requested", notes: []string{"accepts connections without one"}},
		{name: "client certificate not asked for", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}}, serverName: "node1.cassandra.test",
			cas: []*x509.Certificate{f.ca.Cert}, client: f.client, verified: true, clientAuth: "not requested", notes: []string{"did not ask for a client certificate"}},
		{name: "TLS 1.3 only: no verdict, issuer not named", server: &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients, MinVersion: tls.VersionTLS13},
			serverName: "node1.cassandra.test", cas: []*x509.Certificate{f.ca.Cert}, client: f.stranger, verified: true, clientAuth: "requested or required",
			notes:    []string{"could not be seen"},
			problems: []string{"your client certificate is issued by CN=stranger, which is not among the CA names the server accepts: CN=orders,O=Example; CN=expired,O=Example"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := pkitest.ServeTLS(t, tc.server, nil)
			r, err := Endpoint(context.Background(), EndpointOptions{Address: addr, ServerName: tc.serverName, CAs: tc.cas, CAFile: "ca.crt",
				Client: tc.client, Timeout: 5 * time.Second, Now: time.Now(), Within: tc.within})
			if err != nil {
				t.Fatal(err)
			}
			if r.Verified != tc.verified || r.ClientAuth != tc.clientAuth {
				t.Errorf("verified %t client auth %q, want %t %q; problems %q", r.Verified, r.ClientAuth, tc.verified, tc.clientAuth, r.Problems)
			}
			if (r.ClientAccepted == nil) != (tc.accepted == nil) || (r.ClientAccepted != nil && *r.ClientAccepted != *tc.accepted) {
				t.Errorf("client accepted %v, want %v", deref(r.ClientAccepted), deref(tc.accepted))
			}
			if len(r.Problems) != len(tc.problems) {
				t.Errorf("%d problems, want %d:\n%s", len(r.Problems), len(tc.problems), strings.Join(r.Problems, "\n"))
			}
			all := strings.Join(r.Problems, "\n")
			for _, p := range tc.problems {
				if !strings.Contains(all, p) {
					t.Errorf("problems lack %q:\n%s", p, all)
				}
			}
			notes := strings.Join(r.Notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, notes)
				}
			}
			if len(r.Chain) == 0 || r.Chain[0].Role != "leaf" || r.Served[0].Raw == nil {
				t.Errorf("chain not reported: %+v", r.Chain)
			}
			if strings.HasPrefix(tc.clientAuth, "re") && len(r.AcceptableCAs) == 0 && tc.server.ClientAuth != tls.RequireAnyClientCert {
				t.Errorf("no accepted CA names")
			}
		})
	}
}

func TestEndpointShowsChainAndNames(t *testing.T) {
	f := newEndpointFixture(t)
	clients := x509.NewCertPool()
	clients.AddCert(f.client.Leaf)
	clients.AddCert(f.otherCA.Cert)
	addr := pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{serverCert(f.leaf, f.ca.Cert)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}, nil)
	r, err := Endpoint(context.Background(), EndpointOptions{Address: addr, ServerName: "node1.cassandra.test", CAs: []*x509.Certificate{f.ca.Cert}, CAFile: "ca.crt", Client: f.client})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Chain) != 2 || r.Chain[0].SANs[0] != "DNS:*.cassandra.test" || r.Chain[1].Subject != f.ca.Cert.Subject.String() || r.Chain[1].Role != "chain" {
		t.Errorf("chain %+v", r.Chain)
	}
	if r.TLSVersion != "TLS 1.3" || r.ServerName != "node1.cassandra.test" || r.ServerNameFrom != "--server-name" || r.TrustedBy != "--ca ca.crt" {
		t.Errorf("report header %+v", r)
	}
	want := []string{"CN=orders,O=Example", "CN=some other CA,O=cassandra-tls-agent test"}
	if strings.Join(r.AcceptableCAs, "|") != strings.Join(want, "|") {
		t.Errorf("accepted CAs %q, want %q", r.AcceptableCAs, want)
	}
	if r.ClientCertificate == nil || r.ClientCertificate.Subject != "CN=orders,O=Example" || len(r.Problems) != 0 {
		t.Errorf("client %+v problems %q", r.ClientCertificate, r.Problems)
	}
}

func TestEndpointErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	defer ln.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct{ addr, want string }{
		{ln.Addr().String(), "does not speak TLS on this port"},
		{refused, refused + ": connection refused: nothing listens there"},
		{"127.0.0.1", `address "127.0.0.1": want HOST:PORT`},
		{"no-such-host.invalid:9042", "the name does not resolve"},
	} {
		_, err := Endpoint(context.Background(), EndpointOptions{Address: tc.addr, Timeout: 3 * time.Second})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.addr, err, tc.want)
		}
	}
}

func ptr(b bool) *bool { return &b }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

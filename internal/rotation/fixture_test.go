package rotation

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// fixture is a small PKI for the tests: two root CAs A and B, a second
// "A" with the same subject but another key, two intermediates under A, and
// leaves from each.
type fixture struct {
	now time.Time

	caA, caB, caA2 *pkitest.Cert // caA2: same subject as caA, different certificate
	intA, intA2    *pkitest.Cert // intermediates "A-int" and "A-int2", both under caA

	leafA, leafA2   *pkitest.Cert // from caA; leafA2 is a renewal
	leafB           *pkitest.Cert // from caB
	leafAI, leafAI2 *pkitest.Cert // from intA, intA2
	expiringA       *pkitest.Cert // from caA, expires in an hour
	expiredA        *pkitest.Cert // from caA, expired a minute ago
}

const month = 30 * 24 * time.Hour

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	f := &fixture{now: now}
	must := func(c *pkitest.Cert, err error) *pkitest.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := func(cn string) *pkitest.Cert {
		return must(pkitest.New(nil, pkitest.Options{CN: cn, IsCA: true, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(12 * month)}))
	}
	inter := func(parent *pkitest.Cert, cn string) *pkitest.Cert {
		return must(pkitest.New(parent, pkitest.Options{CN: cn, IsCA: true, NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(6 * month)}))
	}
	leaf := func(issuer *pkitest.Cert, cn string, notBefore, notAfter time.Time) *pkitest.Cert {
		return must(pkitest.New(issuer, pkitest.Options{CN: cn, NotBefore: notBefore, NotAfter: notAfter, IPs: pkitest.LoopbackIPs()}))
	}
	f.caA, f.caB, f.caA2 = ca("A"), ca("B"), ca("A")
	f.intA, f.intA2 = inter(f.caA, "A-int"), inter(f.caA, "A-int2")
	f.leafA = leaf(f.caA, "node-a", now.Add(-time.Hour), now.Add(month))
	f.leafA2 = leaf(f.caA, "node-a", now.Add(-time.Minute), now.Add(2*month))
	f.leafB = leaf(f.caB, "node-b", now.Add(-time.Hour), now.Add(month))
	f.leafAI = leaf(f.intA, "node-ai", now.Add(-time.Hour), now.Add(month))
	f.leafAI2 = leaf(f.intA2, "node-ai2", now.Add(-time.Hour), now.Add(month))
	f.expiringA = leaf(f.caA, "node-exp", now.Add(-month), now.Add(time.Hour))
	f.expiredA = leaf(f.caA, "node-old", now.Add(-month), now.Add(-time.Minute))
	return f
}

// mat is material with leaf's key, the chain after it and the given CAs.
func mat(leaf *pkitest.Cert, chain []*pkitest.Cert, cas ...*pkitest.Cert) *pki.Material {
	return &pki.Material{Key: leaf.Key, Leaf: leaf.Cert, Chain: certs(chain...), CAs: certs(cas...)}
}

func certs(cs ...*pkitest.Cert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(cs))
	for i, c := range cs {
		out[i] = c.Cert
	}
	return out
}

// peerOf is a reachable peer that trusts the given CAs and serves m.
func peerOf(name string, m *pki.Material, trusts ...*pkitest.Cert) Peer {
	p := Peer{Name: name, Serves: append([]*x509.Certificate{m.Leaf}, m.Chain...)}
	for _, c := range trusts {
		p.Accepts = append(p.Accepts, c.Cert.RawSubject)
	}
	return p
}

func down(name string) Peer {
	return Peer{Name: name, Err: errors.New("dial tcp " + name + ": connect: connection refused")}
}

// memory is a Memory that saw sources and published CAs at the given times,
// in order.
type seen struct {
	at        time.Time
	sources   []*pkitest.Cert
	published []*pkitest.Cert
}

func memory(obs ...seen) *Memory {
	m := new(Memory)
	for _, o := range obs {
		m.Observe(o.at, certs(o.sources...), certs(o.published...))
	}
	return m
}

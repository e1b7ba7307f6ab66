package metrics

import (
	"crypto/x509"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSetCertificatesReplacesRotatedSeries(t *testing.T) {
	m := New("v1", "go1.26")
	ca, _ := pkitest.CA("ca")
	old, _ := pkitest.Leaf(ca, "node1", pkitest.P256)
	m.SetCertificates("node", old.Cert, nil, []*x509.Certificate{ca.Cert})
	if n := testutil.CollectAndCount(m.NotAfter); n != 2 {
		t.Fatalf("series = %d, want leaf + ca", n)
	}
	renewed, _ := pkitest.Leaf(ca, "node1", pkitest.P256)
	m.SetCertificates("node", renewed.Cert, nil, []*x509.Certificate{ca.Cert})
	m.SetCertificates("client", old.Cert, nil, []*x509.Certificate{ca.Cert})
	if n := testutil.CollectAndCount(m.NotAfter); n != 4 {
		t.Fatalf("series = %d, want 2 per store (the rotated-away leaf dropped)", n)
	}
	got := testutil.ToFloat64(m.NotAfter.WithLabelValues("node", "leaf", "node1", renewed.Cert.SerialNumber.Text(16)))
	if got != float64(renewed.Cert.NotAfter.Unix()) {
		t.Errorf("not_after = %v", got)
	}
	if problems, err := testutil.GatherAndLint(m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

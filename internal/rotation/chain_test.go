package rotation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func TestIssuingCA(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		leaf  *pkitest.Cert
		chain []*pkitest.Cert
		cas   []*pkitest.Cert
		want  *pkitest.Cert
	}{
		{"root issued the leaf", f.leafA, nil, []*pkitest.Cert{f.caB, f.caA}, f.caA},
		{"other root only", f.leafB, nil, []*pkitest.Cert{f.caA}, nil},
		{"through an intermediate to the root", f.leafAI, []*pkitest.Cert{f.intA}, []*pkitest.Cert{f.caA}, f.caA},
		{"intermediate held as anchor wins (first trusted)", f.leafAI, []*pkitest.Cert{f.intA}, []*pkitest.Cert{f.caA, f.intA}, f.intA},
		{"intermediate anchor, not sent", f.leafAI, nil, []*pkitest.Cert{f.intA}, f.intA},
		{"intermediate missing: no path to the root", f.leafAI, nil, []*pkitest.Cert{f.caA}, nil},
		{"same subject, other key: the signature decides", f.leafA, nil, []*pkitest.Cert{f.caA2}, nil},
		{"same subject, both present", f.leafA, nil, []*pkitest.Cert{f.caA2, f.caA}, f.caA},
		{"root sent in the chain too", f.leafAI, []*pkitest.Cert{f.intA, f.caA}, []*pkitest.Cert{f.caA}, f.caA},
		{"no CAs", f.leafA, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := IssuingCA(tc.leaf.Cert, certs(tc.chain...), certs(tc.cas...))
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("got %s, want nil", got.Subject)
			case tc.want != nil && (got == nil || !got.Equal(tc.want.Cert)):
				t.Fatalf("got %v, want %s", got, tc.want.Cert.Subject)
			}
		})
	}
}

func TestTrustsAndServes(t *testing.T) {
	f := newFixture(t)
	servesA := peerOf("a:7000", mat(f.leafA, nil, f.caA), f.caA)
	servesAI := peerOf("ai:7000", mat(f.leafAI, []*pkitest.Cert{f.intA}, f.caA), f.intA)
	servesAIBare := peerOf("aib:7000", mat(f.leafAI, nil, f.caA), f.caA, f.caB)
	tests := []struct {
		name          string
		p             Peer
		ca            *pkitest.Cert
		trusts, serve bool
	}{
		{"A peer, CA A", servesA, f.caA, true, true},
		{"A peer, CA B", servesA, f.caB, false, false},
		{"A peer, impostor A (same name, other key)", servesA, f.caA2, true, false},
		{"intermediate peer, root A", servesAI, f.caA, false, true},
		{"intermediate peer, intermediate", servesAI, f.intA, true, true},
		{"intermediate peer, other intermediate", servesAI, f.intA2, false, false},
		{"intermediate not served: its issuer is still seen", servesAIBare, f.intA, false, true},
		{"intermediate not served: the root cannot be", servesAIBare, f.caA, true, false},
		{"unreachable", down("d:7000"), f.caA, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Trusts(tc.p, tc.ca.Cert); got != tc.trusts {
				t.Errorf("Trusts = %v, want %v", got, tc.trusts)
			}
			if got := Serves(tc.p, tc.ca.Cert); got != tc.serve {
				t.Errorf("Serves = %v, want %v", got, tc.serve)
			}
		})
	}
}

func TestAnchorNames(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		leaf  *pkitest.Cert
		chain []*pkitest.Cert
		want  []string
	}{
		{"leaf from a root", f.leafA, nil, []string{"A"}},
		{"leaf, intermediate", f.leafAI, []*pkitest.Cert{f.intA}, []string{"A-int", "A"}},
		{"leaf, intermediate, root", f.leafAI, []*pkitest.Cert{f.intA, f.caA}, []string{"A-int", "A"}},
		{"intermediate not sent", f.leafAI, nil, []string{"A-int"}},
		{"unrelated chain certificate is skipped", f.leafA, []*pkitest.Cert{f.intA2}, []string{"A"}},
		{"chain out of order is still followed", f.leafAI, []*pkitest.Cert{f.caA, f.intA}, []string{"A-int", "A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, n := range anchorNames(tc.leaf.Cert, certs(tc.chain...)) {
				got = append(got, cn(t, n))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWalkStopsOnLoops(t *testing.T) {
	f := newFixture(t)
	// A chain listing the same certificates twice must still end.
	chain := certs(f.intA, f.intA, f.caA, f.caA)
	if got := IssuingCA(f.leafAI.Cert, chain, []*x509.Certificate{f.caB.Cert}); got != nil {
		t.Fatalf("got %s, want nil", got.Subject)
	}
}

func TestNameString(t *testing.T) {
	f := newFixture(t)
	if got, want := nameString(f.caA.Cert.RawSubject), f.caA.Cert.Subject.String(); got != want {
		t.Errorf("nameString = %q, want %q", got, want)
	}
	if got := nameString([]byte{1, 2, 3}); got != "(unparsable name)" {
		t.Errorf("nameString(garbage) = %q", got)
	}
}

// cn returns the common name of a DER subject.
func cn(t *testing.T, der []byte) string {
	t.Helper()
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &seq); err != nil {
		t.Fatal(err)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&seq)
	return n.CommonName
}

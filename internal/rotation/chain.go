package rotation

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
)

// Trusts reports whether p advertised ca's subject in its CertificateRequest.
// Names are compared as DER bytes, exactly as the peer sent them: a peer's
// truststore holds the same certificates as ours (they come from the same
// bundles), so the encodings match; a name encoded differently counts as not
// trusted, which only ever holds a change back.
func Trusts(p Peer, ca *x509.Certificate) bool {
	return acceptsName(p, ca.RawSubject)
}

// Serves reports whether the chain p served was issued by ca: some
// certificate on the path from the served leaf upwards is ca itself, or
// names ca as its issuer and carries ca's signature. Names alone are not
// enough here because we hold the certificate and can check.
func Serves(p Peer, ca *x509.Certificate) bool {
	if len(p.Serves) == 0 {
		return false
	}
	return chainsTo(p.Serves[0], p.Serves[1:], ca)
}

// IssuingCA returns the trust anchor among cas that leaf chains to, through
// the certificates of chain: the first certificate on the path from the leaf
// upwards that is itself one of cas, or is issued (name and signature) by one
// of them. "First" follows the JDK, which ends path validation at the first
// trusted certificate, so an intermediate held in a truststore is an anchor.
// It returns nil when the leaf chains to none of cas.
func IssuingCA(leaf *x509.Certificate, chain []*x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	var found *x509.Certificate
	walk(leaf, chain, func(cur *x509.Certificate) bool {
		for _, ca := range cas {
			if cur.Equal(ca) {
				found = ca
				return true
			}
		}
		for _, ca := range cas {
			if issued(ca, cur) {
				found = ca
				return true
			}
		}
		return false
	})
	return found
}

// chainsTo reports whether ca is on the path from leaf upwards: the path
// passes through ca, or a certificate on it was issued by ca.
func chainsTo(leaf *x509.Certificate, chain []*x509.Certificate, ca *x509.Certificate) bool {
	return walk(leaf, chain, func(cur *x509.Certificate) bool {
		return cur.Equal(ca) || issued(ca, cur)
	})
}

// issued reports whether parent issued child: the names match and the
// signature verifies.
func issued(parent, child *x509.Certificate) bool {
	return bytes.Equal(child.RawIssuer, parent.RawSubject) && child.CheckSignatureFrom(parent) == nil
}

// walk visits leaf, then each certificate of chain that issued the one
// before it, until visit returns true (walk returns true) or the path ends
// (walk returns false). Each certificate is visited at most once, so a chain
// that loops cannot hang it.
func walk(leaf *x509.Certificate, chain []*x509.Certificate, visit func(*x509.Certificate) bool) bool {
	used := make([]bool, len(chain))
	cur := leaf
	for {
		if visit(cur) {
			return true
		}
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			return false // self-issued: the top of the path
		}
		next := -1
		for i, c := range chain {
			if !used[i] && issued(c, cur) {
				next = i
				break
			}
		}
		if next < 0 {
			return false
		}
		used[next] = true
		cur = chain[next]
	}
}

// anchorNames lists the DER subjects a peer could anchor the served
// leaf+chain at: the issuer name of the leaf and of every certificate of the
// chain on the path above it. A peer that trusts any of these names (the JDK
// accepts an intermediate as trust anchor) can validate what we serve; a
// CA we hold but do not send is not among them, since the peer cannot build
// a path through a certificate it never receives.
func anchorNames(leaf *x509.Certificate, chain []*x509.Certificate) [][]byte {
	var names [][]byte
	walk(leaf, chain, func(cur *x509.Certificate) bool {
		if !containsName(names, cur.RawIssuer) {
			names = append(names, cur.RawIssuer)
		}
		return false
	})
	return names
}

func containsName(names [][]byte, name []byte) bool {
	for _, n := range names {
		if bytes.Equal(n, name) {
			return true
		}
	}
	return false
}

func acceptsName(p Peer, name []byte) bool {
	return containsName(p.Accepts, name)
}

// acceptsAny reports whether p advertised any of names.
func acceptsAny(p Peer, names [][]byte) bool {
	for _, n := range names {
		if acceptsName(p, n) {
			return true
		}
	}
	return false
}

// nameString renders a DER subject (an RDNSequence) for logs, falling back
// to a byte count when it does not parse.
func nameString(der []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return "(unparsable name)"
	}
	var n pkix.Name
	n.FillFromRDNSequence(&seq)
	return n.String()
}

// namesString joins names for a log line.
func namesString(names [][]byte) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = nameString(n)
	}
	return strings.Join(s, "; ")
}

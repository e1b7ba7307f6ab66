package rotation

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// ErrAmbiguousCA is returned (wrapped with the subject and both
// fingerprints) when two different CA certificates share a subject: peers
// advertise only names, so the gates could not tell the two apart.
var ErrAmbiguousCA = errors.New("two different CA certificates have the same subject")

// Decide applies the rotation gates. It reads its input only (Memory
// included) and returns what to publish.
//
//   - With no Published material (first build) or Policy.Gates false, the
//     source is published as it is.
//   - Trust additions are never held: Publish.CAs holds every Source CA.
//   - present gate: when the source leaf could be refused by a peer that
//     accepts the published leaf — some CA name the published chain can be
//     anchored at is not one the source chain can be anchored at (a new
//     issuing CA, or a new intermediate path) — the source leaf is presented
//     only when every peer accepts one of the source chain's anchor names
//     and, with PresentAfter, a CA bearing such a name has been in the trust
//     sources that long. Otherwise the published key, leaf and chain are
//     kept. A renewal under the same CA is presented at once. With no peers
//     at all only PresentAfter can hold: there is nobody to partition.
//   - safety valve: a hold that would keep a published leaf expiring within
//     MaxHold (or already expired, not yet valid, or otherwise unusable) is
//     released: the source leaf is presented and Forced is set.
//   - retain gate: a CA in Published.CAs but not in Source.CAs stays while
//     the leaf being published chains to it, any peer serves a chain from it
//     or cannot be confirmed not to, or RetainFor has not passed since it
//     left the sources; otherwise it is dropped.
//
// It refuses (ErrAmbiguousCA) when two different CAs of Source.CAs and
// Published.CAs share a subject, and returns an error for incomplete input.
func Decide(in Input) (Decision, error) {
	if err := checkInput(in); err != nil {
		return Decision{}, err
	}
	src, pub := in.Source, in.Published
	if pub == nil || !in.Policy.Gates {
		return Decision{Publish: material(src, src.CAs), PresentNew: true}, nil
	}
	if err := checkAmbiguous(src.CAs, pub.CAs); err != nil {
		return Decision{}, err
	}
	if in.Memory == nil && (in.Policy.PresentAfter > 0 || in.Policy.RetainFor > 0) {
		return Decision{}, errors.New("rotation: no Memory given, but presentAfter or retainFor is set: they need the time each CA entered or left the trust sources")
	}

	// Reasons list peers in name order whatever order they were probed in,
	// so that an unchanged situation gives an unchanged decision.
	peers := append([]Peer(nil), in.Peers...)
	sort.SliceStable(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	in.Peers = peers

	var d Decision
	keep := pub // the material whose key, leaf and chain are published
	if presentHold, waitingFor, err := presentGate(in); err != nil {
		return Decision{}, err
	} else if presentHold == nil {
		keep = src
	} else if why := valve(in); why != "" {
		keep = src
		d.Forced = true
		presentHold.Reason = fmt.Sprintf("safety valve: %s; presenting the new leaf (%s, from %s) although %s",
			why, pki.Describe(src.Leaf), presentHold.CA.Subject.String(), waitingFor)
		d.Released = presentHold
	} else {
		d.Holds = append(d.Holds, *presentHold)
	}
	d.PresentNew = keep == src

	cas := append([]*x509.Certificate(nil), src.CAs...)
	retained, holds := retainGate(in, keep)
	d.Publish = material(keep, append(cas, retained...))
	d.Holds = append(d.Holds, holds...)
	return d, nil
}

func checkInput(in Input) error {
	if in.Now.IsZero() {
		return errors.New("rotation: Input.Now is not set")
	}
	if err := checkMaterial(in.Source, "source"); err != nil {
		return err
	}
	if in.Published != nil {
		if err := checkMaterial(in.Published, "published"); err != nil {
			return err
		}
	}
	p := in.Policy
	if p.PresentAfter < 0 || p.RetainFor < 0 || p.MaxHold < 0 {
		return fmt.Errorf("rotation: negative duration in policy (presentAfter %s, retainFor %s, maxHold %s)", p.PresentAfter, p.RetainFor, p.MaxHold)
	}
	return nil
}

func checkMaterial(m *pki.Material, what string) error {
	switch {
	case m == nil:
		return fmt.Errorf("rotation: no %s material", what)
	case m.Key == nil:
		return fmt.Errorf("rotation: %s material has no private key", what)
	case m.Leaf == nil:
		return fmt.Errorf("rotation: %s material has no leaf certificate", what)
	case len(m.CAs) == 0:
		return fmt.Errorf("rotation: %s material has no trusted CA", what)
	}
	for i, c := range append(append([]*x509.Certificate(nil), m.Chain...), m.CAs...) {
		if c == nil {
			return fmt.Errorf("rotation: %s material has a nil certificate (number %d of chain and CAs)", what, i+1)
		}
	}
	return nil
}

// material is a fresh Material with m's key, leaf and chain and the given
// CAs; it shares no slice with its inputs.
func material(m *pki.Material, cas []*x509.Certificate) *pki.Material {
	return &pki.Material{
		Key:   m.Key,
		Leaf:  m.Leaf,
		Chain: append([]*x509.Certificate(nil), m.Chain...),
		CAs:   pki.Dedupe(cas),
	}
}

// checkAmbiguous refuses two different CAs with one subject among the
// source and published CAs.
func checkAmbiguous(source, published []*x509.Certificate) error {
	all := pki.Dedupe(append(append([]*x509.Certificate(nil), source...), published...))
	inSource := make(map[fingerprint]bool, len(source))
	for _, c := range source {
		inSource[fp(c)] = true
	}
	where := func(c *x509.Certificate) string {
		if inSource[fp(c)] {
			return "in the trust sources"
		}
		return "in the published truststore only"
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if !bytes.Equal(a.RawSubject, b.RawSubject) {
				continue
			}
			example := "cassandra-ca-2"
			if cn := a.Subject.CommonName; cn != "" {
				example = cn + "-2"
			}
			return fmt.Errorf("rotation: %w: %q (SHA-256 %s %s, and %s %s). Peers advertise only the names of the CAs they trust, so the rotation gates cannot tell these two apart and could partition the cluster. Give the new CA a distinct subject (e.g. a generation number in its CN, such as %q) and rotate to that one; or, accepting the risk, publish without gates for this change (rotation.gates: false)",
				ErrAmbiguousCA, a.Subject.String(), pki.Fingerprint(a), where(a), pki.Fingerprint(b), where(b), example)
		}
	}
	return nil
}

// presentGate returns the hold on the source leaf and what it waits for in
// words, or a nil hold when the leaf may be presented.
func presentGate(in Input) (*Hold, string, error) {
	src, pub := in.Source, in.Published
	srcNames := anchorNames(src.Leaf, src.Chain)
	lost := false
	for _, n := range anchorNames(pub.Leaf, pub.Chain) {
		if !containsName(srcNames, n) {
			lost = true
			break
		}
	}
	if !lost {
		return nil, "", nil // same issuing CA and path: a renewal, or nothing new
	}
	ca := IssuingCA(src.Leaf, src.Chain, src.CAs)
	if ca == nil {
		return nil, "", fmt.Errorf("rotation: the source leaf (%s) does not chain to any of the %d source CAs", pki.Describe(src.Leaf), len(src.CAs))
	}

	var waiting, why []string
	for _, p := range in.Peers {
		switch {
		case p.Err != nil:
			waiting = append(waiting, p.Name)
			why = append(why, fmt.Sprintf("peer %s is unreachable (%v)", p.Name, p.Err))
		case len(p.Accepts) == 0:
			waiting = append(waiting, p.Name)
			why = append(why, fmt.Sprintf("peer %s advertised no CA names (no client-certificate request), so what it trusts is unknown", p.Name))
		case !acceptsAny(p, srcNames):
			waiting = append(waiting, p.Name)
			why = append(why, fmt.Sprintf("peer %s does not accept %s yet (it accepts %s)", p.Name, namesString(srcNames), namesString(p.Accepts)))
		}
	}

	var until time.Time
	if pa := in.Policy.PresentAfter; pa > 0 {
		// The leaf is good for clients once any CA it can be anchored at has
		// been in the trust sources for PresentAfter.
		since := in.Now
		for _, c := range src.CAs {
			if containsName(srcNames, c.RawSubject) {
				if t := in.Memory.trustedSinceOr(c, in.Now); t.Before(since) {
					since = t
				}
			}
		}
		if u := since.Add(pa); in.Now.Before(u) {
			until = u
			why = append(why, fmt.Sprintf("%s has been in the trust sources for %s of the %s presentAfter (until %s)",
				ca.Subject.String(), in.Now.Sub(since).Round(time.Second), pa, u.UTC().Format(time.RFC3339)))
		}
	}
	if len(waiting) == 0 && until.IsZero() {
		return nil, "", nil
	}
	waitingFor := strings.Join(why, "; ")
	return &Hold{
		Gate:    GatePresent,
		CA:      ca,
		Waiting: sortedUnique(waiting),
		Until:   until,
		Reason:  fmt.Sprintf("holding the new leaf (%s, from %s): %s", pki.Describe(src.Leaf), ca.Subject.String(), waitingFor),
	}, waitingFor, nil
}

// valve says why the published leaf must not be kept any longer, or "".
func valve(in Input) string {
	pub, now := in.Published, in.Now
	m := &pki.Material{Key: pub.Key, Leaf: pub.Leaf, Chain: pub.Chain, CAs: pub.CAs}
	if err := m.Validate(now, "published keystore", "published key"); err != nil {
		return fmt.Sprintf("the published material cannot be kept: %v", err)
	}
	if left := pub.Leaf.NotAfter.Sub(now); left <= in.Policy.MaxHold {
		return fmt.Sprintf("the published leaf (%s) expires at %s, in %s, within maxHold %s",
			pki.Describe(pub.Leaf), pub.Leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Second), in.Policy.MaxHold)
	}
	return ""
}

// retainGate returns the published CAs that left the sources but stay, and
// a hold for each, sorted by subject and fingerprint. keep is the material
// whose leaf and chain are being published.
func retainGate(in Input, keep *pki.Material) ([]*x509.Certificate, []Hold) {
	inSource := make(map[fingerprint]bool, len(in.Source.CAs))
	for _, c := range in.Source.CAs {
		inSource[fp(c)] = true
	}
	var removed []*x509.Certificate
	for _, c := range pki.Dedupe(in.Published.CAs) {
		if !inSource[fp(c)] {
			removed = append(removed, c)
		}
	}
	sort.SliceStable(removed, func(i, j int) bool {
		a, b := removed[i], removed[j]
		if s, t := a.Subject.String(), b.Subject.String(); s != t {
			return s < t
		}
		return pki.Fingerprint(a) < pki.Fingerprint(b)
	})

	var kept []*x509.Certificate
	var holds []Hold
	for _, ca := range removed {
		var waiting, why []string
		if chainsTo(keep.Leaf, keep.Chain, ca) {
			why = append(why, fmt.Sprintf("the published leaf (%s) chains to it", pki.Describe(keep.Leaf)))
		}
		for _, p := range in.Peers {
			switch {
			case p.Err != nil:
				waiting = append(waiting, p.Name)
				why = append(why, fmt.Sprintf("peer %s is unreachable (%v), so it may still serve a chain from it", p.Name, p.Err))
			case len(p.Serves) == 0:
				waiting = append(waiting, p.Name)
				why = append(why, fmt.Sprintf("peer %s served no certificate, so it may still serve a chain from it", p.Name))
			case Serves(p, ca):
				waiting = append(waiting, p.Name)
				why = append(why, fmt.Sprintf("peer %s still serves a chain from it (%s)", p.Name, pki.Describe(p.Serves[0])))
			}
		}
		var until time.Time
		if rf := in.Policy.RetainFor; rf > 0 {
			since := in.Memory.removedAtOr(ca, in.Now)
			if u := since.Add(rf); in.Now.Before(u) {
				until = u
				why = append(why, fmt.Sprintf("it left the trust sources %s ago, retainFor is %s (until %s)",
					in.Now.Sub(since).Round(time.Second), rf, u.UTC().Format(time.RFC3339)))
			}
		}
		if len(why) == 0 {
			continue // dropped
		}
		kept = append(kept, ca)
		holds = append(holds, Hold{
			Gate:    GateRetain,
			CA:      ca,
			Waiting: sortedUnique(waiting),
			Until:   until,
			Reason:  fmt.Sprintf("keeping %s in the truststore although it left the trust sources: %s", ca.Subject.String(), strings.Join(why, "; ")),
		})
	}
	return kept, holds
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	n := 1
	for _, v := range out[1:] {
		if v != out[n-1] {
			out[n] = v
			n++
		}
	}
	return out[:n]
}

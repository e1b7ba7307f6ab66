package rotation

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// Memory is the in-process recollection of when CAs entered and left the
// trust sources, keyed by SHA-256 fingerprint. It is never persisted: after a
// restart every CA counts as first seen "now", which only ever makes the
// time-based holds (Policy.PresentAfter, Policy.RetainFor) last longer, never
// shorter — safe, and no saved progress can go stale.
//
// The zero value is ready to use. A Memory is safe for concurrent use; keep
// one per store for the life of the process.
type Memory struct {
	mu           sync.Mutex
	trustedSince map[[32]byte]time.Time
	removedAt    map[[32]byte]time.Time
}

type fingerprint = [32]byte

func fp(c *x509.Certificate) fingerprint { return sha256.Sum256(c.Raw) }

// Observe records what one sync sees, at now:
//   - a CA in sourceCAs not recorded there yet is trusted since now (and no
//     longer counts as removed, if it had been);
//   - a CA in publishedCAs but not in sourceCAs has left the trust sources:
//     removed at now unless already recorded, and no longer trusted-since
//     (should it come back, it is trusted anew from then);
//   - a CA in neither is forgotten.
//
// Call it at every sync, before Decide, with the same now.
func (m *Memory) Observe(now time.Time, sourceCAs, publishedCAs []*x509.Certificate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.trustedSince == nil {
		m.trustedSince = make(map[fingerprint]time.Time)
		m.removedAt = make(map[fingerprint]time.Time)
	}
	inSource := make(map[fingerprint]bool, len(sourceCAs))
	for _, c := range sourceCAs {
		k := fp(c)
		inSource[k] = true
		if _, ok := m.trustedSince[k]; !ok {
			m.trustedSince[k] = now
		}
		delete(m.removedAt, k)
	}
	inPublished := make(map[fingerprint]bool, len(publishedCAs))
	for _, c := range publishedCAs {
		k := fp(c)
		inPublished[k] = true
		if inSource[k] {
			continue
		}
		delete(m.trustedSince, k)
		if _, ok := m.removedAt[k]; !ok {
			m.removedAt[k] = now
		}
	}
	for k := range m.trustedSince {
		if !inSource[k] {
			delete(m.trustedSince, k)
		}
	}
	for k := range m.removedAt {
		if !inPublished[k] || inSource[k] {
			delete(m.removedAt, k)
		}
	}
}

// TrustedSince returns when ca was first observed in the trust sources (in
// this process, without leaving them since).
func (m *Memory) TrustedSince(ca *x509.Certificate) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.trustedSince[fp(ca)]
	return t, ok
}

// RemovedAt returns when ca was first observed published but no longer in
// the trust sources.
func (m *Memory) RemovedAt(ca *x509.Certificate) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.removedAt[fp(ca)]
	return t, ok
}

// trustedSinceOr and removedAtOr read m with the safe default for anything
// not recorded (or a nil Memory): now, the start of the longest hold.
func (m *Memory) trustedSinceOr(ca *x509.Certificate, now time.Time) time.Time {
	if m == nil {
		return now
	}
	if t, ok := m.TrustedSince(ca); ok && !t.After(now) {
		return t
	}
	return now
}

func (m *Memory) removedAtOr(ca *x509.Certificate, now time.Time) time.Time {
	if m == nil {
		return now
	}
	if t, ok := m.RemovedAt(ca); ok && !t.After(now) {
		return t
	}
	return now
}

package rotation

import (
	"crypto/x509"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// Policy is one store's rotation settings (config: rotation.*).
type Policy struct {
	// Gates false publishes the sources as they are: for tests and
	// emergencies only, since it can partition the cluster mid-rotation.
	Gates bool
	// PresentAfter is how long a new CA must have been in the trust sources
	// before a leaf from it is presented, for clients, which cannot be probed.
	PresentAfter time.Duration
	// RetainFor is how long, at least, a CA that left the trust sources stays
	// in the truststore, for clients.
	RetainFor time.Duration
	// MaxHold is the safety valve: when the published leaf expires within
	// MaxHold, a held leaf is presented anyway. Zero releases a hold only
	// once the published leaf has expired (or cannot be kept at all); the
	// configuration's default is 72h.
	MaxHold time.Duration
}

// Peer is what one peer endpoint was seen to trust and serve.
type Peer struct {
	Name string // host:port
	// Err non-nil means the peer could not be probed: it confirms nothing.
	Err error
	// Accepts holds the raw DER subjects from the peer's CertificateRequest,
	// its truststore's CA names. Empty (no CertificateRequest, or no names
	// in it) confirms nothing.
	Accepts [][]byte
	// Serves is the chain the peer served, leaf first.
	Serves []*x509.Certificate
}

// Input is everything one decision is made from.
type Input struct {
	Now time.Time
	// Source is the validated material from the sources; Source.CAs are the
	// trust sources (ca.crt and the trust bundles).
	Source *pki.Material
	// Published is what the keystore and truststore hold now, read back from
	// disk; nil before the first publish.
	Published *pki.Material
	// Peers is every peer endpoint probed for this decision. The caller
	// includes the local node when discovery works; when discovery fails it
	// passes a Peer carrying that error rather than an empty list, because
	// an empty list means "nobody to partition" (see Decide).
	Peers []Peer
	// Memory is when CAs entered and left the trust sources; call
	// Memory.Observe first. It may be nil only when PresentAfter and
	// RetainFor are zero.
	Memory *Memory
	Policy Policy
}

// Gate names a rotation gate; the values are metric label values.
type Gate string

const (
	// GatePresent holds back a leaf from a CA that not every peer accepts.
	GatePresent Gate = "present"
	// GateRetain keeps a CA that left the trust sources in the truststore.
	GateRetain Gate = "retain"
)

// Hold is one change the gates hold back.
type Hold struct {
	Gate Gate
	// CA is the CA whose leaf is held back (present) or which is kept in
	// the truststore (retain).
	CA *x509.Certificate
	// Waiting lists the peers not confirmed yet, sorted: not accepting the
	// CA or unreachable (present); still serving a chain from it or
	// unreachable (retain).
	Waiting []string
	// Until is when the time-based part of the hold (PresentAfter,
	// RetainFor) ends; zero when time is not what it waits for.
	Until time.Time
	// Reason says in plain words why, for the log.
	Reason string
}

// Decision is what to publish now.
type Decision struct {
	// Publish is the material to publish: key, leaf and chain from Source
	// (PresentNew) or Published (held); CAs are Source.CAs in their order,
	// then the retained CAs sorted by subject and fingerprint.
	Publish *pki.Material
	// PresentNew is true when Publish carries the source's key and leaf.
	PresentNew bool
	// Forced is true when the safety valve presented a leaf the present gate
	// would have held: the caller logs it as an error and counts it.
	Forced bool
	// Released is the present hold the valve overrode (when Forced), its
	// Reason saying why the valve opened.
	Released *Hold
	// Holds lists what is held: the present hold first, then the retain
	// holds sorted like Publish.CAs. Empty when nothing is held.
	Holds []Hold
}

// Held reports whether any hold of gate g is in d.
func (d Decision) Held(g Gate) bool {
	for _, h := range d.Holds {
		if h.Gate == g {
			return true
		}
	}
	return false
}

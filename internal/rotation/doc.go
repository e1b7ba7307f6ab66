// Package rotation decides, for one store, what to publish while its CA
// rotates (A → A+B → B leaves → B only) without ever partitioning the cluster.
//
// Each node's sidecar builds a keystore (key, leaf, chain) and a truststore
// (CAs) from its sources. Two naive moves split a cluster: presenting a leaf
// from B before every peer trusts B, and dropping A from the truststore while
// a peer still presents a leaf from A. Both happen as soon as sources reach
// the nodes in a bad order, which nothing in Kubernetes prevents. The gates
// make the order irrelevant:
//
//   - Trust additions are published at once, never held.
//   - The present gate holds a leaf from a new CA (the published key, leaf
//     and chain stay) until every peer accepts that CA and, with
//     presentAfter, the CA has been in the trust sources that long — the
//     only proxy there is for clients, which cannot be probed. A renewal
//     under the same CA goes out at once.
//   - The retain gate keeps a CA that left the trust sources while our own
//     published leaf chains to it, while any peer serves a chain from it or
//     cannot be reached to confirm it does not, and for at least retainFor
//     after it left.
//   - The safety valve: no hold lets the published leaf expire. Within
//     maxHold of its notAfter (or once it is unusable) the held leaf is
//     presented anyway and the decision says Forced, for the caller to log as
//     an error and count.
//
// What a peer accepts is what it advertises in its TLS CertificateRequest:
// the subject names of its truststore's CAs, names and nothing more. A peer
// accepts a served chain when it advertises the name of any certificate the
// chain can be anchored at — the leaf's issuer, or the issuer of any chain
// certificate above it — because the JDK ends path validation at the first
// trusted certificate, so an intermediate in a truststore is an anchor too.
// Names only also means two different CAs with one subject cannot be told
// apart; Decide refuses them (ErrAmbiguousCA) rather than guess.
//
// There is no saved progress. Every decision is made afresh from
// certificates: the sources, what is published (read back from disk), what
// each peer serves and accepts now, and the clock. A restarted sidecar, a
// restarted node, or a sidecar that sees a rotation half done simply
// continues. The only state is Memory, the in-process record of when CAs
// entered and left the trust sources for presentAfter and retainFor; it is
// never persisted, and after a restart everything counts as seen "now",
// which only makes those holds longer.
//
// Decide does no I/O and reads its input only, so the gates are table-tested
// without a cluster; the agent probes the peers (package peers), calls
// Memory.Observe and Decide at every sync, then builds and publishes
// Decision.Publish. While anything is held it re-probes the peers on a
// short timer of its own, since peers change what they trust without any
// file event here.
package rotation

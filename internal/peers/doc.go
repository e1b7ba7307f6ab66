// Package peers learns what the other Cassandra nodes serve and trust, so
// that a CA rotation can wait until every peer is ready.
//
// Probe dials a peer's TLS port (storage 7000 or native 9042) and records
// two things from the handshake alone: the certificate chain the peer
// serves, and the CA names it sends in its CertificateRequest — the CAs its
// truststore holds. Nothing is verified here; the caller compares names and
// fingerprints (see Observation.Accepts and Observation.ServedBy).
//
// A Discoverer lists the peers to probe as "host:port" storage endpoints:
// Static addresses, every address of a DNS name (a headless Service), or the
// local node's gossip view read through a Jolokia agent.
//
// Only the standard library is used, and the package keeps no state between
// calls.
package peers

// Package agent wires the jobs of the other packages into the two long-form
// commands.
//
// Init (init.go) runs once, in order: render templates → build stores →
// cqlshrc → wait for CQL → bootstrap statements.
//
// The sidecar (sidecar.go) keeps every store current. Each store is synced
// in stage order (sync.go): read the source → validate it → gate it (CA
// rotation, gate.go) → publish the outputs → reload Cassandra → verify that
// the endpoints serve the new certificate. Its outcome goes to a health
// snapshot (health.go) that /healthz and /readyz read without waiting on a
// sync, and a CQL probe loop (cqlprobe.go) exports cql_up.
//
// Every decision is taken afresh from files and endpoints; nothing is
// persisted, so a restarted sidecar simply continues.
package agent

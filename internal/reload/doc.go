// Package reload tells Cassandra (or a client such as Reaper) that its stores
// changed: through Jolokia, a command (nodetool reloadssl), a signal, or a
// webhook. Each action has a timeout and retries with backoff, is counted in
// metrics, and never brings the sidecar down.
package reload

package test

import "testing"

// cassandraRotationTests exercises the sidecar against the running node.
func cassandraRotationTests(t *testing.T, c *cluster) {}

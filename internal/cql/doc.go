// Package cql answers "is Cassandra ready?" the only honest way: by running a
// CQL query over the same TLS and credentials the client will use. It also
// runs idempotent bootstrap statements once the cluster answers.
package cql

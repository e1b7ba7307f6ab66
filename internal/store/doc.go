// Package store turns validated PEM material into the JKS or PKCS#12
// keystore and truststore Cassandra reads, plus optional PEM outputs, and
// publishes them atomically — only when what they hold would change.
package store

// Package config loads the agent's YAML configuration file (init and
// sidecar) once, completely: ${VAR} placeholders expand from the environment
// — strictly, through the same YAML-safe renderer as templates — so one pod
// template can select per-pod material with ${POD_NAME}; the document is
// decoded strictly (unknown keys and extra documents are errors); every enum,
// duration and mode is parsed while decoding; every default is applied; and
// references and output paths are validated. A mistake is reported at
// startup, naming its key or line, and never repeats a variable's value.
//
// A store's certificate source is exactly one of:
//
//   - source: a directory — a cert-manager Secret volume, or a cert-manager
//     csi-driver volume — holding the leaf and its chain, the private key
//     and, optionally, CAs. files: {cert, key, ca} names them (plain names
//     inside the directory; default tls.crt, tls.key, ca.crt), as the
//     csi-driver's certificate-file, privatekey-file and ca-file attributes do.
//   - credentialBundle: one PEM file holding the private key and its chain,
//     leaf first — Kubernetes' podCertificate projection (credentialBundlePath)
//     or cert-manager's CombinedPEM (tls-combined.pem). It holds no CA, so
//     trustBundles must name at least one.
//
// trustBundles adds CA files (a clusterTrustBundle projection, a
// trust-manager Bundle, an issuer's ca.crt) to either form. Store.PKISource
// is the one translation into what pki.Load reads; every file it lists is
// hashed to detect changes and its directory is watched.
package config

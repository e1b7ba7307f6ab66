// Package pki reads certificate material — a directory in cert-manager's
// Secret layout (or a csi-driver volume, file names configurable), or one
// credential bundle holding the key and its chain, plus trust bundles — and
// validates it before anything downstream turns it into keystores.
package pki

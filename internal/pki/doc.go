// Package pki reads certificate material in cert-manager's Secret layout and
// validates it before anything downstream turns it into keystores.
package pki

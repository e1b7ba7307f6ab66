// Package version carries the build's identity, set at link time with
// -ldflags "-X .../internal/version.Version=… -X .../internal/version.Commit=…".
package version

import "runtime"

var (
	Version = "dev"
	Commit  = "unknown"
)

// GoVersion is the toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

#!/bin/sh
# Builds prometheus-operator's prometheus-config-reloader (the yardstick of
# `make bench`) from the Go module proxy into .cache/bench/, through a throwaway
# module of ours: none of its code is kept in this repository. ≈ 2.5 min cold.
set -eu
cd "$(dirname "$0")/../.."
out=.cache/bench/prometheus-config-reloader
[ -x "$out" ] && exit 0
v=v0.85.0
mod=.cache/bench/reloader-mod
mkdir -p "$mod"
cd "$mod"
cat >go.mod <<MOD
module benchreloader

go 1.24

require github.com/prometheus-operator/prometheus-operator $v

replace (
	github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring => github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring $v
	github.com/prometheus-operator/prometheus-operator/pkg/client => github.com/prometheus-operator/prometheus-operator/pkg/client $v
)
MOD
cat >tools.go <<'GO'
//go:build tools

package benchreloader

import _ "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
GO
GOFLAGS=-mod=mod go get github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader@$v
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o ../prometheus-config-reloader github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader
echo "built $out"

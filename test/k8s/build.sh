#!/usr/bin/env bash
# Builds the test control plane into .cache/k8s/bin (at the repository root):
# etcd, kube-apiserver, kube-controller-manager and cert-manager's controllers,
# all from the Go module proxy through this module's go.mod. Rebuilt only when
# the module's go.mod, go.sum, its cmd/ sources, this script or the Go version
# change (a stamp); otherwise it returns at once.
#
# Cold (nothing in the Go build cache): several minutes on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${K8S_TEST_BIN:-$root/.cache/k8s/bin}
go=${GO:-go}
binaries=(etcd kube-apiserver kube-controller-manager cert-manager)

cd "$here"
stamp=$( { "$go" version; cat go.mod go.sum build.sh; find cmd -type f -name '*.go' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)

up_to_date() {
	[ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$stamp" ] || return 1
	for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
if up_to_date; then
	echo "k8s test binaries up to date in $bin"
	exit 0
fi

mkdir -p "$bin"
rm -f "$bin/.stamp"
start=$SECONDS
echo "building the k8s test control plane into $bin (minutes when cold)…"
# Static, reproducible binaries: no cgo (etcd, the API server and the
# controller manager need none), no build paths.
CGO_ENABLED=0 "$go" build -trimpath -o "$bin/" \
	./cmd/etcd ./cmd/cert-manager \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
for b in "${binaries[@]}"; do
	[ -x "$bin/$b" ] || { echo "build.sh: $bin/$b was not built" >&2; exit 1; }
done
echo "$stamp" >"$bin/.stamp"
echo "built ${binaries[*]} in $((SECONDS - start)) s"

#!/usr/bin/env bash
# wipe.sh — stop the node for NODE_DIR and delete its state (keeps cassandra.yaml and other files).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") NODE_DIR
Runs stop.sh, then removes data, commitlog, saved_caches, hints, cdc_raw, logs and stdout.log*
from NODE_DIR. cassandra.yaml (and anything else) is kept.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") usage >&2; exit 2 ;; esac
[[ $# -eq 1 ]] || { usage >&2; exit 2; }
[[ -d "$1" ]] || exit 0
dir="$(cd "$1" && pwd -P)"
"$CASS_SCRIPTS/stop.sh" "$dir"
rm -rf "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw" "$dir/logs" \
       "$dir/stdout.log" "$dir/stdout.log.1" "$dir/cassandra.pid" "$dir/launched_at"

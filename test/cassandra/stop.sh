#!/usr/bin/env bash
# stop.sh — stop the Cassandra node started by start.sh for NODE_DIR. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") NODE_DIR
Sends SIGTERM to the node in NODE_DIR/cassandra.pid, waits up to \${STOP_TIMEOUT:-30} s,
then SIGKILL. Exits 0 when no node is running.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") usage >&2; exit 2 ;; esac
[[ $# -eq 1 ]] || { usage >&2; exit 2; }
[[ -d "$1" ]] || exit 0   # nothing was ever started there
dir="$(cd "$1" && pwd -P)"
stop_timeout="${STOP_TIMEOUT:-30}"

if ! pid="$(node_pid "$dir")"; then
  rm -f "$dir/cassandra.pid"
  exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
deadline=$(( $(date +%s) + stop_timeout ))
while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then
  echo "stop.sh: pid $pid still alive after ${stop_timeout}s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && die "pid $pid survived SIGKILL"
fi
rm -f "$dir/cassandra.pid"
echo "stop.sh: stopped Cassandra pid $pid" >&2

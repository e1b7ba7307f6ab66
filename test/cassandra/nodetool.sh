#!/usr/bin/env bash
# nodetool.sh — Cassandra's nodetool (org.apache.cassandra.tools.NodeTool) from the cached jars.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") NODETOOL_ARGS...
Runs nodetool against 127.0.0.1:\${JMX_PORT:-7199}, e.g.
  $(basename "$0") status
  $(basename "$0") reloadssl
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") usage >&2; exit 2 ;; esac
jmx_port="${JMX_PORT:-7199}"
[[ "$jmx_port" =~ ^[0-9]+$ ]] || die "JMX_PORT must be a port number"

ensure_jars
java="$(java_bin)"
exec "$java" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true \
  "${JDK17_OPTS[@]}" \
  "-Dlogback.configurationFile=file://$CASS_SCRIPTS/logback-tools.xml" \
  -Dcassandra.storagedir=/nonexistent -Dcassandra.logdir=/tmp \
  -cp "$CASS_CACHE/lib/*" org.apache.cassandra.tools.NodeTool \
  -h 127.0.0.1 -p "$jmx_port" "$@"

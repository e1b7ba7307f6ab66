#!/usr/bin/env bash
# start.sh — start a real single-node Apache Cassandra 5.0 (CassandraDaemon from the Maven jars).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") [--no-wait] NODE_DIR

Starts CassandraDaemon in the background for NODE_DIR, which must already contain a rendered
cassandra.yaml (see cassandra.yaml.tmpl). Data, commitlog, hints, saved_caches and logs go under
NODE_DIR; the pid goes to NODE_DIR/cassandra.pid, stdout/stderr to NODE_DIR/stdout.log (the
previous one to stdout.log.1), the launch time (epoch ms) to NODE_DIR/launched_at.
By default waits until the log says "Starting listening for CQL clients" (exit 0), or prints the
log tail, stops the node and exits 1 on timeout or early death.

  --no-wait          return right after launching

Environment:
  START_TIMEOUT      seconds to wait for CQL (default 180)
  JMX_PORT           local JMX port for nodetool (default 7199)
  JOLOKIA_PORT       Jolokia agent port (default 8778; 0 disables the agent)
  JOLOKIA_HOST       address the Jolokia agent listens on (default 127.0.0.1)
  HEAP_SIZE          -Xms/-Xmx (default 512m)
  JVM_EXTRA_OPTS     extra JVM options (word-split)
  CASSANDRA_CACHE    jar cache (default <repo>/.cache/cassandra; filled by fetch.sh)
  JAVA / JAVA_HOME   which java to use (JDK 17)
USAGE
}

wait_for_cql=1
dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-wait) wait_for_cql=0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "start.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
    *) [[ -z "$dir" ]] || { usage >&2; exit 2; }; dir="$1" ;;
  esac
  shift
done
[[ -n "$dir" ]] || { usage >&2; exit 2; }
[[ -d "$dir" ]] || die "NODE_DIR $dir is not a directory"
dir="$(cd "$dir" && pwd -P)"
[[ -f "$dir/cassandra.yaml" ]] || die "$dir/cassandra.yaml not found (render cassandra.yaml.tmpl first)"

start_timeout="${START_TIMEOUT:-180}"
jmx_port="${JMX_PORT:-7199}"
jolokia_port="${JOLOKIA_PORT:-8778}"
jolokia_host="${JOLOKIA_HOST:-127.0.0.1}"
heap="${HEAP_SIZE:-512m}"
[[ "$start_timeout" =~ ^[0-9]+$ ]] || die "START_TIMEOUT must be a number of seconds"
[[ "$jmx_port" =~ ^[0-9]+$ ]] || die "JMX_PORT must be a port number"
[[ "$jolokia_port" =~ ^[0-9]+$ ]] || die "JOLOKIA_PORT must be a port number (0 disables)"
[[ "$jolokia_host" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "JOLOKIA_HOST must be a loopback IPv4 address"

if pid="$(node_pid "$dir")"; then
  die "a node is already running for $dir (pid $pid); run stop.sh first"
fi

ensure_jars
java="$(java_bin)"
[[ -d "$CASS_CACHE/lib" ]] || die "no jars in $CASS_CACHE/lib"

mkdir -p "$dir/logs" "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw"
[[ -f "$dir/stdout.log" ]] && mv -f "$dir/stdout.log" "$dir/stdout.log.1"
rm -f "$dir/cassandra.pid" "$dir/launched_at"

opts=(
  "-Xms$heap" "-Xmx$heap"
  -XX:+UseG1GC
  -XX:+ExitOnOutOfMemoryError
  -Djava.net.preferIPv4Stack=true
  "${JDK17_OPTS[@]}"
  "-javaagent:$CASS_CACHE/jamm.jar"
)
if [[ "$jolokia_port" != 0 ]]; then
  [[ -f "$CASS_CACHE/jolokia-agent.jar" ]] || die "$CASS_CACHE/jolokia-agent.jar missing (run fetch.sh --force)"
  opts+=("-javaagent:$CASS_CACHE/jolokia-agent.jar=host=$jolokia_host,port=$jolokia_port,discoveryEnabled=false")
fi
opts+=(
  "-Dcassandra.config=file://$dir/cassandra.yaml"
  -Dcassandra-foreground=yes
  "-Dcassandra.storagedir=$dir"
  "-Dcassandra.logdir=$dir/logs"
  "-Dcassandra.jmx.local.port=$jmx_port"
  "-Dlogback.configurationFile=file://$CASS_SCRIPTS/logback.xml"
  # fast single-node start (ccm/dtest practice)
  -Dcassandra.superuser_setup_delay_ms=0
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.ring_delay_ms=1000
  -Dcassandra.native.epoll.enabled=false
)
# shellcheck disable=SC2206
[[ -n "${JVM_EXTRA_OPTS:-}" ]] && opts+=(${JVM_EXTRA_OPTS})

launched_ms=$(date +%s%3N)
echo "$launched_ms" > "$dir/launched_at"   # epoch millis, read by test/cassnode
# setsid: the node outlives this script and ignores the caller's terminal signals;
# all three standard streams go to files so a caller reading our output never waits for java.
# shellcheck disable=SC2016 # $$ is expanded by the inner bash (its pid becomes java's via exec)
setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$dir/cassandra.pid" \
  "$java" "${opts[@]}" -cp "$CASS_CACHE/lib/*" org.apache.cassandra.service.CassandraDaemon \
  > "$dir/stdout.log" 2>&1 < /dev/null &
for _ in $(seq 1 50); do [[ -s "$dir/cassandra.pid" ]] && break; sleep 0.1; done
pid="$(tr -dc '0-9' < "$dir/cassandra.pid" 2>/dev/null || true)"
[[ -n "$pid" ]] || die "could not read the pid of the launched node"
echo "start.sh: launched Cassandra pid $pid for $dir (log: $dir/stdout.log)" >&2

[[ $wait_for_cql -eq 1 ]] || exit 0

fail() {
  echo "start.sh: $*" >&2
  echo "----- last 40 lines of $dir/stdout.log -----" >&2
  tail -n 40 "$dir/stdout.log" >&2 || true
  echo "--------------------------------------------" >&2
  "$CASS_SCRIPTS/stop.sh" "$dir" >&2 || true
  exit 1
}

deadline=$(( $(date +%s) + start_timeout ))
while :; do
  if grep -q "Starting listening for CQL clients" "$dir/stdout.log" 2>/dev/null; then
    now_ms=$(date +%s%3N)
    echo "start.sh: CQL is up after $(( (now_ms - launched_ms) / 1000 )).$(printf '%03d' $(( (now_ms - launched_ms) % 1000 ))) s" >&2
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "Cassandra (pid $pid) exited before CQL was up"
  fi
  if (( $(date +%s) >= deadline )); then
    fail "CQL not up within ${start_timeout}s (START_TIMEOUT)"
  fi
  sleep 0.5
done

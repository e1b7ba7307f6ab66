# common.sh — shared by start.sh, stop.sh, wipe.sh and nodetool.sh (sourced, not run).
# shellcheck shell=bash

CASS_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CASS_REPO="$(cd "$CASS_SCRIPTS/../.." && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
CASS_CACHE="${CASSANDRA_CACHE:-$CASS_REPO/.cache/cassandra}"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# java_bin prints the java to use: $JAVA, else $JAVA_HOME/bin/java, else java from PATH.
java_bin() {
  if [[ -n "${JAVA:-}" ]]; then echo "$JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"
  else command -v java || die "java not found (set JAVA or JAVA_HOME; Cassandra 5.0 needs JDK 11 or 17)"
  fi
}

# ensure_jars runs fetch.sh unless the cache is complete (fetch.sh itself is a no-op then).
ensure_jars() {
  "$CASS_SCRIPTS/fetch.sh" || die "fetch.sh failed"
}

# JDK 17 flags from Cassandra 5.0's conf/jvm17-server.options (modules opened/exported to Cassandra).
# shellcheck disable=SC2034
JDK17_OPTS=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
)

# node_pid prints the pid recorded in NODE_DIR/cassandra.pid if that process is alive and is
# the Cassandra started for NODE_DIR (guards against a recycled pid); returns 1 otherwise.
node_pid() {
  local dir="$1" pid
  [[ -f "$dir/cassandra.pid" ]] || return 1
  pid="$(tr -dc '0-9' < "$dir/cassandra.pid")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qxF -- "-Dcassandra.storagedir=$dir" || return 1
  fi
  echo "$pid"
}

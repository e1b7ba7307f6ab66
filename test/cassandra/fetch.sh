#!/usr/bin/env bash
# fetch.sh — download the jars of a real Apache Cassandra node (and the Jolokia agent) into
# ${CASSANDRA_CACHE:-<repo>/.cache/cassandra}. Idempotent: does nothing when the cache already
# matches pom.xml (stamp file keyed by the pom's hash).
#
# Layout afterwards:
#   $CACHE/lib/*.jar            every runtime jar (classpath; the jolokia agent jar is kept out of it)
#   $CACHE/jolokia-agent.jar    org.jolokia:jolokia-agent-jvm (classifier javaagent)
#   $CACHE/jamm.jar             com.github.jbellis:jamm (passed as -javaagent)
#   $CACHE/.stamp               sha256 of pom.xml when the fetch completed
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [--force]
Downloads the Cassandra runtime jars with Maven into \${CASSANDRA_CACHE:-<repo>/.cache/cassandra}.
  --force   re-download even when the cache stamp matches pom.xml
USAGE
}

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${CASSANDRA_CACHE:-$repo/.cache/cassandra}"
pom="$here/pom.xml"

command -v sha256sum >/dev/null 2>&1 || { echo "fetch.sh: sha256sum not found in PATH" >&2; exit 1; }

want="$(sha256sum "$pom" | cut -d' ' -f1)"
complete() {
  [[ -f "$cache/.stamp" && "$(cat "$cache/.stamp")" == "$want" \
     && -f "$cache/jolokia-agent.jar" && -e "$cache/jamm.jar" ]] \
    && compgen -G "$cache/lib/cassandra-all-*.jar" >/dev/null
}
if [[ $force -eq 0 ]] && complete; then
  exit 0
fi

mkdir -p "$cache"
# One fetch at a time (parallel test packages may all call us on a cold cache).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  flock -w 900 9 || { echo "fetch.sh: timed out waiting for $cache/.lock" >&2; exit 1; }
  if [[ $force -eq 0 ]] && complete; then
    exit 0
  fi
fi
command -v mvn >/dev/null 2>&1 || { echo "fetch.sh: mvn not found in PATH" >&2; exit 1; }
tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch.sh: resolving Cassandra jars into $cache (a cold ~/.m2 downloads ~70 MB)" >&2
mvn -q -B -Dstyle.color=never -f "$pom" \
  dependency:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="$tmp/lib" \
  -DoverWriteReleases=true -DoverWriteSnapshots=true 2>&1 \
  | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2

jol="$(compgen -G "$tmp/lib/jolokia-agent-jvm-*-javaagent.jar" | head -n1 || true)"
jamm="$(compgen -G "$tmp/lib/jamm-*.jar" | head -n1 || true)"
[[ -n "$jol" ]] || { echo "fetch.sh: jolokia javaagent jar missing after mvn" >&2; exit 1; }
[[ -n "$jamm" ]] || { echo "fetch.sh: jamm jar missing after mvn" >&2; exit 1; }
compgen -G "$tmp/lib/cassandra-all-*.jar" >/dev/null || { echo "fetch.sh: cassandra-all jar missing after mvn" >&2; exit 1; }

# The Jolokia agent is loaded only as -javaagent, never from the classpath.
mv "$jol" "$tmp/jolokia-agent.jar"
ln -s "lib/$(basename "$jamm")" "$tmp/jamm.jar"   # same file as on the classpath

rm -rf "${cache:?}/lib" "$cache/jolokia-agent.jar" "$cache/jamm.jar" "$cache/.stamp"
mv "$tmp/lib" "$cache/lib"
mv "$tmp/jolokia-agent.jar" "$cache/jolokia-agent.jar"
mv "$tmp/jamm.jar" "$cache/jamm.jar"
printf '%s\n' "$want" > "$cache/.stamp"
jars=("$cache"/lib/*.jar)
echo "fetch.sh: ${#jars[@]} jars in $cache/lib" >&2

#!/usr/bin/env bash
# Installs what the end-to-end tests use, idempotently, into .cache/:
#   - Cassandra 5.0 and the Jolokia agent from Maven Central (test/cassandra/fetch.sh)
#   - cqlsh and the DataStax Python driver from PyPI, in a virtualenv
# The JDK (java, keytool), Maven, Python 3 and OpenSSL come with the machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CASSANDRA_TLS_AGENT_CACHE:-$root/.cache}"

for tool in java keytool mvn python3 openssl; do
  command -v "$tool" >/dev/null || { echo "deps: $tool is required but not installed" >&2; exit 1; }
done

"$root/test/cassandra/fetch.sh"

venv="$cache/venv"
stamp="$venv/.installed-cqlsh-6.2.1-driver-3.29.3"
if [ ! -f "$stamp" ]; then
  echo "deps: installing cqlsh and cassandra-driver into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # A wheel if one fits; otherwise the pure-Python build is enough for tests.
  CASS_DRIVER_NO_CYTHON=1 "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'cqlsh==6.2.1' 'cassandra-driver==3.29.3'
  touch "$stamp"
fi

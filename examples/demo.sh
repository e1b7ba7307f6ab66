#!/usr/bin/env bash
# make demo: the agent's main job on this machine, end to end, against a real
# Apache Cassandra 5.0 node started from its Maven jars.
#   1. certificates in cert-manager's Secret layout (a stand-in for cert-manager)
#   2. init (Cassandra pod): render cassandra.yaml with the secrets, build JKS stores
#   3. init (Reaper pod), started BEFORE Cassandra: waits on real CQL health, creates reaper_db
#   4. cqlsh through the generated cqlshrc over mutual TLS
#   5. sidecar: a live certificate rotation with no restart — fingerprint before/after, metrics
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
agent="$root/bin/cassandra-tls-agent"
export DEMO_DIR="$root/.cache/demo" POD_NAME=node1
export NODE_DIR="$DEMO_DIR/node" CRYPTO_DIR="$DEMO_DIR/node/crypto" CLIENT_DIR="$DEMO_DIR/reaper"
export NATIVE_PORT=19042 STORAGE_PORT=17000 JMX_PORT=17199 JOLOKIA_PORT=18778 METRICS_PORT=19180
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
served() { # the leaf the node serves on a port, seen by openssl (not by the agent)
  openssl s_client -connect "127.0.0.1:$1" -cert "$CLIENT_DIR/pem/tls.crt" -key "$CLIENT_DIR/pem/tls.key" </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$root/test/cassandra/stop.sh" "$NODE_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$root/test/cassandra/stop.sh" "$NODE_DIR" >/dev/null 2>&1 || true
rm -rf "$DEMO_DIR"; mkdir -p "$DEMO_DIR/secrets/stores" "$DEMO_DIR/secrets/cql" "$NODE_DIR"
"$root/test/deps.sh"
certgen() { (cd "$root" && go run ./test/certgen -ca-dir "$DEMO_DIR/ca" "$@") >/dev/null; }

step "1. cert-manager-style Secrets (tls.crt, tls.key, ca.crt) for the node and for Reaper"
certgen -out "$DEMO_DIR/secrets/node1-tls" -cn node1 -atomic
certgen -out "$DEMO_DIR/secrets/reaper-tls" -cn reaper
printf '%s\n' 'k3y"store: #pass {x}' > "$DEMO_DIR/secrets/stores/keystore-password"   # YAML-hostile on purpose
cp "$DEMO_DIR/secrets/stores/keystore-password" "$DEMO_DIR/secrets/stores/truststore-password"
printf 'cassandra\n' > "$DEMO_DIR/secrets/cql/username"; printf 'cassandra\n' > "$DEMO_DIR/secrets/cql/password"
chmod 600 "$DEMO_DIR"/secrets/*/*
cp "$root/test/cassandra/cassandra.yaml.tmpl" "$DEMO_DIR/cassandra.yaml.tmpl"
ls -la "$DEMO_DIR/secrets/node1-tls"

step "2. init in the Cassandra pod: cassandra.yaml rendered with the passwords, stores built"
"$agent" init --config "$root/examples/cassandra-init.yaml"
grep -A1 'keystore_password' "$NODE_DIR/cassandra.yaml" | head -2

step "3. init in the Reaper pod, started before Cassandra: it waits on a real CQL query"
"$agent" init --config "$root/examples/reaper-init.yaml" > "$DEMO_DIR/reaper-init.log" 2>&1 &
init_pid=$!
"$root/test/cassandra/start.sh" --no-wait "$NODE_DIR"
wait "$init_pid" || { cat "$DEMO_DIR/reaper-init.log"; exit 1; }
grep -E 'CQL not ready' "$DEMO_DIR/reaper-init.log" | tail -2 | cut -c1-220
grep -E 'CQL ready|bootstrap|init complete' "$DEMO_DIR/reaper-init.log"
ready_line=$(grep -m1 'Starting listening for CQL clients' "$NODE_DIR/stdout.log" | cut -d' ' -f1)
echo "node logged 'listening for CQL clients' at $ready_line"

step "4. cqlsh with the generated cqlshrc (credentials in a separate 0600 file)"
cat "$CLIENT_DIR/cqlshrc"
"$root/.cache/venv/bin/cqlsh" --cqlshrc "$CLIENT_DIR/cqlshrc" -e "SELECT cluster_name, release_version FROM system.local; DESCRIBE KEYSPACES;"

step "5. sidecar: rotate the node's certificate the way the kubelet swaps a Secret — no restart"
"$agent" sidecar --config "$root/examples/cassandra-sidecar.yaml" > "$DEMO_DIR/sidecar.log" 2>&1 &
pids+=($!)
until curl -fs "127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1; do sleep 0.2; done
node_pid=$(cat "$NODE_DIR/cassandra.pid")
before=$(served "$NATIVE_PORT")
echo "served before: $before   (Cassandra pid $node_pid)"
certgen -out "$DEMO_DIR/secrets/node1-tls" -cn node1 -atomic
want=$("$agent" inspect --output json "$DEMO_DIR/secrets/node1-tls" | grep -m1 '"sha256"' | cut -d'"' -f4)
start=$(date +%s.%N)
until [ "$(served "$NATIVE_PORT")" = "$want" ]; do sleep 0.05; done
end=$(date +%s.%N)
echo "served after:  $(served "$NATIVE_PORT")   (Cassandra pid $(cat "$NODE_DIR/cassandra.pid"))"
echo "storage port:  $(served "$STORAGE_PORT")"
awk -v a="$start" -v b="$end" 'BEGIN { printf "new certificate served %.2f s after the Secret swap (Cassandra'"'"'s own timer: 600 s)\n", b - a }'
sleep 1
curl -s "127.0.0.1:$METRICS_PORT/metrics" | grep -E '^cassandra_tls_agent_(rotation_seconds_(count|sum)|served_certificate_match|reloads_total)'
grep -E 'rotation complete' "$DEMO_DIR/sidecar.log" | tail -1
echo; echo "demo complete — files in $DEMO_DIR"

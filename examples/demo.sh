#!/usr/bin/env bash
# make demo: the agent's main job on this machine, end to end.
#   1. issue certificates the way cert-manager lays them out (a Secret volume)
#   2. build JKS keystore + truststore and PEM outputs with the agent
#   3. show what they hold, read back by the JDK's keytool
#   4. issue a renewal and rebuild: only what changed is rewritten
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
agent="$root/bin/cassandra-tls-agent"
work="$root/.cache/demo"
rm -rf "$work"; mkdir -p "$work/crypto"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. cert-manager-style Secret: tls.crt, tls.key, ca.crt"
(cd "$root" && go run ./test/certgen -ca-dir "$work/ca" -out "$work/certs/node1" -cn node1) >/dev/null
ls -l "$work/certs/node1"

step "2. cassandra-tls-agent stores (password from a file, never from the command line)"
printf 'demo-keystore-pass\n' > "$work/keystore-password"; chmod 600 "$work/keystore-password"
"$agent" stores --log-format text --source "$work/certs/node1" --password-file "$work/keystore-password" \
  --keystore "$work/crypto/keystore.jks" --truststore "$work/crypto/truststore.jks" --pem-dir "$work/crypto/pem"
ls -l "$work/crypto" "$work/crypto/pem"

step "3. cassandra-tls-agent inspect — and the JDK's own view"
CASSANDRA_TLS_AGENT_STORE_PASSWORD=demo-keystore-pass "$agent" inspect "$work/crypto/keystore.jks"
keytool -list -keystore "$work/crypto/keystore.jks" -storepass:file "$work/keystore-password" | sed -n '1,12p'

step "4. unchanged inputs: nothing is rewritten (Cassandra's mtime-based reload stays quiet)"
"$agent" stores --log-format text --source "$work/certs/node1" --password-file "$work/keystore-password" \
  --keystore "$work/crypto/keystore.jks" --truststore "$work/crypto/truststore.jks" --pem-dir "$work/crypto/pem"

step "5. a renewal (new leaf, same CA): keystore and key files rewritten, truststore left alone"
(cd "$root" && go run ./test/certgen -ca-dir "$work/ca" -out "$work/certs/node1" -cn node1) >/dev/null
"$agent" stores --log-format text --source "$work/certs/node1" --password-file "$work/keystore-password" \
  --keystore "$work/crypto/keystore.jks" --truststore "$work/crypto/truststore.jks" --pem-dir "$work/crypto/pem"

step "6. a broken renewal (key from another certificate): refused, stores untouched"
cp "$work/certs/node1/tls.key" "$work/good.key"
(cd "$root" && go run ./test/certgen -ca-dir "$work/ca" -out "$work/other" -cn other) >/dev/null
cp "$work/other/tls.key" "$work/certs/node1/tls.key"
sum_before=$(sha256sum "$work/crypto/keystore.jks")
if "$agent" stores --log-format text --source "$work/certs/node1" --password-file "$work/keystore-password" \
  --keystore "$work/crypto/keystore.jks" --truststore "$work/crypto/truststore.jks"; then
  echo "unexpected: a mismatched key was accepted" >&2; exit 1
fi
[ "$sum_before" = "$(sha256sum "$work/crypto/keystore.jks")" ] && echo "keystore.jks unchanged: $(cut -c1-16 <<<"$sum_before")…"
cp "$work/good.key" "$work/certs/node1/tls.key"
echo; echo "demo complete — outputs in $work"

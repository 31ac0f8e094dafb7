#!/usr/bin/env bash
# The compose broker's start: check the mounted TLS files and the principals' passwords, write the server
# configuration with the broker's own credentials into a private tmpfs, format the storage on the first start
# with a SCRAM-SHA-512 credential for every principal, then run the broker.
#
# Environment: KAFKA_PRINCIPALS (space-separated principal names), KAFKA_PASSWORD_<PRINCIPAL> for each (e.g.
# KAFKA_PASSWORD_BANK_ICBC for bank-icbc), CLUSTER_ID. The SCRAM credentials are written at the first format
# only; after that, change a password with kafka-configs.sh --alter --entity-type users (see RUNBOOK.md).
set -euo pipefail

TEMPLATE=/opt/issuance/kafka/server.properties
TLS_DIR=/etc/kafka/tls
RUN_DIR=${KAFKA_RUN_DIR:-/run/kafka}
CONFIG="$RUN_DIR/server.properties"
KAFKA_BIN=/opt/kafka/bin

fail() {
    echo "kafka entrypoint: $*" >&2
    exit 1
}

password_variable() {
    local name=${1^^}
    echo "KAFKA_PASSWORD_${name//-/_}"
}

password_of() {
    local variable
    variable=$(password_variable "$1")
    local value=${!variable:-}
    [[ -n "$value" ]] || fail "$variable is not set (the password of principal $1; see .env.example)"
    # Only characters that cannot break the SCRAM argument or the JAAS line; long enough to resist guessing.
    [[ "$value" =~ ^[A-Za-z0-9_-]{24,}$ ]] || fail "$variable must be 24 or more of A-Z a-z 0-9 _ -"
    printf '%s' "$value"
}

[[ -n "${CLUSTER_ID:-}" ]] || fail "CLUSTER_ID is not set"
[[ -n "${KAFKA_PRINCIPALS:-}" ]] || fail "KAFKA_PRINCIPALS is not set"
for file in broker.pem ca.crt; do
    [[ -r "$TLS_DIR/$file" ]] || fail "$TLS_DIR/$file is missing or unreadable: run \`issuance dev certs\`"
done

umask 077
mkdir -p "$RUN_DIR"
broker_password=$(password_of broker)
{
    cat "$TEMPLATE"
    echo
    echo "listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"$broker_password\";"
    echo "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$broker_password\" user_broker=\"$broker_password\";"
} >"$CONFIG"

# What the health check connects with: the broker principal over the internal listener.
cat >"$RUN_DIR/client.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$broker_password";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
PROPERTIES

scram=()
for principal in $KAFKA_PRINCIPALS; do
    scram+=(--add-scram "SCRAM-SHA-512=[name=$principal,password=$(password_of "$principal")]")
done
[[ " $KAFKA_PRINCIPALS " == *" broker "* ]] || fail "KAFKA_PRINCIPALS must name broker"

"$KAFKA_BIN/kafka-storage.sh" format --config "$CONFIG" --cluster-id "$CLUSTER_ID" --ignore-formatted "${scram[@]}"
exec "$KAFKA_BIN/kafka-server-start.sh" "$CONFIG"

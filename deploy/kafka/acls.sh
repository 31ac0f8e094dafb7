#!/usr/bin/env bash
# The compose stack's Kafka ACLs, granted by the admin principal (a super user) once the broker is up. With
# allow.everyone.if.no.acl.found=false a principal may do only what is granted here; adding an ACL that exists
# already changes nothing, so this runs again safely after a change (a removed grant is removed by hand:
# kafka-acls.sh --remove, see RUNBOOK.md).
#
# Environment: KAFKA_BOOTSTRAP (kafka:19092), KAFKA_PASSWORD_ADMIN, KAFKA_BANKS (the bank codes, each with its
# own principal bank-<code in lower case>), ISSUANCE_TOPIC_PREFIX (may be empty). The CA is /etc/kafka/tls/ca.crt.
set -euo pipefail

fail() {
    echo "kafka acls: $*" >&2
    exit 1
}

[[ -n "${KAFKA_BOOTSTRAP:-}" ]] || fail "KAFKA_BOOTSTRAP is not set"
[[ -n "${KAFKA_PASSWORD_ADMIN:-}" ]] || fail "KAFKA_PASSWORD_ADMIN is not set"
[[ -n "${KAFKA_BANKS:-}" ]] || fail "KAFKA_BANKS is not set (the bank codes of the reference data)"
P=${ISSUANCE_TOPIC_PREFIX:-}

umask 077
CLIENT=$(mktemp)
trap 'rm -f "$CLIENT"' EXIT
cat >"$CLIENT" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_PASSWORD_ADMIN";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/tls/ca.crt
PROPERTIES

# allow PRINCIPAL OPERATIONS RESOURCE-OPTION NAME: one literal ACL per operation (comma-separated).
allow() {
    local principal=$1 operations=$2 kind=$3 name=$4
    local args=()
    for operation in ${operations//,/ }; do
        args+=(--operation "$operation")
    done
    /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$CLIENT" --add \
        --allow-principal "User:$principal" "${args[@]}" "$kind" "$name" --resource-pattern-type literal \
        >/dev/null
    echo "User:$principal $operations $kind $name"
}

reads() { allow "$1" Read,Describe --topic "$2"; }
writes() { allow "$1" Write,Describe --topic "$2"; }
group() { allow "$1" Read --group "$2"; }

# What the bureau publishes from its outbox: bank requests, branch decisions and card dispatches, dead letters.
# The night (`batch run`), the consumer (`consume`) and the publisher (`vendor receive`, `outbox republish`)
# each run this relay in their own process, so each of the three principals holds these writes.
bureau_publishes() {
    local principal=$1
    for bank in $KAFKA_BANKS; do
        writes "$principal" "${P}bank.${bank}.requests"
    done
    writes "$principal" "${P}branch.decisions"
    writes "$principal" "${P}branch.card-dispatches"
    writes "$principal" "${P}issuance.dead-letters"
}

# The night: reads the branches' applications and agreements by offset ranges, without a consumer group.
reads nightly "${P}branch.applications"
reads nightly "${P}branch.agreements"
bureau_publishes nightly

bureau_publishes relay

# The bureau's consumer: every bank's answers and the branches' card events, in one group.
for bank in $KAFKA_BANKS; do
    reads consumer "${P}bank.${bank}.results"
done
reads consumer "${P}branch.card-events"
group consumer "${P}bureau"
bureau_publishes consumer

# Each bank: its own requests (its own group) in, its own results out; nothing else.
for bank in $KAFKA_BANKS; do
    principal="bank-${bank,,}"
    reads "$principal" "${P}bank.${bank}.requests"
    group "$principal" "${P}bank-simulator.${bank}"
    writes "$principal" "${P}bank.${bank}.results"
done

# The branch gateway: applications, the agreements signed at the counter (they are the bank's, authenticated
# by the bank's signature inside, carried by the branch), card receipts and collections; it reads decisions and
# the dispatches of cards on their way.
writes branch-gateway "${P}branch.applications"
writes branch-gateway "${P}branch.agreements"
writes branch-gateway "${P}branch.card-events"
reads branch-gateway "${P}branch.decisions"
reads branch-gateway "${P}branch.card-dispatches"
group branch-gateway "${P}branch-simulator"

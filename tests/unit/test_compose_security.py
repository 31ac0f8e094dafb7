"""docker-compose.yml's Kafka security, checked from its files (no Docker daemon is needed or used).

The broker serves SASL_SSL only, denies what no ACL allows, and each service connects as its own principal
with a password from the environment; deploy/kafka/acls.sh grants each bank exactly its two topics and covers
every bank of the catalog. A real broker was not started here: these tests read the configuration it would
be started with.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.dev import COMPOSE_PRINCIPALS
from issuance.kafka.dev_passwords import password_variable
from producers.catalog import BANK_CODES

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = ROOT / "deploy" / "kafka"
SUPER_USERS = {"broker", "admin"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def server() -> dict[str, str]:
    properties: dict[str, str] = {}
    for line in (KAFKA_DIR / "server.properties").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            assert key.strip() not in properties, f"{key} set twice"
            properties[key.strip()] = value.strip()
    return properties


def _listeners(value: str) -> dict[str, str]:
    """NAME://host:port,... -> {NAME: host:port}."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_every_listener_is_sasl_over_tls(server: dict[str, str]) -> None:
    protocols = dict(item.split(":", 1) for item in server["listener.security.protocol.map"].split(","))
    listeners = _listeners(server["listeners"])
    assert set(listeners) <= set(protocols)
    assert {protocols[name] for name in listeners} == {"SASL_SSL"}
    assert set(_listeners(server["advertised.listeners"])) == {"INTERNAL", "EXTERNAL"}
    assert server["inter.broker.listener.name"] == "INTERNAL"
    assert server["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert server["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert server["ssl.keystore.type"] == server["ssl.truststore.type"] == "PEM"
    assert server["ssl.endpoint.identification.algorithm"] == "https"
    assert "PLAINTEXT" not in (KAFKA_DIR / "server.properties").read_text()


def test_only_the_sasl_ssl_listener_is_published(compose: dict[str, Any], server: dict[str, str]) -> None:
    ports = {name: listener.rsplit(":", 1)[1] for name, listener in _listeners(server["listeners"]).items()}
    published = [str(port).split(":")[-1] for port in compose["services"]["kafka"]["ports"]]
    assert published == [ports["EXTERNAL"]]
    for name, service in compose["services"].items():
        if name != "kafka" and "kafka" in str(service.get("image", "")):
            assert "ports" not in service, name


def test_the_authorizer_denies_what_no_acl_allows(server: dict[str, str]) -> None:
    assert server["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert server["allow.everyone.if.no.acl.found"] == "false"
    assert {user.removeprefix("User:") for user in server["super.users"].split(";")} == SUPER_USERS
    assert server["auto.create.topics.enable"] == "false"


def _kafka_clients(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service["environment"]
        for name, service in compose["services"].items()
        if "ISSUANCE_KAFKA_BOOTSTRAP" in (service.get("environment") or {})
    }


def test_every_service_that_talks_to_kafka_has_its_own_principal(compose: dict[str, Any]) -> None:
    clients = _kafka_clients(compose)
    issuance_services = {
        name for name, service in compose["services"].items() if service.get("image") == "ssc-issuance:latest"
    }
    # The dashboard reads PostgreSQL only (nothing under dashboard/ imports kafka): no principal to hold. The
    # Dask services hold none either: the night's tasks bring the nightly's (tests/unit/test_compose_dask.py).
    assert set(clients) == issuance_services - {"dashboard", "dask-scheduler", "dask-worker"}
    assert not any(re.search(r"\bkafka\b", p.read_text()) for p in (ROOT / "dashboard").rglob("*.py"))
    usernames = {}
    for name, env in clients.items():
        assert env["ISSUANCE_KAFKA_BOOTSTRAP"] == "kafka:19092", name
        assert env["ISSUANCE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["ISSUANCE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["ISSUANCE_KAFKA_SSL_CAFILE"] == "/etc/issuance/kafka/ca.crt", name
        ca_mounts = [
            v for v in compose["services"][name]["volumes"] if v.endswith(":/etc/issuance/kafka/ca.crt:ro")
        ]
        assert ca_mounts, name
        username = env["ISSUANCE_KAFKA_SASL_USERNAME"]
        variable = password_variable(username)
        # The password comes from the environment and is required: no default in the YAML.
        assert env["ISSUANCE_KAFKA_SASL_PASSWORD"].startswith(f"${{{variable}:?"), name
        usernames[name] = username
    banks = {f"bank-{code.lower()}" for code in BANK_CODES}
    assert {usernames[b] for b in banks} == banks  # each bank's service is that bank
    assert usernames["setup"] == "admin"
    assert set(usernames.values()) - SUPER_USERS == set(COMPOSE_PRINCIPALS) - SUPER_USERS


def test_the_broker_gets_a_credential_for_every_principal(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PRINCIPALS"].split() == list(COMPOSE_PRINCIPALS)
    for principal in COMPOSE_PRINCIPALS:
        variable = password_variable(principal)
        assert env[variable] == f"${{{variable}:?set {variable} (issuance dev certs writes it)}}"
    assert kafka["entrypoint"][-1] == "/opt/issuance/kafka/entrypoint.sh"
    mounts = kafka["volumes"]
    assert not any("ca.key" in mount or "kafka.env" in mount for mount in mounts)  # the broker needs neither
    assert any(mount.endswith(":/etc/kafka/tls/broker.pem:ro") for mount in mounts)
    assert compose["services"]["kafka-acls"]["environment"]["KAFKA_BANKS"].split() == list(BANK_CODES)


def _grants() -> dict[str, set[tuple[str, str, str]]]:
    """What acls.sh grants, per principal: (operation, resource kind, name), for the empty topic prefix and
    the catalog's banks, read from the script's own helpers by running it with kafka-acls.sh replaced."""
    bash = shutil.which("bash")
    assert bash is not None
    script = (KAFKA_DIR / "acls.sh").read_text().replace("/opt/kafka/bin/kafka-acls.sh", "record_acl")
    recorder = 'record_acl() { printf "%s\\n" "$*" >&3; }\nexport -f record_acl\n'
    result = subprocess.run(
        [
            bash,
            "-c",
            recorder + 'bash -c "$0" 3>&1 >/dev/null',
            script.replace("/etc/kafka/tls/ca.crt", "/dev/null"),
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "KAFKA_BOOTSTRAP": "kafka:19092",
            "KAFKA_PASSWORD_ADMIN": "x" * 24,
            "KAFKA_BANKS": " ".join(BANK_CODES),
            "ISSUANCE_TOPIC_PREFIX": "",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    grants: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for line in result.stdout.splitlines():
        args = line.split()
        principal = args[args.index("--allow-principal") + 1].removeprefix("User:")
        operations = [args[i + 1] for i, arg in enumerate(args) if arg == "--operation"]
        kind = next(arg for arg in args if arg in ("--topic", "--group"))
        name = args[args.index(kind) + 1]
        assert args[args.index("--resource-pattern-type") + 1] == "literal"
        assert "--deny-principal" not in args
        for operation in operations:
            grants[principal].add((operation, kind.removeprefix("--"), name))
    return grants


@pytest.fixture(scope="module")
def grants() -> dict[str, set[tuple[str, str, str]]]:
    return _grants()


def test_each_bank_gets_exactly_its_two_topics_and_its_group(
    grants: dict[str, set[tuple[str, str, str]]],
) -> None:
    for code in BANK_CODES:
        assert grants[f"bank-{code.lower()}"] == {
            ("Read", "topic", f"bank.{code}.requests"),
            ("Describe", "topic", f"bank.{code}.requests"),
            ("Write", "topic", f"bank.{code}.results"),
            ("Describe", "topic", f"bank.{code}.results"),
            ("Read", "group", f"bank-simulator.{code}"),
        }


def test_no_principal_beyond_the_compose_ones_and_no_super_user_needs_acls(
    grants: dict[str, set[tuple[str, str, str]]],
) -> None:
    assert set(grants) == set(COMPOSE_PRINCIPALS) - SUPER_USERS


def _topics(grants: set[tuple[str, str, str]], operation: str) -> set[str]:
    return {name for op, kind, name in grants if op == operation and kind == "topic"}


def test_the_bureau_and_the_branches_get_their_topics(grants: dict[str, set[tuple[str, str, str]]]) -> None:
    requests = {f"bank.{code}.requests" for code in BANK_CODES}
    publishes = requests | {"branch.decisions", "branch.card-dispatches", "issuance.dead-letters"}
    for principal in ("nightly", "consumer", "relay"):
        assert _topics(grants[principal], "Write") == publishes, principal
    assert _topics(grants["nightly"], "Read") == {"branch.applications", "branch.agreements"}
    assert not any(kind == "group" for _op, kind, _name in grants["nightly"])  # the night reads by offsets
    assert _topics(grants["consumer"], "Read") == {f"bank.{c}.results" for c in BANK_CODES} | {
        "branch.card-events"
    }
    assert ("Read", "group", "bureau") in grants["consumer"]
    assert _topics(grants["relay"], "Read") == set()
    assert _topics(grants["branch-gateway"], "Write") == {
        "branch.applications",
        "branch.agreements",
        "branch.card-events",
    }
    assert _topics(grants["branch-gateway"], "Read") == {"branch.decisions", "branch.card-dispatches"}


def test_the_shell_scripts_parse() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    scripts = sorted(KAFKA_DIR.glob("*.sh"))
    assert {p.name for p in scripts} == {"entrypoint.sh", "acls.sh"}
    for script in scripts:
        subprocess.run([bash, "-n", str(script)], check=True)

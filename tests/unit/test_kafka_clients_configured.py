"""Every Kafka client in the tree is built with the shared connection options (TLS, SASL).

A client constructed with its own `bootstrap_servers=` would ignore ISSUANCE_KAFKA_SECURITY_PROTOCOL and the
credentials, and talk in clear to a broker that a deployment secured. This walks the source (ast, no import)
and names every construction that does not spread `**<config>.client_kwargs()`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("issuance", "producers", "consumers", "pipelines", "dashboard", "cli", "benchmarks", "tests")
CLIENTS = {"KafkaProducer", "KafkaConsumer", "KafkaAdminClient"}


def _client_name(call: ast.Call) -> str | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name if name in CLIENTS else None


def _configured(call: ast.Call) -> bool:
    """One `**x.client_kwargs()` and no address or security option of its own."""
    spread = [
        k.value
        for k in call.keywords
        if k.arg is None
        and isinstance(k.value, ast.Call)
        and isinstance(k.value.func, ast.Attribute)
        and k.value.func.attr == "client_kwargs"
    ]
    own = {k.arg for k in call.keywords if k.arg is not None}
    overridden = own & {"bootstrap_servers", "security_protocol"} or {
        a for a in own if a.startswith(("ssl_", "sasl_"))
    }
    return len(spread) == 1 and not overridden


def unconfigured_clients(root: Path) -> list[str]:
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and (name := _client_name(node)) and not _configured(node):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    return found


def test_every_kafka_client_takes_the_shared_options() -> None:
    assert unconfigured_clients(ROOT) == [], (
        "construct Kafka clients with **KafkaClientConfig.client_kwargs() (issuance/kafka/client_config.py)"
    )


def test_the_walk_finds_clients_built_without_them(tmp_path: Path) -> None:
    (tmp_path / "issuance").mkdir()
    (tmp_path / "issuance" / "bad.py").write_text(
        "from kafka import KafkaConsumer, KafkaProducer\n"
        "import kafka\n"
        "a = KafkaProducer(bootstrap_servers='h:9092')\n"
        "b = kafka.KafkaAdminClient(**config.client_kwargs(), security_protocol='PLAINTEXT')\n"
        "c = KafkaConsumer('t', **config.client_kwargs(), sasl_plain_password='x')\n"
        "d = KafkaConsumer('t', **config.client_kwargs(), group_id=None)\n"
        "e = KafkaProducer(**options)\n"
    )
    assert unconfigured_clients(tmp_path) == [
        "issuance/bad.py:3 KafkaProducer",
        "issuance/bad.py:4 KafkaAdminClient",
        "issuance/bad.py:5 KafkaConsumer",
        "issuance/bad.py:7 KafkaProducer",
    ]

"""The compose Dask cluster, checked from docker-compose.yml: the nightly runs its Beam stage there, every
Dask comm is mutual TLS, and the scheduler and workers hold no credential of their own (the tasks bring
them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASK_SERVICES = ("dask-scheduler", "dask-worker", "nightly")
TLS_FILES = "/etc/issuance/dask"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_nightly_runs_its_stage_on_the_compose_scheduler_over_tls(compose: dict[str, Any]) -> None:
    nightly = compose["services"]["nightly"]["environment"]
    assert nightly["ISSUANCE_ENGINE"] == "${ISSUANCE_ENGINE:-dask}"
    assert nightly["ISSUANCE_DASK_ADDRESS"] == "tls://dask-scheduler:8786"
    worker = compose["services"]["dask-worker"]
    assert worker["command"][0] == "tls://dask-scheduler:8786"
    assert worker["command"][worker["command"].index("--nthreads") + 1] == "1"
    assert "replicas" not in worker.get("deploy", {}), "scaled with --scale dask-worker=N"


@pytest.mark.parametrize("name", DASK_SERVICES)
def test_every_dask_comm_is_mutual_tls(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    env = service["environment"]
    assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "true"
    assert env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == f"{TLS_FILES}/ca.crt"
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        assert env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] == f"{TLS_FILES}/dask.pem"
    assert any(v.endswith(f":{TLS_FILES}:ro") for v in service["volumes"]), name


@pytest.mark.parametrize("name", ["dask-scheduler", "dask-worker"])
def test_the_dask_services_hold_no_credential(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["image"] == "ssc-issuance:latest", "the workers run the project's code"
    held = set(service["environment"])
    assert not {k for k in held if k.startswith("ISSUANCE_")}, "no database URL, key or Kafka password"
    # The dashboard only on the host's loopback; the scheduler's port stays on the compose network.
    assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", []))

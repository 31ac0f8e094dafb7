"""Process bookkeeping shared by the embedded services: liveness that survives pid reuse, and clean stops."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from issuance.errors import IssuanceError


class ServiceStartFailed(IssuanceError):
    """An embedded service did not start or did not answer in time."""


@dataclass(frozen=True)
class ProcessRef:
    """A process identified by pid and start time, so that a reused pid is never mistaken for ours."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """Reference a running process by pid."""
        return cls(pid=pid, create_time=psutil.Process(pid).create_time())

    def process(self, marker: str) -> psutil.Process | None:
        """The live process if it is still the one recorded and its command line contains marker."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.5 or not proc.is_running():
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if marker not in " ".join(proc.cmdline()):
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        return proc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the caller retries if it is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_processes(procs: Iterable[psutil.Process], first_signal: int, timeout: float = 30.0) -> None:
    """Signal the processes, wait for them and their children to exit, and kill what is left."""
    targets = list(procs)
    family: dict[int, psutil.Process] = {p.pid: p for p in targets}
    for proc in targets:
        try:
            for child in proc.children(recursive=True):
                family[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    for proc in targets:
        try:
            proc.send_signal(first_signal)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(list(family.values()), timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=10)


def wait_until(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Poll predicate until it returns true, else raise ServiceStartFailed naming what."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise ServiceStartFailed(f"{what} did not become ready within {timeout:.0f} s")
        time.sleep(interval)

"""Where a benchmark's CPU goes: process CPU times sampled by role, cut into the phases of the run.

A sampler thread reads the CPU times (user + system) of this process, its descendants and the throw-away
services (the PostgreSQL server and the broker, found by the benchmark's temporary directory in their command
line or working directory) every half second, with a timestamp. Phases are time windows; the CPU a role spent
in a window is read off the samples at its edges (linear between two samples).

Roles: `beam workers` (Beam's SDK worker processes and theirs), `run process` (this process: the nightly's
main thread and its threads), `helpers` (the other descendants: personalization and relay helpers),
PostgreSQL by its process titles: `pg backends` (the clients' connections), `pg autovacuum` (autovacuum
workers), `pg other` (the postmaster, checkpointer, WAL writer, background writer, I/O workers); `broker`;
and `sampling` (the benchmark's own sampler threads, taken out of `run process`).

A process that ends between two samples is not lost: its parent's reaped-children times grow by its final
total when it is waited for, and that growth is credited to the processes below it that vanished in the
same interval. Reading /proc/<pid>/stat is cheap (no page-table walk, unlike PSS); one sample of the
twenty-odd processes of a night costs a few milliseconds.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROLES = (
    "beam workers",
    "run process",
    "helpers",
    "pg backends",
    "pg autovacuum",
    "pg other",
    "broker",
    "sampling",
)
# Titles of PostgreSQL's own processes (`postgres: checkpointer`, ...); a client backend's title names its
# user, database and client instead.
_PG_OWN = (
    "checkpointer",
    "walwriter",
    "background writer",
    "io worker",
    "logger",
    "launcher",
    "walsummarizer",
)
INTERVAL_S = 0.5
BUSY_S = 0.01  # CPU seconds between two samples above which a role counts as busy


@dataclass(frozen=True, slots=True)
class Window:
    """A phase: a label and its [start, end) on the monotonic clock."""

    label: str
    start: float
    end: float


def _times(proc: psutil.Process) -> tuple[float, float] | None:
    """(own CPU, CPU of its reaped children) in seconds, or None once the process is gone."""
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system, t.children_user + t.children_system


def _role_of(proc: psutil.Process, inherited: str) -> str:
    try:
        cmdline = " ".join(proc.cmdline())
        name = proc.name()
    except psutil.Error:
        return inherited
    if "tansu" in name or "tansu" in cmdline:
        return "broker"
    if name.startswith("postgres") or cmdline.startswith("postgres"):
        if "autovacuum worker" in cmdline:
            return "pg autovacuum"
        if cmdline.startswith("postgres:") and not any(title in cmdline for title in _PG_OWN):
            return "pg backends"
        return "pg other"
    if "sdk_worker_main" in cmdline:
        return "beam workers"
    return inherited


class CpuSampler:
    """Samples CPU per role while the benchmark runs (a context manager); `threads` are native thread ids
    of this process whose CPU is the benchmark's own measuring (`sampling`), the sampler's thread included."""

    def __init__(self, services_root: Path, interval: float = INTERVAL_S) -> None:
        self._root = str(services_root)
        self._interval = interval
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="bench-cpu-sampler", daemon=True)
        self.measuring_threads: set[int] = set()
        self.times: list[float] = []
        self.samples: list[dict[str, float]] = []
        self.last_busy: dict[str, float] = {}  # role -> the last sample in which it spent CPU
        self._service_roots: list[psutil.Process] = []
        self._procs: dict[int, psutil.Process] = {}
        self._role: dict[int, str] = {}
        self._own: dict[int, float] = {}  # last seen own CPU of each live process (baseline removed)
        self._reaped: dict[int, float] = {}  # last seen reaped-children CPU of each live process
        self._reaped_first: dict[int, float] = {}  # its reaped-children CPU when first seen
        self._parent: dict[int, int] = {}
        self._credited: dict[str, float] = defaultdict(float)  # CPU of processes that ended
        self._base: dict[int, float] = {}  # own CPU at the first sample of processes already running
        self._measuring: dict[int, float] = {}  # CPU of each measuring thread, last seen
        self._first = True

    # -- sampling ----------------------------------------------------------------------------------------

    def _find_services(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            cmdline = " ".join(proc.info.get("cmdline") or ())
            cwd = proc.info.get("cwd") or ""
            if proc.pid != self._me.pid and (self._root in cmdline or cwd.startswith(self._root)):
                found.append(proc)
        return found

    def _tree(self) -> dict[int, tuple[psutil.Process, int, str]]:
        """Every process to watch: pid -> (process, parent pid, role)."""
        children: dict[int, list[psutil.Process]] = defaultdict(list)
        for proc in psutil.process_iter(["ppid"]):
            children[proc.info["ppid"]].append(proc)
        tree: dict[int, tuple[psutil.Process, int, str]] = {}
        roots = [(self._me, 0, "run process")]
        roots += [(p, 0, _role_of(p, "helpers")) for p in self._service_roots]
        stack = list(roots)
        while stack:
            proc, parent, role = stack.pop()
            if proc.pid in tree:
                continue
            tree[proc.pid] = (proc, parent, role)
            for child in children.get(proc.pid, ()):
                known = self._role.get(child.pid)
                child_role = known or _role_of(child, "helpers" if role == "run process" else role)
                stack.append((child, proc.pid, child_role))
        return tree

    def sample(self) -> None:
        """One sample (also called from outside to mark an instant precisely)."""
        with self._lock:
            now = time.monotonic()
            tree = self._tree()
            seen: dict[int, tuple[float, float]] = {}
            for pid, (proc, _parent, _role) in tree.items():
                times = _times(proc)
                if times is not None:
                    seen[pid] = times
            vanished = [pid for pid in self._own if pid not in seen]
            self._credit_ended(seen, vanished)
            for pid in vanished:
                for table in (self._own, self._reaped, self._reaped_first, self._role, self._parent):
                    table.pop(pid, None)
            for pid, (own, reaped) in seen.items():
                _proc, parent, role = tree[pid]
                if pid not in self._role:
                    # Processes running before the first sample count from there; later ones from their start.
                    if self._first:
                        self._base[pid] = own
                    self._reaped[pid] = self._reaped_first[pid] = reaped
                    self._role[pid] = role
                    self._parent[pid] = parent
                self._own[pid] = own - self._base.get(pid, 0.0)
            self._first = False
            totals = dict.fromkeys(ROLES, 0.0)
            for pid, own in self._own.items():
                totals[self._role[pid]] += own
            for role, credited in self._credited.items():
                totals[role] += credited
            measuring = self._measuring_cpu()
            totals["run process"] -= measuring
            totals["sampling"] += measuring
            if self.samples:
                for role in ROLES:
                    if totals[role] - self.samples[-1][role] > BUSY_S:
                        self.last_busy[role] = now
            self.times.append(now)
            self.samples.append(totals)

    def _credit_ended(self, seen: dict[int, tuple[float, float]], vanished: list[int]) -> None:
        """Credit the CPU of processes that ended since the last sample to their roles.

        When a process is waited for, its final total (its own time and that of the children it waited for)
        is added to its parent's reaped-children time. So the growth of a live process's reaped-children
        time is the final total of the vanished processes below it (nearest live ancestor), less what was
        already counted of them: their own time last seen and the reaped-children time they had gained
        since first seen (credited when their own children ended). Each keeps what was seen of it; the rest
        is shared by weight. A process with no live ancestor keeps what was seen of it."""
        gone = set(vanished)
        below: dict[int, list[int]] = defaultdict(list)
        for pid in vanished:
            self._credited[self._role[pid]] += self._own[pid]
            ancestor = self._parent.get(pid, 0)
            while ancestor in gone:
                ancestor = self._parent.get(ancestor, 0)
            if ancestor in seen and ancestor in self._reaped:
                below[ancestor].append(pid)
        for pid, (_own, reaped) in seen.items():
            if pid not in self._reaped:
                continue
            grown = max(reaped - self._reaped[pid], 0.0)
            self._reaped[pid] = reaped
            ended = below.get(pid, [])
            counted = sum(self._own[v] + self._reaped[v] - self._reaped_first[v] for v in ended)
            rest = grown - counted
            if rest <= 0:
                continue
            if ended:
                total = sum(self._own[v] + 1e-6 for v in ended)
                for v in ended:
                    self._credited[self._role[v]] += rest * (self._own[v] + 1e-6) / total
            else:  # a child that started and ended between two samples
                role = self._role[pid]
                self._credited["helpers" if role == "run process" else role] += rest

    def _measuring_cpu(self) -> float:
        """CPU of the measuring threads so far (a thread that ended keeps what was last seen of it)."""
        try:
            for thread in self._me.threads():
                if thread.id in self.measuring_threads:
                    self._measuring[thread.id] = thread.user_time + thread.system_time
        except psutil.Error:
            pass
        return sum(self._measuring.values())

    def _loop(self) -> None:
        if self._thread.native_id is not None:
            self.measuring_threads.add(self._thread.native_id)
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> CpuSampler:
        self._service_roots = self._find_services()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    # -- reading -----------------------------------------------------------------------------------------

    def at(self, instant: float) -> dict[str, float]:
        """Cumulative CPU per role at `instant` (linear between the two samples around it)."""
        if not self.times:
            return dict.fromkeys(ROLES, 0.0)
        i = bisect_left(self.times, instant)
        if i <= 0:
            return dict(self.samples[0])
        if i >= len(self.times):
            return dict(self.samples[-1])
        t0, t1 = self.times[i - 1], self.times[i]
        share = (instant - t0) / (t1 - t0) if t1 > t0 else 1.0
        before, after = self.samples[i - 1], self.samples[i]
        return {role: before[role] + (after[role] - before[role]) * share for role in ROLES}

    def spent(self, window: Window) -> dict[str, float]:
        """CPU seconds per role within a window."""
        start, end = self.at(window.start), self.at(window.end)
        return {role: max(end[role] - start[role], 0.0) for role in ROLES}


def profile(sampler: CpuSampler, windows: Iterable[Window], records: int) -> dict[str, dict[str, float]]:
    """Per window: wall seconds, cores busy, and CPU microseconds per record of each role and in total."""
    out: dict[str, dict[str, float]] = {}
    for window in windows:
        spent = sampler.spent(window)
        wall = max(window.end - window.start, 1e-9)
        row = {"wall_s": round(wall, 2), "cores": round(sum(spent.values()) / wall, 2)}
        row.update({role: round(cpu * 1e6 / max(records, 1), 1) for role, cpu in spent.items()})
        row["total"] = round(sum(spent.values()) * 1e6 / max(records, 1), 1)
        out[window.label] = row
    return out


def render(table: dict[str, dict[str, float]]) -> list[str]:
    """The profile as text lines: one row per phase, CPU µs per record by role."""
    heads = ["wall s", "cores", *ROLES, "total"]
    lines = [f"{'phase':<30}" + "".join(f"{h:>14}" for h in heads)]
    for label, row in table.items():
        cells = [row["wall_s"], row["cores"], *(row[r] for r in ROLES), row["total"]]
        lines.append(f"{label:<30}" + "".join(f"{c:>14,.1f}" for c in cells))
    return lines

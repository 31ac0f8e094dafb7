"""The benchmark's CPU sampler counts processes that end between samples once, wherever they sit in the tree.

The kernel's own account of the children this test waited for (getrusage) is the oracle: the sampler must
neither lose the CPU of a process that lived between two samples nor count a worker twice when the shell
that started it ends with it. CPU seconds are compared, not durations."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cpu_profile import CpuSampler, Window

BUSY = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {cpu}: pass"


def _busy(cpu: float) -> str:
    return f"{sys.executable} -c '{BUSY.format(cpu=cpu)}'"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_processes_that_end_are_counted_once(tmp_path: Path) -> None:
    with CpuSampler(tmp_path / "no-services") as cpu:
        start, before = cpu.times[-1], _children_cpu()
        # A shell that does not exec (two commands in a row), a direct child, one too short to be sampled.
        shell = subprocess.Popen(["sh", "-c", f"{_busy(0.8)}; {_busy(0.4)}; true"])
        direct = subprocess.Popen(["sh", "-c", f"exec {_busy(0.6)}"])
        brief = subprocess.Popen([sys.executable, "-c", BUSY.format(cpu=0.01)])
        for process in (shell, direct, brief):
            assert process.wait() == 0
        children = _children_cpu() - before
        cpu.sample()
        end = cpu.times[-1]

    spent = cpu.spent(Window("children", start, end))
    assert children >= 1.8
    assert spent["helpers"] == pytest.approx(children, rel=0.05)
    # Nothing of these children lands in another group (other tests of the same session may leave a
    # descendant of this process finishing its last tick meanwhile: a hundredth of a second at most).
    for group in ("beam workers", "pg backends", "broker"):
        assert spent[group] == pytest.approx(0.0, abs=0.05), group

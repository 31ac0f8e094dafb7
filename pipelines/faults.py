"""Fault injection for recovery drills: ISSUANCE_CRASH_AT=<point> kills the process with SIGKILL there.

Operators use it to rehearse a crash at a chosen moment of a night (and the tests use it to prove that a
killed run, run again, reaches the same end state). Points: planned, staged_chunk, staged, allocated,
committed, files_written, published_some (events sent, not yet stamped published)."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "ISSUANCE_CRASH_AT"
POINTS = ("planned", "staged_chunk", "staged", "allocated", "committed", "files_written", "published_some")


def crash_point(name: str) -> None:
    """Kill this process (no cleanup, no flush) when ISSUANCE_CRASH_AT names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

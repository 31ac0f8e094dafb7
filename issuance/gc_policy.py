"""Garbage-collector settings for the processes that do the night's bulk work.

A night allocates millions of short-lived objects (decoded records, rows, envelopes), and whole batches of
them stay alive while a chunk is worked on. With CPython's default thresholds (700, 10, 10) the collector runs
every few hundred allocations, and its full collections walk every live object again and again: a quarter of a
Beam worker's CPU time at 200,000 applications. Almost nothing the batch allocates forms reference cycles, so
collecting rarely frees the same memory, only later.
"""

from __future__ import annotations

import gc

BATCH_THRESHOLDS = (100_000, 50, 100)

_applied = False


def use_batch_thresholds() -> None:
    """Collect rarely in this process, and leave what it holds so far (modules, set-up state) out of every
    later collection. Idempotent: each worker, helper and the main process calls it once it is set up."""
    global _applied
    if _applied:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BATCH_THRESHOLDS)
    _applied = True

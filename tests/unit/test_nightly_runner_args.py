"""Which Beam running mode a night gets when `batch run` is given no running mode."""

from __future__ import annotations

import os
from pathlib import Path

from issuance.settings import Settings
from pipelines.nightly import _runner_args

MODE = "--direct_running_mode=multi_processing"


def _settings(tmp_path: Path, parallel_from_records: int = 50_000, beam_workers: int = 0) -> Settings:
    return Settings(
        state_dir=tmp_path, parallel_from_records=parallel_from_records, beam_workers=beam_workers
    )


def test_a_small_night_runs_in_process(tmp_path: Path) -> None:
    assert _runner_args([], 49_999, _settings(tmp_path, parallel_from_records=50_000)) == []


def test_a_big_night_gets_worker_processes(tmp_path: Path) -> None:
    settings = _settings(tmp_path, parallel_from_records=50_000, beam_workers=3)
    assert _runner_args(["--x=1"], 50_000, settings) == ["--x=1", MODE, "--direct_num_workers=3"]


def test_one_worker_per_cpu_by_default(tmp_path: Path) -> None:
    args = _runner_args([], 10**6, _settings(tmp_path))
    assert args == [MODE, f"--direct_num_workers={os.cpu_count() or 1}"]


def test_a_running_mode_given_is_kept(tmp_path: Path) -> None:
    given = ["--direct_running_mode=in_memory"]
    assert _runner_args(given, 10**6, _settings(tmp_path)) == given

"""The Beam options of a night: the DirectRunner's running mode when none is given; the DaskRunner's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.engines import parse_engines
from issuance.settings import Settings
from pipelines.engines import DASK_RUNNER, dask_args, runner_args
from pipelines.engines import direct_args as _runner_args

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


def test_dask_gets_its_runner_the_scheduler_and_one_chunk_per_partition() -> None:
    args = dask_args(["--runner=DirectRunner", "--x=1"], "tcp://h:8786")
    assert args[:2] == [f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://h:8786"]
    assert "--dask_partition_size=1" in args and "--x=1" in args
    assert "--runner=DirectRunner" not in args


def test_dask_options_given_win() -> None:
    args = dask_args(["--dask_npartitions=4", "--dask_connection_timeout=5"], "tcp://h:8786")
    assert "--dask_partition_size=1" not in args
    assert [a for a in args if a.startswith("--dask_connection_timeout")] == ["--dask_connection_timeout=5"]


def test_direct_yields_its_options_and_no_unknown_engine_runs(tmp_path: Path) -> None:
    with runner_args("direct", [], 1, _settings(tmp_path)) as args:
        assert args == []
    with pytest.raises(ValueError, match="unknown engine"), runner_args("flink", [], 1, _settings(tmp_path)):
        pass


def test_the_benchmark_engines() -> None:
    specs = parse_engines("direct,dask1,dask2")
    assert [(s.engine, s.workers) for s in specs] == [("direct", 0), ("dask", 1), ("dask", 2)]
    with pytest.raises(ValueError):
        parse_engines("direct2")

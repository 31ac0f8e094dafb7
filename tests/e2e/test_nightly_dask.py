"""`issuance batch run --engine dask`: nights staged by Beam's DaskRunner on worker processes reach exactly
the end state of the DirectRunner's nights over the same data, also when a Dask worker is SIGKILLed
mid-stage or the run itself is killed at each recovery point and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from issuance.settings import Settings
from issuance.store.db import connect
from tests.e2e.test_nightly_cli import (
    _comparable,
    _env,
    _files,
    _open_accounts,
    _prepare,
    batch_run,
    twin_settings,
)
from tests.fixtures_nightly import Generated, end_state, make_generated, publish_night

__all__ = ["twin_settings"]  # the uninterrupted DirectRunner world, a fixture

APPLICATIONS = 300
WORKERS = 2
SMALL_CHUNKS = "25"  # a few dozen chunks: tasks spread over both workers, one is under way when one dies
STARTED_S = 60


@pytest.fixture
def generated(tmp_path: Path) -> Generated:
    return make_generated(tmp_path / "data", APPLICATIONS, seed=17)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two worker processes started as an operator starts them (`dask scheduler`,
    `dask worker --nthreads 1`), without nannies: a killed worker stays dead."""
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    procs = [
        subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + STARTED_S
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(WORKERS):
            procs.append(
                subprocess.Popen(
                    [str(bin_dir / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                     "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(address, timeout=STARTED_S) as client:
            client.wait_for_workers(WORKERS, timeout=STARTED_S)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _counters(url: str) -> dict[str, int]:
    """The run's counters that both engines count (the DoFns' timings only exist on the DirectRunner)."""
    with connect(url) as conn:
        row = conn.execute("SELECT counters FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert row is not None
    skipped = ("personalize.busy_ms", "personalize.cards_per_s")
    return {k: v for k, v in row[0].items() if v and k not in skipped}


def _dask_env(settings: Settings) -> dict[str, str]:
    return _env(settings) | {"ISSUANCE_BEAM_WORKERS": str(WORKERS), "ISSUANCE_CHUNK_SIZE": SMALL_CHUNKS}


def _same_end_state(settings: Settings, twin: Settings) -> None:
    assert settings.database_url is not None and twin.database_url is not None
    url, twin_url = settings.database_url.get_secret_value(), twin.database_url.get_secret_value()
    assert _comparable(end_state(url)) == _comparable(end_state(twin_url))
    assert _files(settings) == _files(twin)


def test_two_nights_on_a_local_dask_cluster_reach_the_direct_runners_end_state(
    settings: Settings, twin_settings: Settings, generated: Generated
) -> None:
    """Night 1 accepts (the records' branch); night 2 also personalizes night 1's cards (the cards' branch,
    which the DaskRunner runs only because both branches end in one collection)."""
    urls = {id(world): _prepare(world, generated) for world in (twin_settings, settings)}
    for night in (1, 2):
        day = generated.business_date(night)
        if night == 2:
            for world in (twin_settings, settings):
                _open_accounts(world)
                publish_night(world, generated, 2)
        direct = batch_run(_env(twin_settings), "--business-date", day, "--json")
        assert direct.returncode == 0, direct.stderr[-2000:]
        done = batch_run(_dask_env(settings), "--business-date", day, "--engine", "dask", "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "local cluster of 2 worker processes" in done.stderr
        assert "dashboard http://127.0.0.1:" in done.stderr, done.stderr[-3000:]
        assert json.loads(done.stdout)["balanced"]
        _same_end_state(settings, twin_settings)
        assert _counters(urls[id(settings)]) == _counters(urls[id(twin_settings)])
    assert _counters(urls[id(settings)])["personalize.cards"] > 0
    assert any(name.startswith("run-000002/") for name in _files(settings)), "night 2 wrote vendor files"


def _staged_chunks(url: str) -> int:
    with connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM staged_chunks").fetchone()
    return int(row[0]) if row else 0


def _staging(url: str) -> bool:
    """Whether the run in flight has not finished staging."""
    with connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT staged_at IS NULL FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    return bool(row and row[0])


def test_a_dask_worker_killed_mid_stage_then_the_night_reaches_the_uninterrupted_end_state(
    settings: Settings, twin_settings: Settings, generated: Generated, dask_cluster: str
) -> None:
    """SIGKILL one of the cluster's two workers once the first chunk is staged: the scheduler runs its tasks
    on the other (a chunk's rows replace that chunk's rows), or the run fails and the next one finishes it."""
    day = generated.business_date(1)
    twin_url = _prepare(twin_settings, generated)
    direct = batch_run(_env(twin_settings), "--business-date", day)
    assert direct.returncode == 0, direct.stderr[-2000:]

    url = _prepare(settings, generated)
    env = _dask_env(settings) | {"ISSUANCE_ENGINE": "dask", "ISSUANCE_DASK_ADDRESS": dask_cluster}
    command = [str(Path(sys.executable).parent / "issuance"), "batch", "run", "--business-date", day]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Client(dask_cluster, timeout=STARTED_S) as client:
        pids = sorted(client.run(os.getpid).values())  # each worker process answers with its pid
        deadline = time.monotonic() + STARTED_S
        while _staged_chunks(url) == 0 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        staged_at_kill = _staged_chunks(url)
        assert run.poll() is None, "the run ended before a worker could be killed"
        os.kill(pids[0], signal.SIGKILL)
        assert _staging(url), "the worker was killed while the night was staging"
    stdout, stderr = run.communicate(timeout=300)
    assert staged_at_kill > 0
    assert run.returncode in (0, 1), stderr[-2000:]  # finished on the other worker, or failed cleanly
    if run.returncode == 1:
        again = batch_run(env, "--business-date", day)
        assert again.returncode == 0, again.stderr[-2000:]
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCEEDED'").fetchone()
    assert row == (1,)
    assert ("平衡" in stdout and "不平衡" not in stdout) or run.returncode == 1  # the verdict, in Chinese
    _same_end_state(settings, twin_settings)
    assert _counters(url) == _counters(twin_url)


def test_the_runs_recovery_points_on_dask_then_a_rerun_reaches_the_uninterrupted_end_state(
    settings: Settings, twin_settings: Settings, generated: Generated
) -> None:
    """The SIGKILL drill of `ISSUANCE_CRASH_AT` with the dask engine. `staged_chunk` is reached in a Dask
    worker, which dies; its tasks are run again on the cluster's other workers, each of which dies there too,
    until the scheduler gives the chunk up (KilledWorker): the run exits 1 and the next one stages it."""
    day = generated.business_date(1)
    _prepare(twin_settings, generated)
    direct = batch_run(_env(twin_settings), "--business-date", day)
    assert direct.returncode == 0, direct.stderr[-2000:]

    _prepare(settings, generated)
    env = _dask_env(settings) | {"ISSUANCE_ENGINE": "dask"}
    for point in ("planned", "staged_chunk", "staged", "allocated", "committed", "published_some"):
        killed = batch_run(env, "--business-date", day, crash_at=point)
        expected = 1 if point == "staged_chunk" else -signal.SIGKILL
        assert killed.returncode == expected, (point, killed.returncode, killed.stderr[-2000:])
    final = batch_run(env, "--business-date", day)
    assert final.returncode == 0, final.stderr[-2000:]
    _same_end_state(settings, twin_settings)

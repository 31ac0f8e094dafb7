"""What runs the night's Beam stage: Beam's DirectRunner on this machine or Beam's DaskRunner on Dask.

    with runner_args(engine, beam_args, planned, settings, notice) as args:   # Beam options of the run
        result = beam.Pipeline(options=PipelineOptions(args)) ... .run()
        reported = finish(result)        # False: the engine reports no Beam metrics (count the staged rows)

`direct` (the default): in-process, or Beam's worker processes for a big night (`--direct_running_mode`).
`dask`: the scheduler at `ISSUANCE_DASK_ADDRESS`, else a Dask cluster of its own for the run: a scheduler and
`ISSUANCE_BEAM_WORKERS` worker processes (one thread each) on this machine, talking over TCP, closed after it.
What the DaskRunner of Beam 2.77 translates and what the night does about the rest: pipelines/README.md,
"Engines".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from issuance.errors import IssuanceError
from issuance.settings import Settings

DIRECT, DASK = "direct", "dask"
ENGINES = (DIRECT, DASK)
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# One chunk per Dask partition: the DaskRunner's Reshuffle is an identity, and its Create puts up to 128
# elements in one partition, so a night's few dozen chunks would otherwise run as one task on one worker.
DASK_PARTITION_ARG = "--dask_partition_size=1"
DASK_CONNECT_TIMEOUT_S = 30

Notice = Callable[[str], None]


class DaskUnavailable(IssuanceError):
    """The Dask cluster cannot run the night: no scheduler answers, no worker joined, or it gave a task up."""


def _quiet(_line: str) -> None:
    pass


def direct_args(beam_args: Sequence[str], planned: int, settings: Settings) -> list[str]:
    """The DirectRunner's options: as given, or worker processes for a big night when none are given."""
    if any(arg.startswith("--direct_running_mode") for arg in beam_args):
        return list(beam_args)
    if planned < settings.parallel_from_records:
        return list(beam_args)
    workers = settings.beam_workers or os.cpu_count() or 1
    return [*beam_args, "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def dask_args(beam_args: Sequence[str], address: str) -> list[str]:
    """The DaskRunner's options for the scheduler at `address` (options given in `beam_args` win)."""
    given = {arg.split("=", 1)[0] for arg in beam_args}
    args = [f"--runner={DASK_RUNNER}", f"--dask_client_address={address}"]
    if "--dask_connection_timeout" not in given:
        args.append(f"--dask_connection_timeout={DASK_CONNECT_TIMEOUT_S}")
    if not given & {"--dask_partition_size", "--dask_npartitions"}:
        args.append(DASK_PARTITION_ARG)
    return [*args, *(arg for arg in beam_args if not arg.startswith("--runner"))]


@contextmanager
def dask_scheduler(settings: Settings, notice: Notice = _quiet) -> Iterator[str]:
    """The scheduler's address: the configured cluster's, else a local cluster's, closed when the run ends.

    The local cluster's workers are processes (no GIL shared between chunks) with one thread each: a chunk is
    one task, and its DoFns hold one connection each to PostgreSQL and Kafka."""
    if settings.dask_address:
        notice(_joined(settings.dask_address))
        yield settings.dask_address
        return
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its import configures INFO on stderr
    workers = settings.beam_workers or os.cpu_count() or 1
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.WARNING,
    ) as cluster:
        notice(
            f"Dask: a local cluster of {workers} worker processes at {cluster.scheduler_address},"
            f" dashboard {cluster.dashboard_link}"
        )
        yield str(cluster.scheduler_address)


def _joined(address: str) -> str:
    """The cluster at `address`, checked before the run: a scheduler that answers and at least one worker
    (without one, the night's tasks would wait for ever); its workers and dashboard, for the operator."""
    from distributed import Client

    try:
        with Client(address, timeout=DASK_CONNECT_TIMEOUT_S) as client:
            client.wait_for_workers(1, timeout=DASK_CONNECT_TIMEOUT_S)
            workers = len(client.nthreads())
            dashboard = client.dashboard_link
    except TimeoutError as exc:
        raise DaskUnavailable(
            f"no Dask worker joined the scheduler at {address} within {DASK_CONNECT_TIMEOUT_S} s: start"
            " workers (`dask worker ADDRESS --nthreads 1`) and re-run"
        ) from exc
    except OSError as exc:
        raise DaskUnavailable(
            f"the Dask scheduler at {address} did not answer within {DASK_CONNECT_TIMEOUT_S} s"
            f" ({type(exc).__name__}): start it, check ISSUANCE_DASK_ADDRESS (and the DASK_ TLS settings"
            " for a tls:// address) and re-run"
        ) from exc
    return f"Dask: the cluster at {address}, {workers} workers, dashboard {dashboard}"


@contextmanager
def runner_args(
    engine: str, beam_args: Sequence[str], planned: int, settings: Settings, notice: Notice = _quiet
) -> Iterator[list[str]]:
    """The Beam options of the run on `engine`; a local Dask cluster lives as long as the context."""
    if engine == DIRECT:
        yield direct_args(beam_args, planned, settings)
    elif engine == DASK:
        with dask_scheduler(settings, notice) as address:
            yield dask_args(beam_args, address)
    else:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")


def finish(result: Any) -> bool:
    """Wait for the pipeline, then let go of the engine's client. Whether the result reports Beam metrics
    (the DaskRunner's raises NotImplementedError: the night counts its staged rows instead)."""
    client = getattr(result, "client", None)  # the DaskRunner's Client, which it never closes itself
    try:
        result.wait_until_finish()
    except Exception as exc:
        if client is not None and type(exc).__name__ == "KilledWorker":
            raise DaskUnavailable(
                "a task of the night's stage was lost with every worker that ran it (each died running it):"
                " read the workers' logs (memory limit, a crash), then re-run: the night is staged again"
                " from its stored plan"
            ) from exc
        raise
    finally:
        if client is not None:
            client.close()
    try:
        result.metrics()
    except NotImplementedError:
        return False
    return True

"""Nightly throughput against two raw floors on the same data, in one invocation; where the CPU goes; memory.

    python -m benchmarks.nightly --applications 200000 [--beam-args "--direct_running_mode=in_memory"]
                                 [--engines direct,dask1,dask2] [--json]

Starts a throw-away broker and PostgreSQL, generates N applications (night 1 of the generator, with its
agreements and malformed messages), publishes them, then measures:
  honest floor:   what this machine can do with the same records in one process (benchmarks/floors.py):
                  all partitions at once, throughput fetch settings, fastavro on the writer schema found by
                  fingerprint, binary COPY; in three passes (consume alone, + decode, + COPY). The ratio we
                  steer by (goal 0.5).
  contract floor: the earlier rounds' floor (partitions one after another, the project's decode and contract
                  parse, text COPY), kept so that earlier figures stay comparable. The guard (0.25 or more).
  nightly:        `pipelines.nightly.run` end to end (plan, Beam staging, the one-transaction commit, vendor
                  files, outbox relay), with the run's default options unless --beam-args are given (a night
                  of 50,000 records or more: Beam workers and relay processes, one per CPU).
  engines:        the same night again on each further engine of --engines (benchmarks/engines.py: the
                  DaskRunner on a local cluster of 1 and 2 worker processes), each on a fresh database.
  personalization: the accounts of the night's accepted new cards marked OPENED in SQL (as the banks
                  would), then the next night, timed: cards personalized per second
                  (benchmarks/personalization.py).
CPU per record of each process group, per floor pass and per phase of the night, from sampled process CPU
times (benchmarks/cpu_profile.py). Peak memory is the largest sum of RSS over this process and all its
children (Beam workers included), sampled. N defaults to BENCH_N or 200,000.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr

from benchmarks.cpu_profile import CpuSampler, Window, profile, render
from benchmarks.engines import engine_lines, engine_night, parse_engines
from benchmarks.floors import contract_floor, honest_floor
from benchmarks.personalization import personalization_night

GIB = 1024**3
PSS_EVERY_SAMPLES = 25  # RSS every 200 ms, PSS every 5 s


def _measure(proc: psutil.Process, read: Callable[[psutil.Process], int]) -> int:
    """`read(proc)`; its RSS when that is not allowed; 0 once the process is gone."""
    try:
        return read(proc)
    except psutil.AccessDenied:
        try:
            return int(proc.memory_info().rss)
        except psutil.Error:
            return 0
    except psutil.Error:
        return 0


class PeakMemory:
    """Memory sampled while the run goes: `peak`, the RSS of this process and its descendants (every 200 ms);
    `peak_all`, the proportional set size (PSS: shared pages split between the processes sharing them, so the
    server's shared buffers count once) of those plus the processes whose command line names `also` (the
    throw-away PostgreSQL server, not our descendant), every 5 seconds. RSS where PSS cannot be read.

    Reading a process's PSS makes the kernel walk its page tables (PostgreSQL's backends map all of its
    shared buffers): every second, over the twenty-odd processes of a night, that was a tenth of a core taken
    from the run being measured. The night's memory plateaus last far longer than 5 seconds."""

    def __init__(self, also: str | None = None) -> None:
        self.peak = 0
        self.peak_all = 0
        self._also = also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _rss(processes: list[psutil.Process]) -> int:
        return sum(_measure(proc, lambda p: p.memory_info().rss) for proc in processes)

    @staticmethod
    def _pss(processes: list[psutil.Process]) -> int:
        return sum(_measure(proc, lambda p: p.memory_full_info().pss) for proc in processes)

    def _loop(self) -> None:
        me = psutil.Process()
        samples = 0
        while not self._stop.wait(0.2):
            mine = [me, *me.children(recursive=True)]
            self.peak = max(self.peak, self._rss(mine))
            samples += 1
            if self._also and samples % PSS_EVERY_SAMPLES == 0:
                pids = {p.pid for p in mine}
                others = []
                for proc in psutil.process_iter(["cmdline"]):
                    cmdline = " ".join(proc.info.get("cmdline") or ())
                    if proc.pid not in pids and self._also in cmdline:
                        others.append(proc)
                        others.extend(c for c in proc.children(recursive=True) if c.pid not in pids)
                self.peak_all = max(self.peak_all, self._pss(mine + others))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    @property
    def thread_id(self) -> int | None:
        """The sampling thread's native id (its CPU is the benchmark's, not the run's)."""
        return self._thread.native_id

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def services(root: Path) -> Iterator[tuple[str, str]]:
    """A private embedded broker and PostgreSQL (stopped afterwards); yields (bootstrap, database url)."""
    from issuance.services import embedded

    embedded.up(root)
    try:
        found = embedded.running(root)
        assert found.kafka_bootstrap and found.database_url
        yield found.kafka_bootstrap, found.database_url
    finally:
        embedded.down(root)


def tune_postgres(database_url: str) -> None:
    """What a production server for a night of a million applications has: room for the night's WAL between
    checkpoints. Reloadable settings only (the throw-away server is not restarted)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_wal_size = '16GB'")
        conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
        conn.execute("SELECT pg_reload_conf()")


def publish(settings: Any, directory: Path) -> int:
    """Night 1 as the branches send it (applications, agreements, malformed messages)."""
    from tests.fixtures_nightly import Generated, publish_night

    return publish_night(settings, Generated(directory, {}), 1)


def night_windows(
    started: float, ended: float, marks: dict[str, float], timings: dict[str, float]
) -> list[Window]:
    """The phases of a night as time windows: plan, stage, commit, then vendor files beside publishing."""
    plan_end = started + timings.get("plan_s", 0.0)
    commit_start = marks.get("commit", plan_end)
    commit_end = commit_start + timings.get("commit_s", 0.0)
    windows = [Window("night: plan", started, plan_end)]
    if "stage_s" in timings:
        windows.append(Window("night: stage", plan_end, commit_start))
    windows.append(Window("night: commit", commit_start, commit_end))
    files_s, publish_s = timings.get("files_s", 0.0), timings.get("publish_s", 0.0)
    both_end = commit_end + min(files_s, publish_s)
    windows.append(Window("night: files | publish", commit_end, both_end))
    alone = "publish" if publish_s >= files_s else "files"
    windows.append(Window(f"night: {alone} alone", both_end, ended))
    windows.append(Window("night: total", started, ended))
    return windows


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The text report."""
    honest, contract, nightly = figures["honest_floor"], figures["contract_floor"], figures["nightly"]
    records = figures["records"]
    lines = [f"records {records:,} ({figures['applications']:,} applications, night 1 with agreements)"]
    lines.append(
        f"honest floor   {honest['records_per_s']:>10,} records/s ({honest['s']:.1f} s, one process),"
        " breakdown:"
    )
    for step in honest["breakdown"]:
        lines.append(f"  {step['label']:<24} {step['records_per_s']:>10,} records/s ({step['s']:.1f} s)")
    lines.append(
        f"contract floor {contract['records_per_s']:>10,} records/s ({contract['s']:.1f} s,"
        " the earlier rounds' floor)"
    )
    timings = nightly["timings_s"]
    lines.append(
        f"nightly        {nightly['records_per_s']:>10,} records/s ({nightly['s']:.1f} s end to end: "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k != "total_s")
        + ")"
    )
    lines.append(f"events out     {nightly['events_published']:>10,} published by the relay")
    lines.append(f"ratio honest   {figures['ratio_honest']:>10.3f} (the figure we steer by; goal 0.5)")
    lines.append(f"ratio contract {figures['ratio_contract']:>10.3f} (guard: 0.25 or more)")
    lines.append(
        f"peak memory    {figures['peak_memory_gib']:>10.2f} GiB"
        " (this process, Beam workers, broker; limit 4 GiB)"
    )
    lines.append(
        f"  with PostgreSQL {figures['peak_memory_with_postgres_gib']:>7.2f} GiB"
        " (PSS sum: shared memory counted once)"
    )
    lines.append(
        "commit         " + ", ".join(f"{k} {v:.1f}" for k, v in nightly["commit_timings_s"].items())
    )
    lines.append("CPU per record (µs) by process group, per floor pass and per phase of the night:")
    lines.extend("  " + line for line in render(figures["cpu_us_per_record"]))
    if figures["beam_workers_busy_until_s_after_stage"] is not None:
        lines.append(
            f"beam workers   last busy {figures['beam_workers_busy_until_s_after_stage']:.1f} s"
            " after the stage ended (the commit's start)"
        )
    lines.append(f"load average   {figures['load_before']} before, {figures['load_after']} after")
    perso = figures["personalization"]
    lines.append(
        f"personalization {perso['cards_per_s']:>9,} cards/s (the next night, {perso['accounts_opened']:,}"
        f" accounts opened in SQL: {perso['cards_personalized']:,} cards in {perso['night_s']:.1f} s; stage"
        f" {perso['timings_s'].get('stage_s', 0):.1f} s at {perso['stage_cards_per_s']:,} cards/s of worker"
        f" time, apply {perso['apply_s'] or 0:.1f} s, files {perso['timings_s'].get('files_s', 0):.1f} s)"
    )
    lines.append(f"balanced       {nightly['balanced']} (personalization night {perso['balanced']})")
    lines.extend(engine_lines(figures["engines"]))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=int(os.environ.get("BENCH_N", 200_000)))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--beam-args", default="", help="Beam pipeline options for the nightly run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--engines",
        default="direct,dask1,dask2",
        help="the night on each: direct, daskN (a local Dask cluster of N worker processes); the first is"
        " profiled, each further one runs the same night on a fresh database",
    )
    parser.add_argument(
        "--no-tune-postgres",
        dest="tune_postgres",
        action="store_false",
        help="keep the throw-away server's defaults (max_wal_size 1GB: a big night checkpoints repeatedly)",
    )
    args, _unknown = parser.parse_known_args(argv)
    engines = parse_engines(args.engines)

    from issuance.crypto import Vault
    from issuance.kafka.client_config import KafkaClientConfig
    from issuance.kafka.topics import Topics
    from issuance.settings import Settings
    from issuance.store.migrate import apply_migrations
    from issuance.trust.keys import PartyKeys
    from issuance.trust.parties import BUREAU
    from pipelines import nightly
    from pipelines.plan import plan_ranges
    from producers.generator import GenerateOptions, generate
    from tests.fixtures_nightly import Generated, load_reference_file

    load_before = _load()
    with (
        tempfile.TemporaryDirectory(prefix="nightly-bench-") as tmp,
        services(Path(tmp) / "services") as (bootstrap, database_url),
        CpuSampler(Path(tmp) / "services") as cpu,
    ):
        root = Path(tmp)
        apply_migrations(database_url)
        if args.tune_postgres:
            tune_postgres(database_url)
        settings = Settings(
            kafka_bootstrap=bootstrap,
            database_url=SecretStr(database_url),
            topic_prefix="bench.",
            state_dir=root / "state",
            personalization_dir=root / "personalization",
            engine=engines[0].engine,
            beam_workers=engines[0].workers,
            # Keys of this run only: with configured servers no key is generated (fail closed).
            data_keys=SecretStr(f"bench:{base64.b64encode(os.urandom(32)).decode()}"),
            blind_index_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
            keys_dir=root / "keys",  # the bureau's keys of this run and the simulated partners'
            bureau_key=SecretStr(PartyKeys.generate(BUREAU).to_text()),
        )
        Vault.from_settings(settings)
        t0 = time.monotonic()
        manifest = generate(root / "data", GenerateOptions(applications=args.applications, seed=args.seed))
        generate_s = time.monotonic() - t0
        generated = Generated(root / "data", manifest)
        load_reference_file(settings, database_url, generated)
        t0 = time.monotonic()
        sent = publish(settings, root / "data")
        publish_s = time.monotonic() - t0
        topics = Topics(settings)
        kafka = KafkaClientConfig.from_settings(settings)
        plan = plan_ranges(kafka, [topics.applications, topics.agreements], {})
        records = sum(p.size for p in plan)

        honest = honest_floor(kafka, database_url, plan)
        print(
            f"honest floor measured: {honest.full.records:,} records in {honest.full.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        contract_started = time.monotonic()
        contract_count, contract_s = contract_floor(kafka, database_url, plan)
        print(
            f"contract floor measured: {contract_count:,} records in {contract_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        apply_migrations(database_url)  # a migration added to the tree since the start
        marks: dict[str, float] = {}

        def mark(stage: str, _details: dict[str, Any]) -> None:
            marks.setdefault(stage, time.monotonic())

        with PeakMemory(also=str(root)) as memory:
            if memory.thread_id is not None:
                cpu.measuring_threads.add(memory.thread_id)
            night_started = time.monotonic()
            result = nightly.run(
                ["--business-date", generated.business_date(1), *shlex.split(args.beam_args)],
                settings=settings,
                progress=mark,
            )
            night_ended = time.monotonic()
        nightly_s = result.timings["total_s"]
        personalization = personalization_night(settings, database_url, generated.business_date(1))
        first = {
            "engine": engines[0].label,
            "records": result.records_planned,
            "records_per_s": round(result.records_planned / result.timings["total_s"]),
            "ratio_honest": round(result.records_planned / result.timings["total_s"] / honest.full.rate, 3),
            "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
            "balanced": result.balanced,
        }
        nights = [first]
        for spec in engines[1:]:
            print(f"engine {spec.label}: the same night again", file=sys.stderr, flush=True)
            nights.append(engine_night(spec, settings, database_url, generated, honest.full.rate))
    windows = [Window(f"floor: {p.label}", p.started, p.started + p.seconds) for p in honest.passes()]
    windows.append(Window("floor: contract", contract_started, contract_started + contract_s))
    windows += night_windows(night_started, night_ended, marks, result.timings)
    nightly_rate = result.records_planned / nightly_s
    honest_rate = honest.full.rate
    contract_rate = contract_count / contract_s
    figures = {
        "applications": args.applications,
        "records": records,
        "published": sent,
        "generate_s": round(generate_s, 1),
        "publish_s": round(publish_s, 1),
        "honest_floor": {
            "records_per_s": round(honest_rate),
            "s": round(honest.full.seconds, 2),
            "decoded": honest.full.decoded,
            "breakdown": [
                {
                    "label": p.label,
                    "records": p.records,
                    "records_per_s": round(p.rate),
                    "s": round(p.seconds, 2),
                }
                for p in honest.passes()
            ],
        },
        "contract_floor": {"records_per_s": round(contract_rate), "s": round(contract_s, 2)},
        "nightly": {
            "records_per_s": round(nightly_rate),
            "s": round(nightly_s, 2),
            "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
            "commit_timings_s": result.reconciliation["run"]["commit_timings_s"],
            "balanced": result.balanced,
            "events_published": result.published,
        },
        "ratio_honest": round(nightly_rate / honest_rate, 3),
        "ratio_contract": round(nightly_rate / contract_rate, 3),
        "peak_memory_gib": round(memory.peak / GIB, 3),
        "peak_memory_with_postgres_gib": round(memory.peak_all / GIB, 3),
        "cpu_us_per_record": profile(cpu, windows, records),
        "beam_workers_busy_until_s_after_stage": (
            round(cpu.last_busy["beam workers"] - marks["commit"], 1)
            if "beam workers" in cpu.last_busy and "commit" in marks
            else None
        ),
        "personalization": personalization,
        "load_before": load_before,
        "load_after": _load(),
        "beam_args": args.beam_args,
        "engines": nights,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print("\n".join(report_lines(figures)))
    balanced = all(night["balanced"] for night in nights)
    return 0 if balanced and personalization["balanced"] else 1


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())

"""Nightly throughput against the raw floor, on the same data, in one invocation; and peak memory.

    python -m benchmarks.nightly --applications 200000 [--beam-args "--direct_running_mode=in_memory"]

Starts a throw-away broker and PostgreSQL, generates N applications (night 1 of the generator, with its
agreements and malformed messages), publishes them, then measures:
  floor:   one process, assigned consumer over the same planned ranges, Avro decode + contract parse, COPY of
           the decoded fields into an unlogged table;
  nightly: `pipelines.nightly.run` end to end (plan, Beam staging, the one-transaction commit, vendor files,
           outbox relay), with the run's default options unless --beam-args are given (a night of 50,000
           records or more: Beam workers and relay processes, one per CPU).
Peak memory is the largest sum of RSS over this process and all its children (Beam workers included), sampled.
N defaults to BENCH_N or 200,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr

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


def raw_floor(bootstrap: str, database_url: str, plan: list[Any]) -> tuple[int, float]:
    """Single process: consume the planned ranges, decode and parse, COPY into an unlogged table."""
    from kafka import KafkaConsumer, TopicPartition

    from issuance.codec.avro import decode
    from issuance.domain.contract import parse_agreement, parse_application
    from issuance.errors import DecodeError
    from issuance.store.db import connect

    started = time.monotonic()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    rows: list[tuple[Any, ...]] = []
    count = 0
    with connect(database_url) as conn:
        conn.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS bench_floor (topic text, part int, off bigint,"
            " id text, branch text, bank text, at timestamptz, ok boolean)"
        )
        conn.execute("TRUNCATE bench_floor")

        def flush() -> None:
            with conn.cursor() as cur, cur.copy("COPY bench_floor FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            rows.clear()

        for part in plan:
            if part.end <= part.start:
                continue
            tp = TopicPartition(part.topic, part.partition)
            consumer.assign([tp])
            consumer.seek(tp, part.start)
            applications = "applications" in part.topic
            while consumer.position(tp) < part.end:
                for record in consumer.poll(timeout_ms=500).get(tp, ()):
                    if record.offset >= part.end:
                        continue
                    count += 1
                    try:
                        decoded = decode(record.value)
                        if applications:
                            a = parse_application(decoded.record)
                            rows.append(
                                (
                                    part.topic,
                                    part.partition,
                                    record.offset,
                                    a.application_id,
                                    a.branch_code,
                                    a.bank_code,
                                    a.submitted_at,
                                    True,
                                )
                            )
                        else:
                            g = parse_agreement(decoded.record)
                            rows.append(
                                (
                                    part.topic,
                                    part.partition,
                                    record.offset,
                                    g.agreement_id,
                                    None,
                                    g.bank_code,
                                    g.signed_at,
                                    True,
                                )
                            )
                    except DecodeError:
                        rows.append(
                            (part.topic, part.partition, record.offset, None, None, None, None, False)
                        )
                if len(rows) >= 20_000:
                    flush()
        flush()
        conn.commit()
    consumer.close()
    return count, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=int(os.environ.get("BENCH_N", 200_000)))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--beam-args", default="", help="Beam pipeline options for the nightly run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-tune-postgres",
        dest="tune_postgres",
        action="store_false",
        help="keep the throw-away server's defaults (max_wal_size 1GB: a big night checkpoints repeatedly)",
    )
    args, _unknown = parser.parse_known_args(argv)

    from issuance.crypto import Vault
    from issuance.kafka.topics import Topics
    from issuance.settings import Settings
    from issuance.store.migrate import apply_migrations
    from pipelines import nightly
    from pipelines.plan import plan_ranges
    from producers.generator import GenerateOptions, generate
    from tests.fixtures_nightly import Generated, load_reference_file

    with (
        tempfile.TemporaryDirectory(prefix="nightly-bench-") as tmp,
        services(Path(tmp) / "services") as (bootstrap, database_url),
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
        )
        Vault.from_settings(settings)  # development keys, once
        t0 = time.monotonic()
        manifest = generate(root / "data", GenerateOptions(applications=args.applications, seed=args.seed))
        generate_s = time.monotonic() - t0
        generated = Generated(root / "data", manifest)
        load_reference_file(settings, database_url, generated)
        t0 = time.monotonic()
        sent = publish(settings, root / "data")
        publish_s = time.monotonic() - t0
        topics = Topics(settings)
        plan = plan_ranges(bootstrap, [topics.applications, topics.agreements], {})
        records = sum(p.size for p in plan)

        floor_count, floor_s = raw_floor(bootstrap, database_url, plan)
        print(f"raw floor measured: {floor_count:,} records in {floor_s:.1f} s", flush=True)
        apply_migrations(database_url)  # a migration added to the tree since the start
        with PeakMemory(also=str(root)) as memory:
            result = nightly.run(
                ["--business-date", generated.business_date(1), *shlex.split(args.beam_args)],
                settings=settings,
            )
        nightly_s = result.timings["total_s"]
    floor_rate = floor_count / floor_s
    nightly_rate = result.records_planned / nightly_s
    figures = {
        "applications": args.applications,
        "records": records,
        "published": sent,
        "generate_s": round(generate_s, 1),
        "publish_s": round(publish_s, 1),
        "floor_records_per_s": round(floor_rate),
        "floor_s": round(floor_s, 2),
        "nightly_records_per_s": round(nightly_rate),
        "nightly_s": round(nightly_s, 2),
        "ratio": round(nightly_rate / floor_rate, 3),
        "peak_memory_gib": round(memory.peak / GIB, 3),
        "peak_memory_with_postgres_gib": round(memory.peak_all / GIB, 3),
        "nightly_timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "commit_timings_s": result.reconciliation["run"]["commit_timings_s"],
        "balanced": result.balanced,
        "beam_args": args.beam_args,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"records {records:,} ({args.applications:,} applications, night 1 with agreements)")
        print(f"raw floor   {floor_rate:>10,.0f} records/s ({floor_s:.1f} s, single process)")
        print(
            f"nightly     {nightly_rate:>10,.0f} records/s ({nightly_s:.1f} s end to end: "
            + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items() if k != "total_s")
            + ")"
        )
        print(f"ratio       {nightly_rate / floor_rate:>10.3f} (target 0.25, goal 0.5)")
        print(f"peak memory {memory.peak / GIB:>10.2f} GiB (this process, Beam workers, broker; limit 4 GiB)")
        print(f"  with PostgreSQL {memory.peak_all / GIB:>4.2f} GiB (PSS sum: shared memory counted once)")
        print(
            "commit      "
            + ", ".join(f"{k} {v:.1f}" for k, v in result.reconciliation["run"]["commit_timings_s"].items())
        )
        print(f"balanced    {result.balanced}")
    return 0 if result.balanced else 1


if __name__ == "__main__":
    raise SystemExit(main())

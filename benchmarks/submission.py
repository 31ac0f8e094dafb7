"""Submission: bulk throughput of `issuance submit`, and acknowledgement latency at a paced 1,000 records/s.

    python -m benchmarks.submission --applications 200000 [--rate 1000] [--seconds 30] [--json]

Starts a throw-away broker (the embedded tansu), generates N applications with the generator, then measures:
  throughput: submit_file over the generated applications.jsonl (validate, encode, publish, every ack
              awaited), with the CLI's producer settings;
  latency:    BranchClient with its default settings, one application every 1/rate s for `seconds`; per record
              the time from send() to the broker's acknowledgement (the callback), and from the start of
              validation to the acknowledgement. Target (design.md): p99 at most 50 ms at 1,000 per second.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

TARGET_P99_MS = 50.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _settings(bootstrap: str, state_dir: Path) -> Any:
    from issuance.settings import Settings

    return Settings(
        kafka_bootstrap=bootstrap,
        state_dir=state_dir,
        topic_prefix="bench.",
        data_keys=SecretStr("bench:" + base64.b64encode(os.urandom(32)).decode()),
        blind_index_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
    )


def throughput(settings: Any, applications: Path) -> dict[str, Any]:
    """Bulk submission of the whole file as `issuance submit applications` does it."""
    from cli.submit import THROUGHPUT_LINGER_MS
    from producers.client import BranchClient
    from producers.submission import Kind, submit_file

    with BranchClient.from_settings(settings, linger_ms=THROUGHPUT_LINGER_MS) as client:
        report = submit_file(client, applications, Kind.APPLICATIONS)
    return {
        "records": report.published,
        "seconds": round(report.seconds, 2),
        "records_per_second": round(report.published / report.seconds),
        "rejected": report.rejected,
        "unconfirmed": report.unconfirmed,
    }


def paced_latency(
    settings: Any, applications: Path, rate: float, seconds: float, linger_ms: int | None = None
) -> dict[str, Any]:
    """Send one application every 1/rate seconds; per-record latencies in milliseconds."""
    from producers.client import BranchClient, Outcome

    with applications.open(encoding="utf-8") as handle:
        templates = [json.loads(line) for _, line in zip(range(5000), handle, strict=False)]
    total = int(rate * seconds)
    send_to_ack: list[float] = []
    validate_to_ack: list[float] = []
    failures = 0
    lock = threading.Lock()
    behind = 0

    def callback(started: float, sent: float) -> Any:
        def done(outcome: Outcome) -> None:
            nonlocal failures
            now = time.perf_counter()
            with lock:
                if isinstance(outcome, Exception):
                    failures += 1
                    return
                send_to_ack.append((now - sent) * 1000)
                validate_to_ack.append((now - started) * 1000)

        return done

    options = {} if linger_ms is None else {"linger_ms": linger_ms}
    with BranchClient.from_settings(settings, **options) as client:
        client.submit_application(templates[0]).result(timeout=30)  # connections and metadata are warm
        begin = time.perf_counter()
        for i in range(total):
            due = begin + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.005:
                behind += 1
            record = dict(templates[i % len(templates)], application_id=f"LAT{i:09d}")
            started = time.perf_counter()
            prepared = client.prepare_application(record)
            client.send(prepared, callback(started, time.perf_counter()))
        client.flush()
        elapsed = time.perf_counter() - begin
    return {
        "records": total,
        "achieved_rate": round(total / elapsed),
        "sent_late_over_5ms": behind,
        "failures": failures,
        "send_to_ack_ms": {
            "p50": round(_percentile(send_to_ack, 0.50), 2),
            "p99": round(_percentile(send_to_ack, 0.99), 2),
            "max": round(max(send_to_ack), 2),
        },
        "validate_to_ack_ms": {
            "p50": round(_percentile(validate_to_ack, 0.50), 2),
            "p99": round(_percentile(validate_to_ack, 0.99), 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=int(os.environ.get("BENCH_N", 200_000)))
    parser.add_argument("--rate", type=float, default=1000.0, help="paced submissions per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the paced run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--linger-ms", type=int, help="producer linger of the paced run (default: the client's)"
    )
    parser.add_argument("--json", action="store_true")
    args, _unknown = parser.parse_known_args(argv)

    from issuance.kafka.client_config import KafkaClientConfig
    from issuance.kafka.topics import ensure_topics
    from issuance.services.broker import start_broker, stop_broker
    from producers.generator import GenerateOptions, generate

    with tempfile.TemporaryDirectory(prefix="issuance-bench-submit-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "tansu.log")
        try:
            settings = _settings(broker.bootstrap, root / "state")
            ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
            started = time.perf_counter()
            generate(root / "data", GenerateOptions(applications=args.applications, seed=args.seed))
            generated_s = time.perf_counter() - started
            bulk = throughput(settings, root / "data" / "applications.jsonl")
            paced = paced_latency(
                settings, root / "data" / "applications.jsonl", args.rate, args.seconds, args.linger_ms
            )
        finally:
            stop_broker(broker)
    met = paced["send_to_ack_ms"]["p99"] <= TARGET_P99_MS and paced["failures"] == 0
    result = {
        "applications": args.applications,
        "generate_seconds": round(generated_s, 1),
        "throughput": bulk,
        "paced": {"rate": args.rate, **paced},
        "target_p99_ms": TARGET_P99_MS,
        "target_met": met,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = paced["send_to_ack_ms"]
        print(f"generate {args.applications:,} applications: {generated_s:.1f}s")
        print(
            f"throughput: {bulk['records']:,} applications in {bulk['seconds']}s = "
            f"{bulk['records_per_second']:,}/s (validated, encoded, acknowledged)"
        )
        full = paced["validate_to_ack_ms"]
        print(
            f"latency at {args.rate:,.0f}/s for {args.seconds:.0f}s ({paced['records']:,} records, achieved "
            f"{paced['achieved_rate']:,}/s): send->ack p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
            f"max {lat['max']} ms; validate->ack p50 {full['p50']} ms, p99 {full['p99']} ms"
        )
        print(f"target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())

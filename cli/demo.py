"""`issuance demo`: the whole system end to end on the embedded default, as a new user first sees it.

Each step runs the real command in a subprocess, exactly as a user would type it, so the demo exercises the
same code paths; the summary is read from PostgreSQL and compared with the generator's expected outcomes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import EXIT_BAD_INPUT, command, console, load_settings, print_json
from consumers.bank_simulator import FailurePolicy
from consumers.serve import round_trip
from issuance.errors import InputError, IssuanceError
from issuance.messages import activation_request_event_id
from issuance.services import embedded
from issuance.services.endpoints import resolve
from issuance.services.state import StateDir
from issuance.settings import Settings
from issuance.store.db import connect

IDLE_SECONDS = 2.0
CLI = [sys.executable, "-c", "from cli.main import main; main()"]


class StepFailed(IssuanceError):
    """A step of the demo exited with an error."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One application at the end of the demo."""

    state: str
    reasons: tuple[str, ...]
    attempts: int


def _step(title: str, args: list[str], env: dict[str, str]) -> float:
    """Run one CLI command, showing a spinner; its output is shown only when it fails."""
    started = time.monotonic()
    with console.status(f"{title} ..."):
        done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        console.print(f"[red]✗[/red] {title} (exit {done.returncode})")
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise StepFailed(f"`issuance {' '.join(args)}` failed with exit code {done.returncode}")
    console.print(f"[green]✓[/green] {title} [dim]({elapsed:.1f}s)[/dim]")
    return elapsed


def _round_trip(title: str, settings: Settings, policy: FailurePolicy) -> None:
    """Every bank answers (in-process, one thread each) while the bureau's consumer applies the answers."""
    started = time.monotonic()
    with console.status(f"{title} ..."):
        result = round_trip(settings, resolve(settings), policy, IDLE_SECONDS)
    answered = sum(s["requests"] for s in result["banks"].values())
    applied = result["consume"]
    console.print(
        f"[green]✓[/green] {title}: {answered:,} requests, {applied['active']:,} active,"
        f" {applied['failed']:,} failed [dim]({time.monotonic() - started:.1f}s)[/dim]"
    )


def _services(settings: Settings, reset: bool) -> None:
    """Start the embedded services unless servers are configured; --reset starts from empty ones."""
    if settings.kafka_bootstrap and settings.database_url:
        if reset:
            raise InputError(
                "--reset only applies to the embedded services (ISSUANCE_* servers are configured)"
            )
        return
    root = Path(settings.state_dir)
    if reset:
        embedded.down(root)
        shutil.rmtree(StateDir(root).pgdata, ignore_errors=True)
    with console.status("starting the embedded broker and PostgreSQL ..."):
        changes = embedded.up(root)
    for change in changes:
        console.print(f"[green]✓[/green] {change.name} {change.outcome}")


def _empty(database_url: str) -> bool:
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        exists = conn.execute("SELECT to_regclass('applications')").fetchone()
        if exists is None or exists[0] is None:
            return True
        row = conn.execute("SELECT count(*) FROM applications").fetchone()
    return row is not None and int(row[0]) == 0


def _bank_failures(database_url: str) -> dict[str, int]:
    """Bank failures injected, and how many of those applications became active on a later try."""
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM audit_log WHERE action = 'activation.activation_failed'),"
            " (SELECT count(*) FROM applications WHERE state = 'ACTIVE' AND bank_refusals > 0)"
        ).fetchone()
    return {"injected": int(row[0]), "active_after_retry": int(row[1])} if row else {}


def _outcomes(database_url: str) -> dict[str, Outcome]:
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        rows = conn.execute(
            "SELECT application_id, state, reasons, bank_refusals FROM applications"
        ).fetchall()
    return {str(r[0]): Outcome(str(r[1]), tuple(sorted(r[2])), int(r[3])) for r in rows}


def compare(expected_file: Path, outcomes: dict[str, Outcome], policy: FailurePolicy) -> dict[str, Any]:
    """Each application against expected.jsonl; an expected ACTIVE may have failed by injection instead."""
    matched, injected, mismatched = 0, 0, []
    for line in expected_file.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "application":
            continue
        app_id = entry["application_id"]
        got = outcomes.get(app_id)
        want = (entry["final_state"], tuple(sorted(entry["final_reasons"])))
        if got is not None and (got.state, got.reasons) == want:
            matched += 1
        elif (
            got is not None
            and want[0] == "ACTIVE"
            and got.state == "ACTIVATION_FAILED"
            and all(
                policy.failure(activation_request_event_id(app_id, n)) for n in range(1, got.attempts + 1)
            )
        ):
            injected += 1
        else:
            mismatched.append(app_id)
    return {"matched": matched, "injected_failures": injected, "mismatched": mismatched}


@command
def demo(
    ctx: typer.Context,
    applications: Annotated[
        int, typer.Option("--applications", "-n", help="How many applications.", min=1)
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generated data and the bank failures.")
    ] = 1,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="Share of activation requests the banks fail.", min=0, max=1)
    ] = 0.02,
    reset: Annotated[bool, typer.Option("--reset", help="Start from empty embedded services.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Start the services, generate, submit, run every night, serve the banks, consume, and summarize."""
    settings = load_settings(ctx)
    started = time.monotonic()
    _services(settings, reset)
    endpoints = resolve(settings)
    if not _empty(endpoints.database_url):
        console.print(
            "[red]error:[/red] the database already holds applications; run `issuance demo --reset` "
            "to start from empty embedded services"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    env = dict(os.environ)
    out = Path(settings.state_dir) / "demo"
    shutil.rmtree(out, ignore_errors=True)
    _step("setup: database schema and topics", ["setup"], env)
    _step(
        f"generate {applications:,} applications",
        ["generate", "-n", str(applications), "--seed", str(seed), "-o", str(out)],
        env,
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    _step(
        "load reference data",
        ["reference", "load", str(out / manifest.get("reference", "reference.json"))],
        env,
    )
    _step("create the banks' topics", ["setup"], env)
    policy = FailurePolicy(fail_rate, seed)
    for night in manifest["nights"]:
        label = f"night {night['night']} ({night['business_date']})"
        if night.get("reference"):  # that night's reference data, e.g. an area's approval withdrawn
            _step(f"{label}: load reference data", ["reference", "load", str(out / night["reference"])], env)
        for kind in ("applications", "agreements", "raw_messages"):
            if night.get(kind):
                what = "raw" if kind == "raw_messages" else kind
                _step(f"{label}: submit {what}", ["submit", what, str(out / night[kind])], env)
        _step(f"{label}: nightly batch", ["batch", "run", "--business-date", night["business_date"]], env)
        _round_trip(f"{label}: banks answer, the bureau applies", settings, policy)
    outcomes = _outcomes(endpoints.database_url)
    summary = _summary(outcomes, compare(out / "expected.jsonl", outcomes, policy))
    summary["bank_failures"] = _bank_failures(endpoints.database_url)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary, settings)
    if summary["comparison"]["mismatched"]:
        raise typer.Exit(1)


def _summary(outcomes: dict[str, Outcome], comparison: dict[str, Any]) -> dict[str, Any]:
    states = Counter(o.state for o in outcomes.values())
    reasons = Counter(r for o in outcomes.values() if o.state == "REJECTED" for r in o.reasons)
    first = {
        s: next((k for k, o in sorted(outcomes.items()) if o.state == s), None)
        for s in ("ACTIVE", "REJECTED")
    }
    return {
        "applications": len(outcomes),
        "by_state": dict(sorted(states.items())),
        "rejected_by_reason": dict(reasons.most_common()),
        "comparison": {**comparison, "mismatched": comparison["mismatched"][:20]},
        "examples": first,
    }


def _print_summary(summary: dict[str, Any], settings: Settings) -> None:
    states = summary["by_state"]
    console.print(f"\n[bold]{summary['applications']:,} applications in {summary['seconds']:.0f}s[/bold]")
    console.print(f"  active                {states.get('ACTIVE', 0):>8,}")
    console.print(f"  rejected              {states.get('REJECTED', 0):>8,}")
    for reason, n in summary["rejected_by_reason"].items():
        console.print(f"    {reason:<26}{n:>6,}")
    console.print(f"  waiting for agreement {states.get('AWAITING_AGREEMENT', 0):>8,}")
    console.print(f"  waiting for the bank  {states.get('ACTIVATION_REQUESTED', 0):>8,}")
    console.print(f"  activation failed     {states.get('ACTIVATION_FAILED', 0):>8,}")
    failures = summary["bank_failures"]
    console.print(
        f"  the banks failed {failures['injected']:,} requests (injected); {failures['active_after_retry']:,}"
        " of those applications became active when a later night asked again"
    )
    c = summary["comparison"]
    verdict = (
        "[green]every application as expected[/green]"
        if not c["mismatched"]
        else (f"[red]{len(c['mismatched'])} differ from expected.jsonl[/red]")
    )
    console.print(f"  {verdict}: {c['matched']:,} exactly, {c['injected_failures']:,} failed by the bank")
    console.print("\nWhat to look at next:")
    examples = summary["examples"]
    if examples.get("ACTIVE"):
        console.print(f"  issuance status {examples['ACTIVE']}      # an active card")
    if examples.get("REJECTED"):
        console.print(f"  issuance status {examples['REJECTED']}      # a rejected application")
    console.print("  issuance report")
    console.print("  issuance dashboard      # then open http://127.0.0.1:8080/")
    for login in _demo_logins(settings):
        console.print(f"    demo login ({login[2]}): {login[0]} / {login[1]}")
    console.print(f"  data and expected outcomes: {Path(settings.state_dir) / 'demo'}")


def _demo_logins(settings: Settings) -> list[tuple[str, str, str]]:
    """The dashboard's demo logins (the same ones `issuance dashboard` creates and prints)."""
    from dashboard.users import ensure_demo_users  # the dashboard package is needed by the demo only

    with connect(resolve(settings).database_url, autocommit=True, application_name="issuance-demo") as conn:
        first = conn.execute(
            "SELECT branch_code, bank_code FROM branches ORDER BY branch_code LIMIT 1"
        ).fetchone()
    logins = ensure_demo_users(
        Path(settings.state_dir), first[0] if first else None, first[1] if first else None
    )
    return [(login.username, login.password, login.sees) for login in logins]


def register(app: typer.Typer) -> None:
    """Add the `demo` command."""
    app.command("demo")(demo)

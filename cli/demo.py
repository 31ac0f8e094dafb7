"""`issuance demo`: the whole lifecycle end to end on the embedded default, as a new user first sees it.

Night after night: the branches' applications are submitted and the nightly batch verifies them, asks the
banks to open accounts and personalizes the cards whose account is open into vendor files; the simulated banks
answer, the simulated vendors return their production results, the simulated branches receive the cards, hand
them to their holders and send the holders' activation applications; the bureau applies every answer. The
nights go on past the generator's own until a night changes nothing. Each step runs the real command in a
subprocess, exactly as a user would type it, so the demo exercises the same code paths; the end is read from
PostgreSQL and compared with the generator's expected.jsonl.

The simulators are set so the outcome is deterministic: vendors and branches at their defaults with every card
collected and every holder activating (`--collect-rate 1 --activate-rate 1`), banks refusing a seeded share of
requests (`--fail-rate`, a pure function of seed and request id). An application the generator expects
COMPLETED may therefore end FAILED, but only when every one of its requests was such an injected refusal (or
its card failed production `max_productions` times, should a vendor simulator inject failures); the check
recomputes that from the same policy.
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
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import language
from cli.common import EXIT_BAD_INPUT, command, console, load_settings, print_json
from cli.language import _, left, number, right
from cli.report import label as report_label
from consumers.bank_simulator import FailurePolicy
from issuance.domain.lifecycle import ApplicationState, registry_card
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.errors import InputError, IssuanceError
from issuance.messages import account_opening_request_event_id, activation_request_event_id
from issuance.services import embedded
from issuance.services.endpoints import resolve
from issuance.services.state import StateDir
from issuance.settings import Settings
from issuance.store import status_queries as q
from issuance.store.db import connect

IDLE_SECONDS = "2"
MAX_EXTRA_NIGHTS = (
    10  # after the generator's nights: enough for every retry the settings allow, and then some
)
CLI = [sys.executable, "-c", "from cli.main import main; main()"]
OPERATOR = "demo"


class StepFailed(IssuanceError):
    """A step of the demo exited with an error."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One application at the end of the demo, with its card on both sides."""

    application_type: str
    state: str
    reasons: tuple[str, ...]
    attempts: int  # the bank's refusals of its requests
    card: tuple[str | None, str | None]  # (card status, financial status)
    production_failures: int = 0


@dataclass(frozen=True, slots=True)
class Simulators:
    """How the simulated partners behave in the demo (see the module docstring)."""

    bank_fail_rate: float
    seed: int
    collect_rate: float = 1.0
    activate_rate: float = 1.0


def _step(title: str, args: list[str], env: dict[str, str]) -> float:
    """Run one CLI command, showing a spinner; its output is shown only when it fails."""
    started = time.monotonic()
    with console.status(f"{title} ..."):
        done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        exited = _("exit {code}").format(code=done.returncode)
        console.print(f"[red]✗[/red] {title} ({exited})")
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise StepFailed(
            _("`{command}` failed with exit code {code}").format(
                command="issuance " + " ".join(args), code=done.returncode
            )
        )
    console.print(f"[green]✓[/green] {title} [dim]({elapsed:.1f}s)[/dim]")
    return elapsed


def night(
    label: str,
    plan: dict[str, Any],
    out: Path,
    env: dict[str, str],
    sim: Simulators,
    vendor_dir: Path,
    received: set[Path],
) -> None:
    """One night of the whole loop, one step per line."""
    if plan.get("reference"):  # that night's reference data, e.g. an area's approval withdrawn
        reference = ["reference", "load", str(out / plan["reference"])]
        _step(label + ": " + _("load reference data"), reference, env)
        _step(label + ": " + _("keys of the simulated partners"), ["dev", "partners"], env)
    submitted = {
        "applications": _("submit applications"),
        "agreements": _("submit agreements"),
        "raw_messages": _("submit raw messages"),
    }
    for kind, title in submitted.items():
        if plan.get(kind):
            what = "raw" if kind == "raw_messages" else kind
            _step(f"{label}: {title}", ["submit", what, str(out / plan[kind])], env)
    batch = ["batch", "run", "--business-date", plan["business_date"]]
    _step(label + ": " + _("nightly batch"), batch, env)
    _step(label + ": " + _("banks open accounts, activate savings"), _bank_serve(sim), env)
    _step(label + ": " + _("vendors make the cards of their files"), ["vendor", "simulate"], env)
    for path in _new_return_files(vendor_dir, received):
        received_title = _("receive {file}").format(file=f"{path.parent.name}/{path.name}")
        _step(f"{label}: {received_title}", ["vendor", "receive", str(path)], env)
    branches = _branch_simulate(sim, plan["business_date"])
    _step(label + ": " + _("branches receive, hand over, holders activate"), branches, env)
    consume = ["consume", "--until-idle", IDLE_SECONDS]
    applies = _("bureau applies the answers of the banks and the events of the branches")
    _step(label + ": " + applies, consume, env)


def _bank_serve(sim: Simulators) -> list[str]:
    return [
        "bank", "serve", "--all", "--until-idle", IDLE_SECONDS,
        "--fail-rate", str(sim.bank_fail_rate), "--seed", str(sim.seed),
    ]  # fmt: skip


def _branch_simulate(sim: Simulators, business_date: str) -> list[str]:
    """The branches act on the night's business day (the holders' applications dated that day)."""
    return [
        "branch", "simulate", "--collect-rate", str(sim.collect_rate),
        "--activate-rate", str(sim.activate_rate), "--until-idle", IDLE_SECONDS, "--seed", str(sim.seed),
        "--date", business_date,
    ]  # fmt: skip


def _new_return_files(vendor_dir: Path, received: set[Path]) -> list[Path]:
    """The vendors' return files not yet received by this demo, oldest run first."""
    found = [p for p in sorted(vendor_dir.glob("run-*/*.return.jsonl")) if p not in received]
    received.update(found)
    return found


def _fingerprint(database_url: str) -> tuple[Any, ...]:
    """What a night may change: applications per state, both sides of the cards per status."""
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        rows = conn.execute(
            "SELECT 'a', state, count(*) FROM applications GROUP BY 2"
            " UNION ALL SELECT 'c', status, count(*) FROM cards GROUP BY 2"
            " UNION ALL SELECT 'f', status, count(*) FROM bank_accounts GROUP BY 2 ORDER BY 1, 2"
        ).fetchall()
    return tuple(tuple(r) for r in rows)


def _services(settings: Settings, reset: bool) -> None:
    """Start the embedded services unless servers are configured; --reset starts from empty ones."""
    if settings.kafka_bootstrap and settings.database_url:
        if reset:
            raise InputError(
                _("--reset only applies to the embedded services (ISSUANCE_* servers are configured)")
            )
        return
    root = Path(settings.state_dir)
    if reset:
        embedded.down(root)
        shutil.rmtree(StateDir(root).pgdata, ignore_errors=True)
    with console.status(_("starting the embedded broker and PostgreSQL ...")):
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
    """Applications the banks refused at least once, and how many of those ended completed anyway."""
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE bank_refusals > 0),"
            " count(*) FILTER (WHERE bank_refusals > 0 AND state = %s) FROM applications",
            (ApplicationState.COMPLETED.value,),
        ).fetchone()
    return {"refused": int(row[0]), "completed_after_retry": int(row[1])} if row else {}


def outcomes(database_url: str) -> dict[str, Outcome]:
    """Every application's end, with its card's two sides (a registry card mapped onto the lifecycle)."""
    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        rows = q.outcomes(conn)
    result = {}
    for r in rows:
        card: tuple[str | None, str | None] = (r.card_status, r.financial_status)
        if (
            r.card_status is None
            and r.registry_status is not None
            and r.registry_financial_status is not None
        ):
            mapped = registry_card(
                RegistryCardStatus(r.registry_status), RegistryFinancialStatus(r.registry_financial_status)
            )
            card = (mapped[0].value, mapped[1].value)
        result[r.application_id] = Outcome(
            r.application_type,
            r.state,
            tuple(sorted(r.reasons)),
            r.bank_refusals,
            card,
            r.production_failures,
        )
    return result


def _injected(app_id: str, got: Outcome, policy: FailurePolicy, max_productions: int) -> bool:
    """Failed only by what the simulators were told to inject: every request refused, or never produced."""
    if got.state != ApplicationState.FAILED:
        return False
    if got.production_failures >= max_productions:
        return True
    request_id = (
        account_opening_request_event_id
        if got.application_type == ApplicationType.NEW_CARD
        else activation_request_event_id
    )
    return got.attempts > 0 and all(policy.failure(request_id(app_id, n)) for n in range(1, got.attempts + 1))


def compare(
    expected_file: Path, ended: dict[str, Outcome], policy: FailurePolicy, max_productions: int = 3
) -> dict[str, Any]:
    """Each application against expected.jsonl (state, reasons and, for a served one, its card's two sides);
    the holders' own activation applications (not in the file) must complete too, or fail by injection."""
    matched, injected, mismatched = 0, 0, []
    seen = set()
    for line in expected_file.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "application":
            continue
        app_id = entry["application_id"]
        seen.add(app_id)
        got = ended.get(app_id)
        want = (entry["final_state"], tuple(sorted(entry["final_reasons"])))
        want_card = (entry.get("final_card_status"), entry.get("final_financial_status"))
        if got is None:
            mismatched.append(app_id)
        elif (got.state, got.reasons) == want and (want_card[0] is None or got.card == want_card):
            matched += 1
        elif _injected(app_id, got, policy, max_productions):
            injected += 1
        elif (got.state, got.reasons) == want and got.card == (want_card[0], "OPENED"):
            injected += 1  # collected; the holder's activation was refused by injection (checked below)
        else:
            mismatched.append(app_id)
    holders = {k: o for k, o in ended.items() if k not in seen}
    holder_states = Counter(o.state for o in holders.values())
    for app_id, got in holders.items():
        if got.state != ApplicationState.COMPLETED and not _injected(app_id, got, policy, max_productions):
            mismatched.append(app_id)
    return {
        "matched": matched,
        "injected_failures": injected,
        "mismatched": mismatched,
        "holder_activations": dict(sorted(holder_states.items())),
    }


@command
def demo(
    ctx: typer.Context,
    applications: Annotated[
        int, typer.Option("--applications", "-n", help="How many applications.", min=1)
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generated data and of the simulators.")
    ] = 1,
    fail_rate: Annotated[
        float, typer.Option("--fail-rate", help="Share of requests the banks refuse.", min=0, max=1)
    ] = 0.02,
    reset: Annotated[bool, typer.Option("--reset", help="Start from empty embedded services.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Start the services, generate, then run the nights with the banks, vendors and branches simulated until
    nothing moves; check every application against the generator's expectations and summarize."""
    settings = load_settings(ctx)
    started = time.monotonic()
    _services(settings, reset)
    endpoints = resolve(settings)
    if not _empty(endpoints.database_url):
        message = _(
            "the database already holds applications; run `issuance demo --reset` to start from empty"
            " embedded services"
        )
        console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(EXIT_BAD_INPUT)
    env = {**os.environ, "ISSUANCE_OPERATOR": OPERATOR, "ISSUANCE_LANGUAGE": language.current().code}
    out = Path(settings.state_dir) / "demo"
    shutil.rmtree(out, ignore_errors=True)
    _step(_("setup: database schema and topics"), ["setup"], env)
    _step(
        _("generate {count} applications").format(count=number(applications)),
        ["generate", "-n", str(applications), "--seed", str(seed), "-o", str(out)],
        env,
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    _step(
        _("load reference data"),
        ["reference", "load", str(out / manifest.get("reference", "reference.json"))],
        env,
    )
    # The branches, banks and vendors are simulated: their keys are made here and their public keys
    # registered, as each partner would hand them over (with configured servers nothing does it by itself).
    _step(_("keys of the simulated partners"), ["dev", "partners"], env)
    _step(_("create the topics of the banks"), ["setup"], env)
    sim = Simulators(bank_fail_rate=fail_rate, seed=seed)
    nights = run_nights(
        manifest["nights"], out, env, sim, Path(settings.personalization_dir), endpoints.database_url
    )
    ended = outcomes(endpoints.database_url)
    policy = FailurePolicy(fail_rate, seed)
    summary = _summary(ended, compare(out / "expected.jsonl", ended, policy, settings.max_productions))
    summary["nights"] = nights
    summary["bank_failures"] = _bank_failures(endpoints.database_url)
    summary["funnel"] = _funnel(endpoints.database_url)
    summary["seconds"] = round(time.monotonic() - started, 1)
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary, settings)
    if summary["comparison"]["mismatched"]:
        raise typer.Exit(1)


def run_nights(
    planned: list[dict[str, Any]],
    out: Path,
    env: dict[str, str],
    sim: Simulators,
    vendor_dir: Path,
    database_url: str,
) -> int:
    """The generator's nights, then more (one business day apart) until a whole night changes nothing."""
    received: set[Path] = set()
    for plan in planned:
        label = _("night {night} ({business_date})").format(
            night=plan["night"], business_date=plan["business_date"]
        )
        night(label, plan, out, env, sim, vendor_dir, received)
    day = date.fromisoformat(planned[-1]["business_date"])
    count = len(planned)
    before = _fingerprint(database_url)
    for _extra in range(MAX_EXTRA_NIGHTS):
        day += timedelta(days=1)
        count += 1
        label = _("night {night} ({business_date})").format(night=count, business_date=day.isoformat())
        night(label, {"business_date": day.isoformat()}, out, env, sim, vendor_dir, received)
        after = _fingerprint(database_url)
        if after == before:
            return count
        before = after
    still = _("still moving after {nights} extra nights; stopping here").format(nights=MAX_EXTRA_NIGHTS)
    console.print(f"[yellow]{still}[/yellow]")
    return count


def _funnel(database_url: str) -> list[dict[str, Any]]:
    """The lifecycle funnel, as `issuance report` shows it."""
    from issuance.store import report_queries as rq

    with connect(database_url, autocommit=True, application_name="issuance-demo") as conn:
        scope = rq.Scope.everything()
        steps = rq.build_lifecycle_funnel(rq.state_counts(conn, scope), rq.side_counts(conn, scope))
    return [{"step": f.key, "label": f.label, "reached": f.reached} for f in steps]


def _summary(ended: dict[str, Outcome], comparison: dict[str, Any]) -> dict[str, Any]:
    states = Counter(o.state for o in ended.values())
    reasons = Counter(r for o in ended.values() if o.state == ApplicationState.REJECTED for r in o.reasons)
    first = {
        "COMPLETED": next(
            (
                k
                for k, o in sorted(ended.items())
                if o.state == ApplicationState.COMPLETED and o.application_type == ApplicationType.NEW_CARD
            ),
            None,
        ),
        "REJECTED": next((k for k, o in sorted(ended.items()) if o.state == ApplicationState.REJECTED), None),
    }
    return {
        "applications": len(ended),
        "by_state": dict(sorted(states.items())),
        "cards": dict(
            sorted(Counter(f"{o.card[0]}/{o.card[1]}" for o in ended.values() if o.card[0]).items())
        ),
        "rejected_by_reason": dict(reasons.most_common()),
        "comparison": {**comparison, "mismatched": comparison["mismatched"][:20]},
        "examples": first,
    }


def _print_summary(summary: dict[str, Any], settings: Settings) -> None:
    states = summary["by_state"]
    headline = _("{applications} applications over {nights} nights in {seconds}s").format(
        applications=number(summary["applications"]),
        nights=summary["nights"],
        seconds=f"{summary['seconds']:.0f}",
    )
    console.print(f"\n[bold]{headline}[/bold]")
    for f in summary["funnel"]:
        console.print(f"  {left(report_label(f['label']), 22)}{right(number(f['reached']), 8)}")
    for label, state in (
        (_("completed"), "COMPLETED"),
        (_("rejected"), "REJECTED"),
    ):
        console.print(f"  {left(label, 22)}{right(number(states.get(state, 0)), 8)}")
    for reason, n in summary["rejected_by_reason"].items():
        console.print(f"    {left(reason, 26)}{right(number(n), 6)}  {language.reason(reason)}")
    for label, state in (
        (_("waiting for agreement"), "AWAITING_AGREEMENT"),
        (_("still on its way"), "ACCEPTED"),
        (_("failed"), "FAILED"),
    ):
        console.print(f"  {left(label, 22)}{right(number(states.get(state, 0)), 8)}")
    failures = summary["bank_failures"]
    refused = _(
        "the banks refused the requests of {refused} applications at least once (injected);"
        " {completed} of those completed when a later night asked again"
    ).format(refused=number(failures["refused"]), completed=number(failures["completed_after_retry"]))
    console.print(f"  {refused}")
    c = summary["comparison"]
    verdict = (
        "[green]" + _("every application as expected") + "[/green]"
        if not c["mismatched"]
        else "[red]" + _("{count} differ from expected.jsonl").format(count=len(c["mismatched"])) + "[/red]"
    )
    matched = _("{matched} exactly, {injected} failed by injection").format(
        matched=number(c["matched"]), injected=number(c["injected_failures"])
    )
    console.print(f"  {verdict}: {matched}")
    holders = ", ".join(f"{k} {number(v)}" for k, v in c["holder_activations"].items())
    console.print(
        "  " + _("the activation applications of the holders: {states}").format(states=holders or "-")
    )
    console.print("\n" + _("Where to look next:"))
    examples = summary["examples"]
    if examples.get("COMPLETED"):
        command = f'issuance status {examples["COMPLETED"]} --operator "$USER"'
        console.print(f"  {command}      # " + _("a card from order to savings active"))
    if examples.get("REJECTED"):
        command = f'issuance status {examples["REJECTED"]} --operator "$USER"'
        console.print(f"  {command}      # " + _("a rejected application"))
    console.print(
        f"  {left('issuance report', 30)} # " + _("the funnel, the backlogs, the cards waiting at branches")
    )
    console.print(f"  {left('issuance dashboard', 30)} # " + _("then open http://127.0.0.1:8080/"))
    for login in _demo_logins(settings):
        demo_login = _("demo login ({sees}): {username} / {password}").format(
            sees=login[2], username=login[0], password=login[1]
        )
        console.print(f"    {demo_login}")
    console.print(
        "  " + _("vendor files and return files: {path}").format(path=Path(settings.personalization_dir))
    )
    console.print(
        "  " + _("data and expected outcomes: {path}").format(path=Path(settings.state_dir) / "demo")
    )


def _demo_logins(settings: Settings) -> list[tuple[str, str, str]]:
    """The dashboard's demo logins (the same ones `issuance dashboard` creates and prints), only with the
    embedded services: against configured servers the dashboard has no demo users."""
    if not settings.development_keys_allowed:
        return []
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

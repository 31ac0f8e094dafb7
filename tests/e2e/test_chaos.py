"""Chaos over two nights: the broker, PostgreSQL or the command itself SIGKILLed at random moments of the
batch, the banks and the bureau's consumer; each restarted and recovered as the runbook says; in the end every
application is accounted for exactly once.

Everything runs on loopback: a broker and a PostgreSQL of the test's own (`tests/fixtures_chaos.py`), the CLI
as an operator types it. The randomness is seeded: a failure prints the seed and the schedule of kills and
recoveries, and the same seed draws the same targets and moments in the same order (they land on whatever the
machine is doing then, so the outcome of a kill may differ; the end state may not).

Recovery, as an operator follows the runbook:
- a command killed, or PostgreSQL killed under it: run the same command again;
- the broker killed (it comes back empty): `issuance setup`; the night's run is run again and, when it says
  the broker no longer holds what the night expects, `issuance checkpoints rebaseline --yes`; the branches
  submit again what the broker lost before a night read it; `issuance outbox republish
  --unanswered-after-hours 0 --yes` sends again the activation requests the banks may not have seen.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaProducer

from issuance.crypto import Vault
from issuance.domain.contract import application_to_record, parse_application
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect
from producers.client import Prepared, Preparer
from producers.credentials import SenderKeys
from tests.fixtures_broker import OwnBroker, cli, on_broker
from tests.fixtures_chaos import GRACE_S, ChaosWorld, file_ids, raw_payloads
from tests.fixtures_nightly import (
    Generated,
    expected_after,
    load_reference_file,
    make_generated,
    mismatches,
    provision_partners,
    states,
)

APPLICATIONS = 150
ACTIVATION = "FINANCIAL_ACTIVATION"
# One seed in the suite (about 100 s); CHAOS_SEEDS=3,8,11 runs more (seed 8 also kills the broker while the
# banks answer and the next night finds it lost).
SEEDS = tuple(int(seed) for seed in os.environ.get("CHAOS_SEEDS", "3").split(","))
ATTEMPTS = 6  # per phase and round; the last attempt runs without chaos
KILLS_PER_PHASE = 3  # a phase (the night's batch, its banks, its consumer) sees at most this many kills
ROUNDS = KILLS_PER_PHASE + 2  # bank + consumer rounds per night: each broker kill may need one more
BUDGET_S = 300  # a guard against a hung test, not an assertion on time (a seed takes 1.5-2.5 min)
COMMAND_TIMEOUT_S = 120  # the same guard for one command left alone
OPERATOR = "ops.chaos"
TARGETS = ("broker", "postgres", "command")
IDLE = "2"
MAX_MESSAGE_BYTES = 16_384
BROKER_LOST = "the broker no longer holds what the night expects"
FINISH_STAGED_RUN = "run `issuance batch run` to finish it first"


@dataclass
class Night:
    number: int
    business_date: str
    files: list[tuple[str, str]]  # (submit kind, file name)
    new_ids: set[str]  # application ids this night reads first
    reference: str | None = None  # the reference document as it stands that night, loaded before it


class Chaos:
    """The chaos driver: seeded kills, the runbook's recovery, and the log printed when the test fails."""

    def __init__(self, world: ChaosWorld, generated: Generated, seed: int) -> None:
        self.world = world
        self.generated = generated
        self.rng = random.Random(seed)
        self.log: list[str] = [f"seed {seed}"]
        self.started = time.monotonic()
        self.submitted_on: dict[int, int] = {}  # night -> broker generation its files were submitted to
        self.republished_for = 0  # broker generation the unanswered requests were last republished on
        self.deck: list[str] = []
        self.kills: Counter[str] = Counter()  # kills per phase (night and command)

    def note(self, line: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:6.1f}s {line}")
        with (self.world.workdir / "chaos.log").open("a", encoding="utf-8") as out:
            out.write(self.log[-1] + "\n")

    def must(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A recovery step (no chaos): it must succeed."""
        done = self.world.cli(*args)
        self.note(f"  `{' '.join(args[:3])}` exit {done.returncode}")
        assert done.returncode == 0, self.failure(f"`{' '.join(args)}` failed: {done.stderr[-2000:]}")
        return done

    def failure(self, what: str) -> str:
        return "\n".join([what, "chaos schedule:", *self.log])

    def within_budget(self) -> None:
        assert time.monotonic() - self.started < BUDGET_S, self.failure("the chaos test ran out of time")

    # --- one attempt of a command, with or without a kill -----------------------------------------------

    def target(self, phase: str, number: int) -> str | None:
        """What to kill in attempt `number` of a phase: always in its first attempt (the targets in turn, in a
        shuffled order), half the time in later ones up to KILLS_PER_PHASE, never in the last."""
        kills = self.kills[phase]
        if kills == 0:
            if not self.deck:
                self.deck = self.rng.sample(TARGETS, len(TARGETS))
            chosen: str | None = self.deck.pop()
        elif number < ATTEMPTS and kills < KILLS_PER_PHASE and self.rng.random() < 0.5:
            chosen = self.rng.choice(TARGETS)
        else:
            chosen = None
        if chosen:
            self.kills[phase] += 1
        return chosen

    def attempt(
        self, phase: str, label: str, args: tuple[str, ...], number: int
    ) -> tuple[int, str, str | None]:
        """Run the command, maybe kill something 0.5-3 s in: (exit code, error line, what was killed)."""
        delay = self.rng.uniform(0.5, 3.0)
        target = self.target(phase, number)
        proc = self.world.start(*args)
        try:
            _, stderr = proc.communicate(timeout=delay if target else COMMAND_TIMEOUT_S)
            target = None  # finished before the moment came
        except subprocess.TimeoutExpired:
            if target is None:
                proc.kill()
                raise AssertionError(
                    self.failure(f"{label}: still running after {COMMAND_TIMEOUT_S} s")
                ) from None
            if target == "command":
                proc.kill()
            elif target == "broker":
                self.world.kill_broker()
            else:
                self.world.kill_postgres()
            try:
                _, stderr = proc.communicate(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
                stderr += "\n(still running after its service was killed: killed)"
        error = _error_line(stderr)
        self.note(
            f"{label}: {'killed ' + target + f' at {delay:.1f}s' if target else 'no kill'}; exit"
            f" {proc.returncode}{'; ' + error if error else ''}"
        )
        if target == "broker":
            self.after_broker_loss()
        return proc.returncode, error, target

    # --- recovery ------------------------------------------------------------------------------------

    def after_broker_loss(self) -> None:
        """The broker came back empty: create the topics again (the runbook's first step)."""
        self.must("setup")

    def rebaseline(self) -> bool:
        """`checkpoints rebaseline --yes`; False when a staged run must be finished first."""
        done = self.world.cli("checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")
        self.note(f"  `checkpoints rebaseline --yes` exit {done.returncode}")
        if done.returncode != 0 and FINISH_STAGED_RUN in done.stderr:
            return False
        assert done.returncode == 0, self.failure(f"rebaseline failed: {done.stderr[-2000:]}")
        return True

    def resubmit_lost(self, nights: list[Night]) -> None:
        """The branches submit again what a lost broker held and no night had read yet."""
        for night in nights:
            if night.number not in self.submitted_on:
                continue
            lost = self.submitted_on[night.number] < self.world.broker_generation
            if lost and not self.read(night):
                self.note(f"  night {night.number} was lost with the broker before it was read: submit again")
                self.submit(night)

    def read(self, night: Night) -> bool:
        """Whether a committed run read the night (its new applications are stored)."""
        stored = self.world.scalar(
            "SELECT count(*) FROM applications WHERE application_id = ANY(%s)", sorted(night.new_ids)
        )
        return stored == len(night.new_ids)

    def submit(self, night: Night) -> None:
        for kind, name in night.files:
            self.must("submit", kind, str(self.generated.directory / name))
        self.submitted_on[night.number] = self.world.broker_generation

    def republish_if_broker_lost(self) -> None:
        """Activation requests published on a lost broker are sent again with their own event ids."""
        if self.republished_for == self.world.broker_generation:
            return
        self.must("outbox", "republish", "--operator", OPERATOR, "--unanswered-after-hours", "0", "--yes")
        self.republished_for = self.world.broker_generation

    # --- phases --------------------------------------------------------------------------------------

    def batch(self, night: Night, nights: list[Night]) -> None:
        """`batch run` until the night is read and its run has finished, under chaos."""
        args = ("batch", "run", "--business-date", night.business_date)
        for number in range(1, ATTEMPTS + 1):
            self.within_budget()
            phase = f"night {night.number} batch"
            code, error, target = self.attempt(phase, f"{phase} #{number}", args, number)
            if BROKER_LOST in error:
                if self.rebaseline():
                    self.resubmit_lost(nights)
                continue  # a staged run is finished by the next attempt, then re-baselined
            if code == 0 and target is None:
                if self.read(night):
                    return
                self.resubmit_lost(nights)  # an empty broker planned an empty night
            elif target == "broker":
                # Nothing to tell yet whether the night was read: the next attempt finishes a staged run or
                # says the broker lost what the night expects.
                continue
        raise AssertionError(self.failure(f"night {night.number}: the batch did not finish in {ATTEMPTS}"))

    def until_done(self, phase: str, label: str, args: tuple[str, ...]) -> None:
        """Run a consumer until it stops on its own (idle) in an attempt where nothing was killed."""
        for number in range(1, ATTEMPTS + 1):
            self.within_budget()
            code, _, target = self.attempt(phase, f"{label} #{number}", args, number)
            if target == "broker":
                self.republish_if_broker_lost()
            if code == 0 and target is None:
                return
        raise AssertionError(self.failure(f"{phase} did not finish in {ATTEMPTS} attempts"))

    def answers(self, night: Night) -> None:
        """The banks answer and the bureau applies the answers, until no application waits for its bank."""
        for number in range(1, ROUNDS + 1):
            self.republish_if_broker_lost()
            for kind, args in (
                ("banks", ("bank", "serve", "--all", "--until-idle", IDLE)),
                ("consume", ("consume", "--until-idle", IDLE)),
            ):
                phase = f"night {night.number} {kind}"
                self.until_done(phase, f"{phase} (round {number})", args)
            # Accepted and not answered yet: a new card whose account is still requested, an activation.
            waiting = self.world.scalar(
                "SELECT count(*) FROM applications a LEFT JOIN bank_accounts b USING (application_id)"
                " WHERE a.state = 'ACCEPTED' AND NOT a.retry_due"
                " AND (a.application_type = 'FINANCIAL_ACTIVATION' OR b.status = 'REQUESTED')"
            )
            self.note(f"  {waiting} application(s) still wait for their bank")
            if waiting == 0:
                return
        raise AssertionError(
            self.failure(f"night {night.number}: applications still wait after {ROUNDS} rounds")
        )


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    return lines[-1] if lines else ""


def _nights(generated: Generated) -> list[Night]:
    seen: set[str] = set()
    nights = []
    for entry in generated.manifest["nights"][:2]:
        files = [
            (kind, entry[key])
            for kind, key in (
                ("applications", "applications"),
                ("agreements", "agreements"),
                ("raw", "raw_messages"),
            )
            if entry.get(key)
        ]
        ids = file_ids(generated.directory / entry["applications"]) if entry.get("applications") else set()
        nights.append(
            Night(entry["night"], entry["business_date"], files, ids - seen, entry.get("reference"))
        )
        seen |= ids
    return nights


def _expected_with_answers(
    generated: Generated, business_date: str, types: dict[str, str]
) -> dict[str, tuple[str, list[str]]]:
    """Expected states after the night when every bank answers yes: an accepted activation is completed; an
    accepted new card's application stays accepted (its account is opened, its card on its way)."""
    return {
        app_id: ("COMPLETED" if state == "ACCEPTED" and types.get(app_id) == ACTIVATION else state, reasons)
        for app_id, (state, reasons) in expected_after(generated.expected(), business_date).items()
    }


def provision_world(world: ChaosWorld) -> None:
    """Keys for the reference data's simulated partners (configured servers: `reference load` does not)."""
    assert world.settings.database_url is not None
    with connect(world.settings.database_url.get_secret_value()) as conn:
        provision_partners(world.settings, conn)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in SEEDS])
def test_two_nights_of_chaos_account_for_every_application_once(
    chaos_world: ChaosWorld, tmp_path: Path, seed: int
) -> None:
    world = chaos_world
    generated = make_generated(tmp_path / "data", APPLICATIONS, seed=seed)
    chaos = Chaos(world, generated, seed)
    try:
        chaos.must("setup")
        chaos.must("reference", "load", str(generated.directory / "reference.json"), "--operator", "ops-1")
        provision_world(world)  # the simulated partners' keys: the night seals each bank request to its bank
        chaos.must("setup")  # the banks' topics
        nights = _nights(generated)
        for night in nights:
            if night.reference:  # night 2's registry and areas, as the operator loads them before the night
                chaos.must(
                    "reference", "load", str(generated.directory / night.reference), "--operator", "ops-1"
                )
                provision_world(world)
            chaos.submit(night)
            chaos.batch(night, nights)
            chaos.answers(night)
            types = {
                str(a): str(t)
                for a, t in world.rows("SELECT application_id, application_type FROM applications")
            }
            wrong = mismatches(
                states(world.database_url), _expected_with_answers(generated, night.business_date, types)
            )
            assert wrong == [], chaos.failure(f"after night {night.number}: {wrong}")
        _assert_accounted_for_once(world, generated, chaos)
    except BaseException:
        print("\n".join(chaos.log))
        raise
    print("\n".join(chaos.log))


def _assert_accounted_for_once(world: ChaosWorld, generated: Generated, chaos: Chaos) -> None:
    rows, scalar = world.rows, world.scalar
    assert scalar("SELECT count(*) - count(DISTINCT application_id) FROM applications") == 0
    for table in ("cards", "bank_accounts"):
        assert rows(f"SELECT application_id FROM {table} GROUP BY 1 HAVING count(*) > 1") == [], table
    # Numbered once each (a card still ORDERED has no number yet).
    assert (
        rows("SELECT card_number FROM cards WHERE card_number IS NOT NULL GROUP BY 1 HAVING count(*) > 1")
        == []
    )
    # An existing card's activation binds the account the bank already holds: no number of ours (NULL).
    assert (
        rows(
            "SELECT account_index FROM bank_accounts WHERE account_index IS NOT NULL"
            " GROUP BY 1 HAVING count(*) > 1"
        )
        == []
    )
    assert rows("SELECT run_id, business_date FROM runs WHERE status = 'SUCCEEDED' AND NOT balanced") == []
    nights = {str(d) for (d,) in rows("SELECT DISTINCT business_date FROM runs WHERE status = 'SUCCEEDED'")}
    assert {generated.business_date(1), generated.business_date(2)} <= nights
    assert scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    completed = scalar(
        "SELECT count(*) FROM applications WHERE application_type = %s AND state = 'COMPLETED'", ACTIVATION
    )
    opened = scalar("SELECT count(*) FROM bank_accounts WHERE status = 'OPENED'")
    assert completed > 0 and opened > 0
    # One applied answer per request, however often either was re-delivered: an activation completed once, an
    # account opened once.
    assert (
        rows(
            "SELECT application_id FROM application_history WHERE stage = 'bank' AND to_state = 'COMPLETED'"
            " GROUP BY 1 HAVING count(*) <> 1"
        )
        == []
    )
    assert (
        scalar("SELECT count(*) FROM application_history WHERE stage = 'bank' AND to_state = 'COMPLETED'")
        == completed
    )
    assert (
        rows(
            "SELECT application_id FROM card_history WHERE side = 'financial' AND to_status = 'OPENED'"
            " GROUP BY 1 HAVING count(*) <> 1"
        )
        == []
    )
    assert (
        scalar("SELECT count(*) FROM card_history WHERE side = 'financial' AND to_status = 'OPENED'")
        == opened
    )
    # The banks opened one account per new card and stood one in per registry card they switched on.
    assert scalar("SELECT count(*) FROM bank_sim.accounts") == opened + completed

    expected = generated.expected()
    kinds = Counter(line["kind"] for line in expected)
    assert scalar("SELECT count(*) FROM resent_applications") == kinds["resent_application"]
    vault = Vault.from_settings(world.settings)
    letters = rows("SELECT reason, payload_enc FROM dead_letters")
    raw = Counter(
        vault.decrypt_bytes(p)[:MAX_MESSAGE_BYTES] for r, p in letters if r != "APPLICATION_ID_REUSED"
    )
    verbatim = Counter(p[:MAX_MESSAGE_BYTES] for p in raw_payloads(generated.directory))
    assert sum(raw.values()) == kinds["raw_message"] and not verbatim - raw
    reasons = Counter(str(r) for r, _ in letters)
    wanted = Counter(
        reason
        for line in expected
        if line["kind"] in ("raw_message", "reused_application_id")
        for reason in line["reasons"][:1]
    )
    assert reasons == wanted, json.dumps({"got": reasons, "expected": wanted})


def test_a_dead_letter_at_a_position_the_lost_log_used_is_kept(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 20)
    load_reference_file(before, database_url, generated)
    _garbage(before, b"not a record: night 1")
    first = cli(before, "batch", "run", "--business-date", generated.business_date(1))
    assert first.returncode == 0, first.stderr

    after = on_broker(settings, own_broker.restart())
    ensure_topics(KafkaClientConfig.from_settings(after), after, [])  # `issuance setup`
    _garbage(after, b"not a record: night 2")  # the same partition and offset on the new log
    applied = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")
    assert applied.returncode == 0, applied.stderr

    second = cli(after, "batch", "run", "--business-date", generated.business_date(2))

    assert second.returncode == 0, second.stderr
    vault = Vault.from_settings(after)
    with connect(database_url) as conn:
        payloads = [vault.decrypt_bytes(p) for (p,) in conn.execute("SELECT payload_enc FROM dead_letters")]
    assert sorted(payloads) == [b"not a record: night 1", b"not a record: night 2"]


def test_an_application_resent_at_a_position_the_lost_log_used_is_counted(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 20)
    load_reference_file(before, database_url, generated)
    line = (generated.directory / "applications.jsonl").read_text(encoding="utf-8").splitlines()[0]
    # As its branch sends it: sealed to the bureau, signed, keyed by its id; the same bytes every time.
    preparer = Preparer(Topics(before), SenderKeys.from_settings(before))
    record = preparer.prepare_application(application_to_record(parse_application(json.loads(line))))
    _to_partition_0(before, record)  # offset 0: the application
    first = cli(before, "batch", "run", "--business-date", generated.business_date(1))
    assert first.returncode == 0, first.stderr
    _to_partition_0(before, record)  # offset 1: re-sent
    second = cli(before, "batch", "run", "--business-date", generated.business_date(2))
    assert second.returncode == 0, second.stderr

    after = on_broker(settings, own_broker.restart())
    ensure_topics(KafkaClientConfig.from_settings(after), after, [])  # `issuance setup`
    _to_partition_0(after, record)  # offset 0 of the new log
    _to_partition_0(after, record)  # offset 1: the position of the re-sent record of the lost log
    applied = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")
    assert applied.returncode == 0, applied.stderr

    third = cli(after, "batch", "run", "--business-date", generated.business_date(3))

    assert third.returncode == 0, third.stderr
    with connect(database_url) as conn:
        resent = conn.execute("SELECT count(*) FROM resent_applications").fetchone()
    assert resent is not None and resent[0] == 3


def _garbage(settings: Settings, value: bytes) -> None:
    """One undecodable record at the next offset of partition 0 of the applications topic."""
    _to_partition_0(settings, Prepared(Topics(settings).applications, b"chaos", value, "garbage"))


def _to_partition_0(settings: Settings, record: Prepared) -> None:
    """One record at the next offset of partition 0 of the applications topic, with its key and headers."""
    producer = KafkaProducer(**KafkaClientConfig.from_settings(settings).client_kwargs(), acks="all")
    try:
        producer.send(
            Topics(settings).applications,
            key=record.key,
            value=record.value,
            headers=record.headers or None,
            partition=0,
        )
        producer.flush()
    finally:
        producer.close()

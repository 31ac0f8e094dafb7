"""Helpers for nightly-batch tests: generated data, its reference data loaded, a night published."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from issuance.crypto import Vault
from issuance.domain.reference import parse_reference
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import provision_simulated_partners, reference_parties
from issuance.store.reference_load import load_reference
from producers.client import BranchClient
from producers.generator import AGREEMENT_FILES, APPLICATION_FILES, RAW_FILE, GenerateOptions, generate
from producers.submission import Kind, submit_file


@dataclass(frozen=True)
class Generated:
    directory: Path
    manifest: dict[str, Any]

    def business_date(self, night: int) -> str:
        return str(next(n["business_date"] for n in self.manifest["nights"] if n["night"] == night))

    def expected(self) -> list[dict[str, Any]]:
        with (self.directory / "expected.jsonl").open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]


def make_generated(directory: Path, applications: int, seed: int = 7) -> Generated:
    manifest = generate(directory, GenerateOptions(applications=applications, seed=seed))
    return Generated(directory, manifest)


def load_reference_file(
    settings: Settings, database_url: str, generated: Generated, name: str = "reference.json"
) -> None:
    """Load a generated reference document, its bank topics and its simulated partners' keys."""
    reference = parse_reference(json.loads((generated.directory / name).read_text(encoding="utf-8")))
    with connect(database_url) as conn:
        load_reference(conn, Vault.from_settings(settings), reference, actor="test", source=name)
        provision_partners(settings, conn)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, list(reference.banks))


def load_night_reference(settings: Settings, generated: Generated, night: int) -> bool:
    """Load the reference document the manifest lists for that night, if any (as an operator would before
    the night's run); returns whether there was one."""
    nights = generated.manifest.get("nights", ())  # a bare Generated (no manifest) has no changes to load
    name = next((n.get("reference") for n in nights if n["night"] == night), None)
    if not name:
        return False
    assert settings.database_url is not None, "a night's reference data needs the database"
    load_reference_file(settings, settings.database_url.get_secret_value(), generated, name)
    return True


def provision_partners(settings: Settings, conn: Any | None = None) -> None:
    """Keys for the bureau and every branch, bank and vendor of the loaded reference data (the simulated
    partners, generated into the test's keys_dir), registered: what `issuance setup` and `reference load` do
    with the embedded services. The bureau authenticates what it publishes to them and verifies what they
    send; they sign what they send and open what is sealed to them. On `conn` (committed), else on its own."""
    if conn is not None:
        provision_simulated_partners(settings, conn, reference_parties(conn), actor="test")
        conn.commit()
        return
    assert settings.database_url is not None, "the partners' keys are registered in the database"
    with connect(settings.database_url.get_secret_value()) as own:
        provision_simulated_partners(settings, own, reference_parties(own), actor="test")


def publish_night(settings: Settings, generated: Generated, night: int, raw: bool = True) -> int:
    """Publish a night's applications and agreements (and, on night 1, the raw messages) as a branch would
    (`issuance submit`: each record signed by its branch or bank, personal fields sealed to the bureau), after
    loading the reference data that night's run must see (night 2's document). The number published."""
    load_night_reference(settings, generated, night)
    provision_partners(settings)
    files = [(APPLICATION_FILES.get(night), Kind.APPLICATIONS), (AGREEMENT_FILES.get(night), Kind.AGREEMENTS)]
    if raw and night == 1:
        files.append((RAW_FILE, Kind.RAW))
    sent = 0
    with BranchClient.from_settings(settings, delivery_timeout_s=30) as client:
        for name, kind in files:
            path = generated.directory / name if name else None
            if path is None or not path.exists():
                continue
            report = submit_file(client, path, kind)
            assert report.exit_code == 0, report.to_json()
            sent += report.published
    return sent


def states(database_url: str) -> dict[str, tuple[str, list[str]]]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT application_id, state, reasons FROM applications").fetchall()
    return {str(a): (str(s), sorted(r)) for a, s, r in rows}


# The generator's names of an accepted application before the lifecycle (sent to the bank, not answered yet).
_LIFECYCLE_STATE = {"PERSONALIZED": "ACCEPTED", "ACTIVATION_REQUESTED": "ACCEPTED"}


def lifecycle_state(expected_state: str) -> str:
    """A state of `expected.jsonl` as the lifecycle names it."""
    return _LIFECYCLE_STATE.get(expected_state, expected_state)


def expected_after(expected: list[dict[str, Any]], business_date: str) -> dict[str, tuple[str, list[str]]]:
    """Each application's expected state and reasons after the night of `business_date` (no bank answers)."""
    out = {}
    for line in expected:
        if line["kind"] != "application":
            continue
        steps = [s for s in line["timeline"] if s["business_date"] <= business_date]
        if steps:
            out[line["application_id"]] = (lifecycle_state(steps[-1]["state"]), sorted(steps[-1]["reasons"]))
    return out


def mismatches(
    actual: dict[str, tuple[str, list[str]]], wanted: dict[str, tuple[str, list[str]]]
) -> list[str]:
    """Human-readable differences (application id: actual != expected), at most 20."""
    lines = []
    for app_id in sorted(set(actual) | set(wanted)):
        if actual.get(app_id) != wanted.get(app_id):
            lines.append(f"{app_id}: {actual.get(app_id)} != expected {wanted.get(app_id)}")
    return lines[:20]


def end_state(database_url: str) -> dict[str, Any]:
    """What a night leaves behind that must not depend on crashes or re-runs (timestamps excluded)."""
    queries = {
        "applications": "SELECT application_id, state, reasons, is_open, agreement_id, bank_refusals,"
        " first_run_id FROM applications ORDER BY application_id",
        "history": "SELECT application_id, from_state, to_state, stage, reasons, run_id FROM"
        " application_history"
        " ORDER BY application_id, id",
        "cards": "SELECT application_id, card_number, card_identification_code, sequence,"
        " issue_date, valid_until, status, branch_code,"
        " bank_code FROM cards ORDER BY application_id",
        "accounts": "SELECT application_id, bank_code, sequence, account_index, card_number, status FROM"
        " bank_accounts"
        " ORDER BY application_id",
        "card_history": "SELECT application_id, side, from_status, to_status, source, run_id, event_id"
        " FROM card_history ORDER BY application_id, side, id",
        "counters": "SELECT name, next_value FROM allocation_counters ORDER BY name",
        "agreements": "SELECT agreement_id, status FROM agreements ORDER BY agreement_id",
        "dead_letters": "SELECT source_partition, source_offset, reason FROM dead_letters"
        " ORDER BY source_partition, source_offset, reason",  # the same offset on both topics
        "events": "SELECT event_type, count(*) FROM outbox GROUP BY 1 ORDER BY 1",
        # Event ids that name a source position include the topic's id, which differs between two worlds
        # (dead letters, re-issued decisions): compared by count and by the rows they belong to instead.
        "decision_and_request_ids": "SELECT event_id FROM outbox WHERE event_type <> 'MessageDeadLettered'"
        " AND event_id NOT IN (SELECT event_id FROM resent_applications) ORDER BY event_id",
        "unpublished": "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        "resent": "SELECT r.source_partition, r.source_offset, r.application_id, o.event_type"
        " FROM resent_applications r LEFT JOIN outbox o USING (event_id)"
        " ORDER BY r.source_partition, r.source_offset",
        "runs": "SELECT run_id, status, business_date, balanced FROM runs ORDER BY run_id",
    }
    with connect(database_url) as conn:
        return {
            name: [tuple(row) for row in conn.execute(query).fetchall()] for name, query in queries.items()
        }


def topic_event_ids(settings: Settings, topics: list[str]) -> list[str]:
    """Every event id published on `topics` (duplicates kept: at-least-once delivery is allowed)."""
    from kafka import KafkaConsumer, TopicPartition

    from issuance.messages import decode_event

    consumer = KafkaConsumer(
        **KafkaClientConfig.from_settings(settings).client_kwargs(), group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        ids: list[str] = []
        idle = 0
        while idle < 6:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                idle += 1
                if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                    idle += 2
                continue
            idle = 0
            for records in batch.values():
                ids.extend(decode_event(r.value).event_id for r in records)
        return ids
    finally:
        consumer.close()


def load_reference_data(settings: Settings, database_url: str, reference: Any) -> None:
    """Load reference data built by `tests.factories` (the registry as it stands), its bank topics and its
    simulated partners' keys."""
    with connect(database_url) as conn:
        load_reference(conn, Vault.from_settings(settings), reference, actor="test", source="factories")
        provision_partners(settings, conn)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, list(reference.banks))


def publish_records(settings: Settings, applications: Any = (), agreements: Any = ()) -> None:
    """Publish applications and agreements built by `tests.factories`, as a branch would (signed by their
    branch and bank, personal fields sealed to the bureau), once the reference data is loaded."""
    from issuance.domain.contract import agreement_to_record, application_to_record

    provision_partners(settings)
    with BranchClient.from_settings(settings, delivery_timeout_s=30) as client:
        sent = [client.submit_application(application_to_record(a)) for a in applications]
        sent += [client.submit_agreement(agreement_to_record(a)) for a in agreements]
        client.flush()
        for submission in sent:
            submission.result(timeout=30)


def refused_with_attempts_left(database_url: str, application_id: str, refusals: int = 1) -> None:
    """What the bureau's bank-answer consumer writes for a refusal with attempts left (ACCOUNT_REFUSED or
    ACTIVATION_REFUSED): the application stays ACCEPTED, its request is due again in the next night."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE applications SET retry_due = true, bank_refusals = %s WHERE application_id = %s",
            (refusals, application_id),
        )
        conn.commit()


def bank_requests_of(settings: Settings, database_url: str, application_id: str) -> list[Any]:
    """The bank requests (account openings, activations) of an application, decoded, in the order written.
    Nothing personal is in clear in them (their `personal` is sealed to the bank: `holder_of`), so the outbox
    keeps them as they are."""
    from issuance.messages import decode_event

    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload, payload_encrypted FROM outbox"
            " WHERE event_type IN ('AccountOpeningRequested', 'ActivationRequested')"
            " AND message_key = convert_to(%s, 'UTF8') ORDER BY seq",
            (application_id,),
        ).fetchall()
    assert not any(sealed for _payload, sealed in rows), "sealed to the bank: not sealed again at rest"
    return [decode_event(bytes(payload)) for payload, _sealed in rows]


def holder_of(settings: Settings, request: Any) -> Any:
    """A bank request's personal part (HolderPersonal), opened with its bank's provisioned key."""
    from issuance.bank_personal import open_holder
    from issuance.trust.keystore import partner_keys
    from issuance.trust.parties import bank
    from issuance.trust.sealing import Unsealer

    keys = partner_keys(settings, bank(request.bank_code))
    return open_holder(request.personal, Unsealer(keys), request.event_id)

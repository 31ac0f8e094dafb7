"""Receiving a card vendor's return file: checked (`issuance.domain.vendor_return`), then applied in one
transaction through `lifecycle.step`, once per file (`vendor_returns`, by the file's SHA-256).

Nothing is applied unless the file is signed by the vendor its header names (`verify_file` over the file's
SHA-256 with the vendor's registered signing key): an unsigned file, one signed by another party or changed
after signing is refused as a whole (ReturnFileRefused, exit 2).

PRODUCED: the card is PRODUCED with its chip serial and dispatched to its branch (CardDispatched in the
outbox). FAILED: back to ORDERED for a later vendor file, or, at `max_productions` failures, final: the card
CANCELLED, its application FAILED and a DecisionIssued FAILED for the branch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from issuance import outbox_events
from issuance.crypto import Vault
from issuance.domain.lifecycle import (
    CardStatus,
    TransitionRefused,
    Trigger,
    production_failure_trigger,
    step,
)
from issuance.domain.vendor_return import (
    Line,
    LineRefusal,
    Refused,
    Result,
    ReturnFileRefused,
    check_header,
    check_lines,
    parse,
)
from issuance.errors import BrokerUnavailable
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.services.endpoints import Endpoints
from issuance.settings import Settings
from issuance.store import card_repo, party_keys_repo
from issuance.store.audit import record_action
from issuance.store.card_repo import ApplicationClosed, CardRow, Conn, HistoryStep
from issuance.store.consumer_repo import OutboxEvent, add_outbox
from issuance.store.db import connect
from issuance.trust.channel import verify_file
from issuance.trust.errors import TrustFailure
from issuance.trust.parties import vendor

STAGE = "production"


@dataclass(slots=True)
class ReceiveReport:
    """What receiving one return file did."""

    sha256: str
    run_id: int
    vendor_code: str
    lines: int = 0
    produced: int = 0
    remade: int = 0  # failed, back to ORDERED for a later vendor file
    failed_final: int = 0
    refused: list[Refused] = field(default_factory=list)
    waiting: int = 0  # cards of the vendor file still in production after this file (not answered in it)
    already_received: bool = False
    received_at: datetime | None = None
    received_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "run_id": self.run_id,
            "vendor_code": self.vendor_code,
            "lines": self.lines,
            "produced": self.produced,
            "remade": self.remade,
            "failed_final": self.failed_final,
            "refused_lines": [r.to_json() for r in sorted(self.refused, key=lambda r: r.line)],
            "waiting": self.waiting,
            "already_received": self.already_received,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "received_by": self.received_by,
        }


def receive(
    conn: Conn,
    data: bytes,
    *,
    signature: bytes | None,
    operator: str,
    max_productions: int,
    topics: Topics,
    now: datetime | None = None,
) -> ReceiveReport:
    """Apply a return file once (ReturnFileRefused, an InputError, when it is not signed by the vendor its
    header names or its header does not match)."""
    at = now or datetime.now(UTC)
    parsed = parse(data)
    header = parsed.header
    _check_signature(conn, header.vendor_code, data, signature)
    report = ReceiveReport(parsed.sha256, header.run_id, header.vendor_code, lines=len(parsed.lines))
    report.lines += len(parsed.refused)
    with conn.transaction():
        card_repo.lock_file(conn, parsed.sha256)
        earlier = card_repo.received(conn, parsed.sha256)
        if earlier is not None:
            report.already_received = True
            report.received_at, report.received_by = earlier.received_at, earlier.received_by
            _audit(conn, operator, "vendor.return_repeated", report)
            return report
        check_header(header, card_repo.vendor_file(conn, header.run_id, header.vendor_code))
        cards = card_repo.lock_cards(conn, [line.card_number for line in parsed.lines])
        accepted, refused = check_lines(
            header, parsed.lines, {number: card.in_production() for number, card in cards.items()}
        )
        report.refused = [*parsed.refused, *refused]
        source = f"vendor:{header.vendor_code}"
        events: list[OutboxEvent] = []
        steps: list[HistoryStep] = []
        for line in accepted:
            card = cards[line.card_number]
            trigger = _trigger(line, card, max_productions)
            try:
                after = step(card.lifecycle(), trigger).after
            except TransitionRefused:
                report.refused.append(Refused(line.line, LineRefusal.NOT_ALLOWED))
                continue
            before, to = CardStatus(card.status), after.card
            assert to is not None  # every production trigger moves the card side
            history = HistoryStep(card.application_id, "card", before, to, source, run_id=header.run_id)
            if line.result is Result.PRODUCED:
                assert line.chip_serial is not None
                card_repo.set_produced(conn, card.application_id, before, to, line.chip_serial, at)
                branch = card.dispatch_branch
                events.append(
                    outbox_events.dispatch(
                        topics,
                        card.application_id,
                        card.card_number,
                        branch,
                        header.vendor_code,
                        header.run_id,
                        at,
                    )
                )
                steps.append(replace(history, detail=f"dispatched to branch {branch}"))
                report.produced += 1
                continue
            card_repo.set_production_failed(conn, card.application_id, before, to, at)
            failures = card.production_failures + 1
            detail = f"{line.failure_reason} (failure {failures} of {max_productions}"
            if trigger is Trigger.CARD_PRODUCTION_FAILED_FINAL:
                card_repo.close_application(
                    conn,
                    ApplicationClosed(
                        card.application_id,
                        card.state,
                        after.state,
                        STAGE,
                        None,
                        f"vendor {header.vendor_code} could not make the card {failures} times",
                    ),
                )
                events.append(
                    outbox_events.decision(
                        topics, card.application_id, card.application_branch, after.state, at
                    )
                )
                detail += ", final: the card is cancelled and the application failed)"
                report.failed_final += 1
            else:
                detail += ", made again in a later vendor file)"
                report.remade += 1
            steps.append(replace(history, detail=detail))
        card_repo.add_history(conn, steps)
        add_outbox(conn, events)
        report.waiting = card_repo.still_in_production(conn, header.run_id, header.vendor_code)
        report.received_at, report.received_by = at, operator
        card_repo.record_received(
            conn,
            card_repo.Received(
                parsed.sha256,
                header.run_id,
                header.vendor_code,
                report.produced,
                report.remade + report.failed_final,
                len(report.refused),
                operator,
                at,
            ),
        )
        _audit(conn, operator, "vendor.return_received", report)
    return report


def _check_signature(conn: Conn, vendor_code: str, data: bytes, signature: bytes | None) -> None:
    """ReturnFileRefused unless the vendor signed exactly these bytes (the reason names no content)."""
    directory = party_keys_repo.load_directory(conn)
    try:
        verify_file(directory, vendor(vendor_code), hashlib.sha256(data).digest(), signature or b"")
    except TrustFailure as exc:
        raise ReturnFileRefused(
            f"the return file is not signed by vendor {vendor_code} ({exc.reason.value}: {exc.detail}):"
            f" nothing applied; ask the vendor for the file with its signature (<file>.sig), signed with"
            f" the key it registered"
        ) from exc


def receive_and_publish(
    settings: Settings, endpoints: Endpoints, data: bytes, operator: str, signature: bytes | None
) -> tuple[ReceiveReport, int | None]:
    """Receive a return file, then publish what it queued (None: the broker did not answer; the events stay
    in the outbox for the next relay: `issuance consume`, `issuance batch run`)."""
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-vendor") as conn:
        report = receive(
            conn,
            data,
            signature=signature,
            operator=operator,
            max_productions=settings.max_productions,
            topics=Topics(settings),
        )
        if report.already_received:
            return report, 0
        try:
            ensure_topics(endpoints.kafka, settings, [])
            published = publish_outbox(
                conn,
                endpoints.kafka,
                Vault.from_settings(settings),
                endpoints.database_url,
                max_message_bytes=settings.max_message_bytes,
                trust=RelayTrust.load(conn, settings),
            )
        except BrokerUnavailable:
            return report, None
    return report, published


def _trigger(line: Line, card: CardRow, max_productions: int) -> Trigger:
    if line.result is Result.PRODUCED:
        return Trigger.CARD_PRODUCED
    return production_failure_trigger(card.production_failures, max_productions)


def _audit(conn: Conn, operator: str, action: str, report: ReceiveReport) -> None:
    detail = report.to_json()
    detail["refused_lines"] = len(report.refused)  # line numbers and reasons are in the command's output
    record_action(
        conn,
        actor=operator,
        action=action,
        entity="vendor_return",
        entity_id=report.sha256,
        detail=detail,
    )

"""The run's final step: one PostgreSQL transaction that applies the whole night.

What needs more than one record (duplicates per person, the agreement join across nights) is done here,
set-based over the staging tables, calling the pure domain functions for the rules. Earlier applications that
would lead to a bank request tonight (accepted on a late agreement, a refused request due again) are verified
again against tonight's reference data by the first night's rule. An accepted application's first request to
its bank (an account opening for a new card, an activation for an existing one) was prepared by a helper while
the transaction decided (`pipelines.personalize_staged`); the transaction keeps those of the applications it
accepts. No number is allocated at acceptance: a new card is ORDERED and its account REQUESTED; the bank
assigns the account number, and a later night numbers the card from the slot the application keeps.
Everything the night changes commits together: application states and history, agreements, cards, bank
accounts and their history, outbox events, dead letters, the reconciliation, the checkpoint and the run's
status. A crash before COMMIT leaves nothing behind; the run is resumed over the same plan, whose requests
carry the same event ids."""

from __future__ import annotations

import itertools
import operator
import queue
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from issuance.bank_personal import BankSealers
from issuance.codec.avro import encode_many
from issuance.crypto import Vault
from issuance.dead_letter_events import dead_letter_event, decode_headers
from issuance.domain.agreement import AgreementStatus, check_agreements
from issuance.domain.duplicates import resolve_duplicates
from issuance.domain.lifecycle import ApplicationState, Emit
from issuance.domain.model import (
    Applicant,
    Application,
    ApplicationType,
    Bank,
    Channel,
    DeadLetterReason,
    Material,
    Person,
    Reason,
    ReferenceData,
)
from issuance.domain.verification import verify
from issuance.kafka.topics import Topics
from issuance.messages import (
    DecisionIssued,
    decision_event_id,
    reason_message_records,
    resent_decision_event_id,
)
from issuance.store import decisions_repo as repo
from issuance.store import party_keys_repo
from issuance.store.db import copy_rows
from issuance.store.party_keys_repo import load_directory
from issuance.store.personalization_repo import apply_personalization
from issuance.store.reference_repo import lookup_persons
from issuance.store.run_repo import STAGED_DEAD_LETTER_COLUMNS, Conn, Run
from issuance.trust.parties import BUREAU, branch
from issuance.trust.sealing import Sealer
from pipelines.faults import crash_point
from pipelines.personalize import (
    FIRST_ATTEMPT,
    BankRequest,
    Candidate,
    SignedAgreement,
    agreement_of,
    application_shell,
    application_type,
    bank_requests,
    local_time,
    outbox_rows,
)
from pipelines.personalize_staged import personalizing


@dataclass(frozen=True, slots=True)
class NightContext:
    """What the final transaction needs besides the connection."""

    run: Run
    catalog: ReferenceData
    vault: Vault
    topics: Topics
    window_days: int
    database_url: str  # for the personalization helper's own connections
    personalize_in_process: bool = True  # False: the helper is a process (a big night)


@dataclass(slots=True)
class CommitStats:
    """What the final transaction did, for the reconciliation report."""

    repeated_ids: int = 0  # different applications under a used application id: dead letters
    resent: int = 0  # the same application sent again: its first decision re-issued
    agreements_new: int = 0
    requests_prepared: int = 0  # first requests the helper built (kept if accepted)
    cards_ordered: int = 0
    accounts_requested: int = 0
    account_opening_requests: int = 0  # first requests and requests again
    activation_requests: int = 0
    requested_again: int = 0
    retries_rejected: int = 0  # requests due again that no longer pass verification: rejected, not retried
    cards_cancelled: int = 0  # the ordered cards of those
    decisions: int = 0
    dead_letters: int = 0
    reexamined: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def count_requests(self, requests: list[BankRequest]) -> None:
        for r in requests:
            if r.event_type == Emit.ACCOUNT_OPENING_REQUEST.value:
                self.account_opening_requests += 1
            else:
                self.activation_requests += 1


_TYPES = {t.value: t for t in ApplicationType}
_CHANNELS = {c.value: c for c in Channel}


def apply_night(conn: Conn, night: NightContext) -> CommitStats:
    """Every write of the night, in the caller's transaction; the run's verified applications' first bank
    requests are prepared beside it (`pipelines.personalize_staged`) until the acceptances are written."""
    with personalizing(
        night.database_url,
        night.vault,
        night.catalog.banks,
        night.run.run_id,
        night.run.business_date,
        night.window_days,
        in_process=night.personalize_in_process,
    ) as prepared:
        return _apply_night(conn, night, prepared)


def _apply_night(conn: Conn, night: NightContext, prepared: Future[int]) -> CommitStats:
    run_id = night.run.run_id
    stats = CommitStats()
    timer = _Timer(stats.timings)
    repo.create_work_tables(conn)
    repo.analyze(conn, "staged_applications", "staged_agreements", "staged_dead_letters")
    with timer("repeated_ids"):
        stats.repeated_ids, resent = _dead_letter_repeated_ids(conn, night)
    with timer("agreements_in"):
        stats.agreements_new = repo.stage_new_agreements(conn, run_id)
    with timer("verification_rejects"):
        repo.decide_verification_rejects(conn, run_id)
    with timer("duplicates"):
        _decide_duplicates(conn, run_id)
    repo.analyze(conn, "run_decisions")
    with timer("agreement_join"):
        stats.reexamined = _decide_agreements(conn, night, timer)
    with timer("recheck"):
        stats.retries_rejected = _recheck_reference(conn, night, stats.reexamined)
    repo.analyze(conn, "run_decisions")
    with timer("apply_decisions"):
        repo.apply_decisions(conn, run_id)
    # The decisions' events are encoded on a thread while PostgreSQL writes history, agreements and cards.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decision-events") as pool:
        with timer("decisions_read"):
            encoded = pool.submit(
                _decision_events, night, conn.execute(repo.DECISIONS_QUERY, binary=True).fetchall()
            )
        with timer("history"):
            repo.record_history(conn, run_id)
            stats.cards_cancelled = repo.withdraw_rechecked(conn, run_id).cards
        with timer("resent"):
            stats.resent = _reissue_first_decisions(conn, night, resent)
        with timer("settle_agreements"):
            repo.settle_agreements(conn, run_id, night.run.business_date, night.window_days)
        with timer("prepared_wait"):
            stats.requests_prepared = prepared.result()
            repo.analyze(conn, "staged_personalized")
        with timer("accept"):
            _accept(conn, night, stats)
        crash_point("allocated")
        with timer("request_again"):
            _request_again(conn, night, stats)
        with timer("decision_events"):
            events = encoded.result()
            copy_rows(conn, "outbox", repo.OUTBOX_COLUMNS, events)
            stats.decisions = len(events)
    with timer("dead_letter_events"):
        stats.dead_letters = _dead_letter_events(conn, night)
    with timer("personalize_cards"):
        repo.analyze(conn, "staged_cards")
        apply_personalization(conn, run_id)  # cards whose account is opened: IN_PRODUCTION
    return stats


class _Timer:
    """Seconds per step of the final transaction, for the run's report."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self._into[name] = round(time.monotonic() - started, 3)


def _dead_letter_repeated_ids(conn: Conn, night: NightContext) -> tuple[int, list[repo.Repeated]]:
    """Records whose application_id was already submitted leave the night's applications: the same
    application sent again (equal content digest) is set aside to get its first decision again; a different
    application under that id is a dead letter (APPLICATION_ID_REUSED). Returns the dead letters' count and
    the re-sent records."""
    run_id = night.run.run_id
    rows = []
    resent = []
    for repeated in repo.repeated_applications(conn, run_id):
        repo.drop_staged_application(conn, run_id, repeated.topic, repeated.partition, repeated.offset)
        if repeated.same_content:
            resent.append(repeated)
            continue
        rows.append(
            (
                run_id,
                repeated.topic,
                repeated.partition,
                repeated.offset,
                "dedupe",
                DeadLetterReason.APPLICATION_ID_REUSED.value,
                "application_id: already submitted with other content; send the new application under a new"
                " application_id (the record was decoded; its bytes are not kept)",
                night.vault.encrypt_bytes(repeated.application_id.encode()),
                repeated.branch_code,
                None,  # no headers kept: the record is not re-driven as it came
            )
        )
    copy_rows(
        conn,
        "staged_dead_letters",
        STAGED_DEAD_LETTER_COLUMNS,
        rows,
    )
    return len(rows), resent


def _reissue_first_decisions(conn: Conn, night: NightContext, resent: list[repo.Repeated]) -> int:
    """Each re-sent record gets its application's first decision again, on the branch decisions topic, with
    an event id of its own (from the record's id and position: a re-run of the night gives the same id); the
    record is kept in resent_applications, which the reconciliation counts."""
    if not resent:
        return 0
    run_id = night.run.run_id
    first = repo.first_decisions(conn, sorted({r.application_id for r in resent}))
    topic_ids = _topic_ids(night)
    now = datetime.now(UTC)
    outbox, kept = [], []
    for r in resent:
        state, reasons = first[r.application_id]
        topic_id = topic_ids.get(r.topic, "")
        event_id = resent_decision_event_id(r.application_id, r.partition, r.offset, topic_id)
        decision = DecisionIssued(
            event_id,
            r.application_id,
            r.branch_code,
            ApplicationState(state),
            tuple(Reason(reason) for reason in reasons),
            now,
            run_id,
        )
        outbox.append(
            (
                event_id,
                night.topics.decisions,
                r.application_id.encode(),
                decision.to_bytes(),
                "DecisionIssued",
                run_id,
                False,
                str(branch(r.branch_code)),
            )
        )
        kept.append(
            (run_id, r.topic, topic_id, r.partition, r.offset, r.application_id, r.branch_code, event_id)
        )
    copy_rows(conn, "outbox", repo.OUTBOX_COLUMNS, outbox)
    copy_rows(conn, "resent_applications", repo.RESENT_COLUMNS, kept)
    return len(kept)


def _decide_duplicates(conn: Conn, run_id: int) -> None:
    decisions = []
    for _key, group in itertools.groupby(repo.contested(conn, run_id), key=_PERSON):
        members = list(group)
        shells = [
            application_shell(r.application_id, "NEW_CARD", "", r.submitted_at, r.submitted_utc_offset)
            for r in members
        ]
        resolution = resolve_duplicates(shells, open_elsewhere=members[0].open_elsewhere)
        for duplicate in resolution.duplicates:
            decisions.append(
                (
                    duplicate.application_id,
                    True,
                    ApplicationState.SUBMITTED.value,
                    ApplicationState.REJECTED.value,
                    [Reason.DUPLICATE_APPLICATION.value],
                    "duplicates",
                    None,
                )
            )
    copy_rows(conn, "run_decisions", repo.DECISION_COLUMNS, decisions)


def _candidates(conn: Conn, run_id: int) -> Iterator[list[repo.AgreementCandidate]]:
    """Pages of (application, pending agreement) rows; an application's rows never span two pages."""
    carry: list[repo.AgreementCandidate] = []
    params = {"run": run_id, "awaiting": _AWAITING}
    for page in repo.stream(conn, repo.CANDIDATES_QUERY, params):
        rows = carry + [repo.AgreementCandidate._make(row) for row in page]
        last_id = rows[-1].application_id
        cut = len(rows)
        while cut > 0 and rows[cut - 1].application_id == last_id:
            cut -= 1
        yield rows[:cut]
        carry = rows[cut:]
    if carry:
        yield carry


def _decide_agreements(conn: Conn, night: NightContext, timer: _Timer) -> dict[str, int]:
    """The agreement join, for this run's survivors and every application still awaiting from earlier runs.

    The rule runs in Python on a thread, page by page as the candidates arrive; once they are all read, the
    connection is free, and PostgreSQL records that every application of the run was read while the thread
    decides."""
    business_date = night.run.business_date
    reexamined: dict[str, int] = {}
    pages: queue.SimpleQueue[list[repo.AgreementCandidate] | None] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="agreement-join") as pool:
        decided = pool.submit(_decide_queued, pages, night, business_date, reexamined)
        try:
            for page in _candidates(conn, night.run.run_id):
                pages.put(page)
        finally:
            pages.put(None)  # the thread ends with what it was given, even when reading failed
        with timer("read_history"):
            repo.record_reads(conn, night.run.run_id)
        decisions = decided.result()
    copy_rows(conn, "run_decisions", repo.DECISION_COLUMNS, decisions)
    return reexamined


def _decide_queued(
    pages: queue.SimpleQueue[list[repo.AgreementCandidate] | None],
    night: NightContext,
    business_date: date,
    reexamined: dict[str, int],
) -> list[tuple[Any, ...]]:
    decisions: list[tuple[Any, ...]] = []
    while (page := pages.get()) is not None:
        decisions.extend(_decide_page(page, night, business_date, reexamined))
    return decisions


_APPLICATION = operator.attrgetter("application_id")
_PERSON = operator.attrgetter("person_key")
_SUBMITTED, _AWAITING = ApplicationState.SUBMITTED.value, ApplicationState.AWAITING_AGREEMENT.value
_ACCEPTED, _REJECTED = ApplicationState.ACCEPTED.value, ApplicationState.REJECTED.value


def _decide_page(
    page: list[repo.AgreementCandidate], night: NightContext, business_date: date, reexamined: dict[str, int]
) -> list[tuple[Any, ...]]:
    """Decisions for one page of (application, pending agreement) rows; re-examinations counted by state."""
    decisions: list[tuple[Any, ...]] = []
    banks, window_days = night.catalog.banks, night.window_days
    for application_id, group in itertools.groupby(page, key=_APPLICATION):
        rows = list(group)
        first = rows[0]
        is_new = first.is_new
        application = application_shell(
            application_id,
            first.application_type,
            first.bank_code,
            first.submitted_at,
            first.submitted_utc_offset,
        )
        agreements = [agreement_of(r) for r in rows if r.agreement_id is not None]
        bank = banks.get(application.bank_code) or Bank(application.bank_code, "", "", "")
        outcome = check_agreements(application, agreements, bank, business_date, window_days)
        status = outcome.status
        reasons: list[str]
        agreement_id: str | None
        if status == AgreementStatus.ACCEPTED:
            assert outcome.agreement is not None
            state, reasons, agreement_id = _ACCEPTED, [], outcome.agreement.agreement_id
        elif status == AgreementStatus.AWAITING:
            if not is_new:
                continue  # still waiting: nothing changes
            state, reasons, agreement_id = _AWAITING, [], None
        else:
            state, reasons, agreement_id = _REJECTED, [r.value for r in outcome.reasons], None
        if not is_new:
            reexamined[state] = reexamined.get(state, 0) + 1
        from_state = _SUBMITTED if is_new else _AWAITING
        decisions.append((application_id, is_new, from_state, state, reasons, "agreement", agreement_id))
    return decisions


@dataclass(frozen=True, slots=True)
class Recheck:
    """An earlier application about to lead to a bank request tonight, as verification sees it."""

    from_state: str  # AWAITING_AGREEMENT (accepted on a late agreement) or ACCEPTED (a request due again)
    agreement_id: str | None
    application: Application
    person_key: bytes
    card_registered: bool
    issued_card_holder: bool  # the person holds another card this system issued (not cancelled)
    guardian_key: bytes | None = None  # blind index of the guardian's ID number, when one is given


def recheck(
    candidates: Sequence[Recheck], persons: Mapping[bytes, Person], catalog: ReferenceData
) -> list[tuple[str, str, str | None, list[str]]]:
    """Article 5 on every decision: (application id, from state, agreement id, reasons) of each candidate that
    no longer passes verification against tonight's reference data; the same rule as on its first night."""
    rejections = []
    for c in candidates:
        reasons = verify(
            c.application,
            persons.get(c.person_key),
            catalog,
            c.card_registered,
            c.issued_card_holder,
            persons.get(c.guardian_key) if c.guardian_key is not None else None,
        )
        if reasons:
            rejections.append(
                (c.application.application_id, c.from_state, c.agreement_id, [r.value for r in reasons])
            )
    return rejections


def _as_recheck(row: repo.Rechecked, vault: Vault) -> Recheck:
    """A stored application, opened for verification."""
    guardian = _opened(vault, row.guardian_id_enc)
    return Recheck(
        row.from_state,
        row.agreement_id,
        Application(
            row.application_id,
            _TYPES[row.application_type],
            row.branch_code,
            row.bank_code,
            _CHANNELS[row.channel],
            Applicant(
                vault.decrypt(row.id_number_enc),
                vault.decrypt(row.name_enc),
                _opened(vault, row.phone_enc) or "",
            ),
            tuple(Material(m) for m in row.materials),
            local_time(row.submitted_at, int(row.submitted_utc_offset)),
            row.card_number,
            guardian,
        ),
        bytes(row.person_key),
        row.card_registered,
        row.issued_card_holder,
        vault.blind_index(guardian) if guardian else None,
    )


def _recheck_reference(conn: Conn, night: NightContext, reexamined: dict[str, int]) -> int:
    """The applications accepted tonight on a late agreement and the refused requests due again are verified
    again (issuing area approved, bank cooperating there, person in the registry and insured, existing cards);
    one that no longer passes is rejected with the ordinary reason codes (a request due again:
    RECHECK_REJECTED). Returns how many requests due again were rejected instead of requested again."""
    vault = night.vault
    candidates = [_as_recheck(row, vault) for row in repo.rechecked(conn)]
    keys = {c.person_key for c in candidates} | {c.guardian_key for c in candidates if c.guardian_key}
    persons = lookup_persons(conn, vault, keys, [c.application.application_id for c in candidates])
    rejections = recheck(candidates, persons, night.catalog)
    repo.reject_rechecked(conn, rejections)
    again = sum(1 for r in rejections if r[1] == _AWAITING)
    if again:
        reexamined[_ACCEPTED] -= again
        if not reexamined[_ACCEPTED]:
            del reexamined[_ACCEPTED]
        reexamined[_REJECTED] = reexamined.get(_REJECTED, 0) + again
    return len(rejections) - again


def _opened(vault: Vault, envelope: bytes | None) -> str | None:
    return None if envelope is None else vault.decrypt(envelope)


def _signed(
    agreement_id: str | None, terms_version: str | None, document_sha256: str | None
) -> SignedAgreement | None:
    """The accepted agreement of a stored application (None for one accepted before it was recorded)."""
    if agreement_id is None or terms_version is None or document_sha256 is None:
        return None
    return SignedAgreement(agreement_id, terms_version, document_sha256)


def _accept(conn: Conn, night: NightContext, stats: CommitStats) -> None:
    """The accepted applications' cards (ORDERED), accounts (REQUESTED) and first bank requests: those read
    tonight with the requests the helper prepared, those accepted on re-examination with requests built
    here."""
    run = night.run
    topics = {bank: night.topics.bank_requests(bank) for bank in night.catalog.banks}
    accepted = repo.insert_accepted(conn, run.run_id, topics)
    stats.cards_ordered += accepted.cards
    stats.accounts_requested += accepted.accounts
    stats.account_opening_requests += accepted.account_openings
    stats.activation_requests += accepted.activations
    after = ""
    sealers = BankSealers(load_directory(conn))
    while page := repo.reexamined_accepted(conn, after, repo.FETCH_SIZE):
        requests = bank_requests(
            [_requesting(r, night.vault, FIRST_ATTEMPT) for r in page],
            sealers,
            run.run_id,
            datetime.now(UTC),
        )
        copy_rows(conn, "outbox", repo.OUTBOX_COLUMNS, outbox_rows(requests, topics, run.run_id))
        stats.count_requests(requests)
        after = page[-1].application_id


def _requesting(row: repo.Requesting, vault: Vault, attempt: int) -> Candidate:
    """A stored accepted application, opened for its bank request."""
    return Candidate(
        row.application_id,
        application_type(row.application_type),
        row.bank_code,
        row.branch_code,
        row.area_code,
        row.card_number,
        _opened(vault, row.account_number_enc),
        vault.decrypt(row.id_number_enc),
        vault.decrypt(row.name_enc),
        attempt,
        _signed(row.agreement_id, row.terms_version, row.document_sha256),
    )


def _request_again(conn: Conn, night: NightContext, stats: CommitStats) -> None:
    """REQUESTED_AGAIN: a refused request with attempts left (`retry_due`) that passed tonight's re-check is
    sent again, attempt = the bank's refusals so far + 1, the same kind of request as the first."""
    run = night.run
    topics = {bank: night.topics.bank_requests(bank) for bank in night.catalog.banks}
    due = repo.due_again(conn)
    requests = bank_requests(
        [_requesting(r, night.vault, int(r.bank_refusals) + 1) for r in due],
        BankSealers(load_directory(conn)),
        run.run_id,
        datetime.now(UTC),
    )
    repo.mark_requested_again(
        conn, run.run_id, [r.application_id for r in due], [r.event_id for r in requests]
    )
    copy_rows(conn, "outbox", repo.OUTBOX_COLUMNS, outbox_rows(requests, topics, run.run_id))
    stats.count_requests(requests)
    stats.requested_again = len(requests)


def _decision_events(night: NightContext, decided: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Outbox rows of one DecisionIssued per decision of the run, for the branch (no personal data)."""
    run_id = night.run.run_id
    decided_at = DecisionIssued(
        "", "", "", ApplicationState.SUBMITTED, (), datetime.now(UTC), run_id
    ).to_record()["decided_at"]  # the record's own timestamp format, computed once
    topic = night.topics.decisions
    ids = [
        decision_event_id(app, ApplicationState(state), run_id) for app, _branch, state, _reasons in decided
    ]
    payloads = encode_many(
        DecisionIssued.RECORD,
        (
            {
                "event_id": event_id,
                "application_id": app,
                "branch_code": branch,
                "state": state,
                "reasons": list(reasons),
                # the message records are built once per process and shared by every decision
                "reason_messages": reason_message_records(reasons),
                "decided_at": decided_at,
                "run_id": run_id,
            }
            for event_id, (app, branch, state, reasons) in zip(ids, decided, strict=True)
        ),
    )
    return [
        # the applying branch as a party's text (str(branch(code)), without building 200,000 Party values)
        (event_id, topic, row[0].encode(), payload, "DecisionIssued", run_id, False, f"branch:{row[1]}")
        for event_id, row, payload in zip(ids, decided, payloads, strict=True)
    ]


def _topic_ids(night: NightContext) -> dict[str, str]:
    """The topic id each planned topic had when the night was planned ('' where the broker reports none): with
    the partition and offset it names a record across the lives of a topic (a broker that lost its state)."""
    return {str(part["topic"]): str(part.get("topic_id") or "") for part in night.run.plan}


def _dead_letter_events(conn: Conn, night: NightContext) -> int:
    run_id = night.run.run_id
    now = datetime.now(UTC)
    outbox = []
    inserted = repo.insert_dead_letters(conn, run_id, _topic_ids(night))
    if not inserted:
        return 0
    sealer = Sealer.to(party_keys_repo.load_directory(conn), BUREAU)  # one for the night's dead letters
    for topic, topic_id, partition, offset, stage, reason, detail, payload_enc, headers_enc in inserted:
        message = dead_letter_event(
            source_topic=topic,
            partition=partition,
            offset=offset,
            stage=stage,
            reason=DeadLetterReason(reason),
            detail=detail,
            payload=night.vault.decrypt_bytes(payload_enc),
            headers=decode_headers(night.vault.decrypt_bytes(headers_enc) if headers_enc else None),
            sealer=sealer,
            at=now,
            run_id=run_id,
            topic_id=topic_id,
        )  # bounded: an excerpt of the payload sealed to the bureau, its size, digest and where it is kept
        outbox.append(
            (
                message.event_id,
                night.topics.dead_letters,
                None,
                message.to_bytes(),
                "MessageDeadLettered",
                run_id,
                False,  # its payload is sealed to the bureau already
                str(BUREAU),
            )
        )
    copy_rows(conn, "outbox", repo.OUTBOX_COLUMNS, outbox)
    return len(outbox)

"""The first bank request of each of the night's verified applications, prepared beside the final transaction.

The Beam workers verify and stage; their cores are busy. The final transaction then keeps one PostgreSQL
backend busy for most of its length and leaves the other core idle, and a verified application's first
request to its bank needs nothing the transaction decides but the agreement. So while the transaction decides
the night, a helper builds the first request of every staged application that passed verification
(`pipelines.personalize.bank_requests`: an AccountOpeningRequested for a new card, an ActivationRequested for
an existing one) into `staged_personalized`: a process of its own for a big night, a thread for a small one.
The transaction waits for it before it writes the accepted applications' cards, accounts and requests, and
keeps the requests of the applications it accepts (`decisions_repo.insert_accepted`). No number is allocated.

An activation of a card this system issued carries the bank's number of that card's account: the helper reads
it from `bank_accounts` (an account the bank opened) and opens it with the Vault, as it opens the holder's
name and ID number, and seals them to the bank (one Sealer per bank, from the registered keys it reads once).

The helper reads committed staging rows and writes its own table in one transaction that first removes an
earlier attempt's rows, so a resumed run prepares the same requests again (same event ids).

The request names the agreement its application is accepted on. The helper finds it with the transaction's
own rule (`issuance.domain.agreement.check_agreements`) over the same agreements: the night's new ones and
those still pending, as committed before the transaction began. It records the agreement it chose; the
transaction keeps a request only when its decision accepted that same agreement.
"""

from __future__ import annotations

import itertools
import operator
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from multiprocessing import get_context
from typing import Any, NamedTuple

from issuance.bank_personal import BankSealers
from issuance.crypto import Vault
from issuance.domain.agreement import AgreementStatus, check_agreements
from issuance.domain.model import ApplicationType, Bank
from issuance.gc_policy import use_batch_thresholds
from issuance.store.db import connect, copy_rows
from issuance.store.decisions_repo import CARD_ACCOUNT
from issuance.store.party_keys_repo import load_directory
from pipelines.personalize import (
    FIRST_ATTEMPT,
    Candidate,
    SignedAgreement,
    agreement_of,
    application_shell,
    application_type,
    bank_requests,
)

COLUMNS = (
    "run_id",
    "application_id",
    "agreement_id",
    "request_event_id",
    "request_payload",
    "request_type",
    "request_sealed",
)
PAGE = 10_000
HELPER_NICENESS = 10

# The record the run keeps of a repeated application id is its first (`decisions_repo.repeated_applications`);
# the agreements are those the transaction's agreement join reads (`decisions_repo.CANDIDATES_QUERY`): the
# night's not kept before, once per id, and the pending ones.
_VERIFIED = """
WITH verified AS (
    SELECT DISTINCT ON (application_id) application_id, application_type, bank_code, branch_code, area_code,
           card_number, id_number_enc, name_enc, submitted_at, submitted_utc_offset
    FROM staged_applications
    WHERE run_id = %(run)s AND reasons = '{}'
    ORDER BY application_id, source_topic, source_partition, source_offset
), signed AS (
    (SELECT DISTINCT ON (agreement_id) agreement_id, application_id, bank_code, terms_version,
            document_sha256, signed_at, channel
     FROM staged_agreements s
     WHERE run_id = %(run)s AND NOT EXISTS (SELECT 1 FROM agreements g WHERE g.agreement_id = s.agreement_id)
     ORDER BY agreement_id, source_topic, source_partition, source_offset)
    UNION ALL
    SELECT agreement_id, application_id, bank_code, terms_version, document_sha256, signed_at, channel
    FROM agreements WHERE status = 'PENDING'
)
SELECT v.application_id, v.application_type, v.bank_code, v.branch_code, v.area_code, v.card_number,
       v.id_number_enc, v.name_enc, b.account_number_enc, v.submitted_at, v.submitted_utc_offset,
       g.agreement_id, g.bank_code AS agreement_bank_code, g.terms_version, g.document_sha256, g.signed_at,
       g.channel
FROM verified v
LEFT JOIN signed g ON g.application_id = v.application_id
LEFT JOIN bank_accounts b ON v.application_type = %(activation)s AND b.card_number = v.card_number
    AND b.status = ANY(%(card_account)s)
ORDER BY v.application_id, g.agreement_id
"""


class _Verified(NamedTuple):
    """A verified application of the run, once per agreement that names it (None columns: none does)."""

    application_id: str
    application_type: str
    bank_code: str
    branch_code: str
    area_code: str | None
    card_number: str | None
    id_number_enc: bytes
    name_enc: bytes
    account_number_enc: bytes | None  # the bank's number of the account of the card an activation names
    submitted_at: datetime
    submitted_utc_offset: int
    agreement_id: str | None
    agreement_bank_code: str | None
    terms_version: str | None
    document_sha256: str | None
    signed_at: datetime | None
    channel: str | None


@contextmanager
def personalizing(
    database_url: str,
    vault: Vault,
    banks: Mapping[str, Bank],
    run_id: int,
    business_date: date,
    window_days: int,
    *,
    in_process: bool,
) -> Iterator[Future[int]]:
    """Start preparing the run's verified applications' first requests; the future gives how many.

    `in_process` keeps the helper on a thread (a small night: no process to start)."""
    pool: Executor = (
        ThreadPoolExecutor(1, thread_name_prefix="personalize")
        if in_process
        else ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    )
    with pool:
        yield pool.submit(
            personalize_staged,
            database_url,
            vault,
            dict(banks),
            run_id,
            business_date,
            window_days,
            in_process,
        )


def personalize_staged(
    database_url: str,
    vault: Vault,
    banks: Mapping[str, Bank],
    run_id: int,
    business_date: date,
    window_days: int,
    in_process: bool = True,
) -> int:
    """Prepare the run's verified applications' first bank requests into `staged_personalized`; returns how
    many requests (an application without an agreement tonight gets none).

    A helper process stops between pages once the process that started it is gone (its rows roll back)."""
    parent = os.getppid()
    keep_going: Callable[[], bool] = (lambda: True) if in_process else (lambda: os.getppid() == parent)
    if not in_process:
        # Behind the transaction's own work (its agreement join runs in Python): this one has until the cards.
        os.nice(HELPER_NICENESS)
        use_batch_thresholds()
    requested_at = datetime.now(UTC)
    count = 0
    with (
        connect(database_url, application_name="issuance-personalize") as read,
        connect(database_url, application_name="issuance-personalize") as write,
    ):
        write.execute("DELETE FROM staged_personalized WHERE run_id = %s", (run_id,))
        sealers = BankSealers(load_directory(write))  # one Sealer per bank for the night's requests
        # The staging tables' statistics are the transaction's, not yet committed: this connection sees them
        # as empty, and a nested loop over two "empty" sides of tens of thousands of rows took 38 s at 20,000
        # applications. Hash joins whatever the estimates.
        read.execute("SET enable_nestloop = off")
        with read.cursor(name="verified", binary=True) as cur:
            cur.itersize = PAGE
            cur.execute(
                _VERIFIED,
                {
                    "run": run_id,
                    "activation": ApplicationType.FINANCIAL_ACTIVATION.value,
                    "card_account": CARD_ACCOUNT,
                },
            )
            applications = itertools.groupby(itertools.chain.from_iterable(_pages(cur)), key=_FIRST)
            while page := [
                _candidate(list(rows), banks, business_date, window_days, vault)
                for _id, rows in itertools.islice(applications, PAGE)
            ]:
                if not keep_going():
                    raise SystemExit("the nightly run that started this helper is gone")
                staged = _staged_rows(page, sealers, run_id, requested_at)
                copy_rows(write, "staged_personalized", COLUMNS, staged)
                count += len(staged)
        write.commit()
    return count


_FIRST = operator.attrgetter("application_id")


def _pages(cur: Any) -> Iterator[list[_Verified]]:
    while page := cur.fetchmany(PAGE):
        yield [_Verified._make(row) for row in page]


def _candidate(
    rows: list[_Verified],
    banks: Mapping[str, Bank],
    business_date: date,
    window_days: int,
    vault: Vault,
) -> Candidate:
    """One verified application (its rows: one per agreement that names it), with the agreement the
    transaction's rule accepts, if any. With a single candidate there is nothing to choose (the night accepts
    the application on that one or not at all), so the rule runs only where several agreements compete."""
    first = rows[0]
    signed = [r for r in rows if r.agreement_id is not None]
    accepted = None
    if len(signed) == 1:
        only = signed[0]
        accepted = SignedAgreement(str(only.agreement_id), str(only.terms_version), str(only.document_sha256))
    elif signed:
        agreements = [agreement_of(r) for r in signed]
        shell = application_shell(
            first.application_id,
            first.application_type,
            first.bank_code,
            first.submitted_at,
            int(first.submitted_utc_offset),
        )
        bank = banks.get(first.bank_code) or Bank(first.bank_code, "", "", "")
        outcome = check_agreements(shell, agreements, bank, business_date, window_days)
        if outcome.status == AgreementStatus.ACCEPTED and outcome.agreement is not None:
            chosen = outcome.agreement
            accepted = SignedAgreement(chosen.agreement_id, chosen.terms_version, chosen.document_sha256)
    return Candidate(
        first.application_id,
        application_type(first.application_type),
        first.bank_code,
        first.branch_code,
        first.area_code,
        first.card_number,
        None if first.account_number_enc is None else vault.decrypt(first.account_number_enc),
        vault.decrypt(first.id_number_enc),
        vault.decrypt(first.name_enc),
        FIRST_ATTEMPT,
        accepted,
    )


def _staged_rows(
    candidates: list[Candidate], sealers: BankSealers, run_id: int, requested_at: datetime
) -> list[tuple[Any, ...]]:
    """Requests of the candidates the night may accept: only on an agreement (one without gets none). A
    request's personal part is sealed to its bank, so its row is not sealed at rest again (request_sealed
    false)."""
    ready = [c for c in candidates if c.agreement is not None]
    return [
        (run_id, r.application_id, r.agreement_id, r.event_id, r.payload, r.event_type, False)
        for r in bank_requests(ready, sealers, run_id, requested_at)
    ]

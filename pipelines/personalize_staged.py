"""Personalization of the night's verified applications, beside the final transaction.

The Beam workers verify and stage; their cores are busy. The final transaction then keeps one PostgreSQL
backend busy for most of its length and leaves the other core idle, and personalizing needs nothing it
decides: an application's numbers come from its slot (`pipelines.personalize`). So while the transaction
decides the night, a helper personalizes every staged application that passed verification into
`staged_personalized`: a process of its own for a big night, a thread for a small one. The transaction
waits for it before it writes cards, accounts and requests, and keeps the rows of the applications it accepts
(`decisions_repo.insert_personalized`).

The helper reads committed staging rows and writes its own table in one transaction that first removes an
earlier attempt's rows, so a resumed run personalizes again from the same slots, with the same numbers.

The activation request names the agreement its application is accepted on. The helper finds it with the
transaction's own rule (`issuance.domain.agreement.check_agreements`) over the same agreements: the night's
new ones and those still pending, as committed before the transaction began. It records the agreement it
chose; the transaction keeps a personalization only when its decision accepted that same agreement.
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
from typing import Any

from issuance.crypto import Vault
from issuance.domain.agreement import AgreementStatus, check_agreements
from issuance.domain.model import Agreement, Bank, Channel
from issuance.gc_policy import use_batch_thresholds
from issuance.store.db import connect, copy_rows
from pipelines.personalize import Candidate, SignedAgreement, application_shell, personalize

COLUMNS = (
    "run_id",
    "application_id",
    "new_card_number",
    "card_identification_code",
    "account_index",
    "account_number_enc",
    "agreement_id",
    "request_event_id",
    "request_payload",
)
PAGE = 10_000
HELPER_NICENESS = 10
FIRST_ATTEMPT = 1

# The record the run keeps of a repeated application id is its first (`decisions_repo.repeated_applications`);
# the agreements are those the transaction's agreement join reads (`decisions_repo.CANDIDATES_QUERY`): the
# night's not kept before, once per id, and the pending ones.
_VERIFIED = """
WITH verified AS (
    SELECT DISTINCT ON (application_id) application_id, application_type, bank_code, area_code, card_number,
           id_number_enc, name_enc, slot, submitted_at, submitted_utc_offset
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
SELECT v.application_id, v.application_type, v.bank_code, v.area_code, v.card_number, v.id_number_enc,
       v.name_enc, v.slot, v.submitted_at, v.submitted_utc_offset, g.agreement_id, g.bank_code,
       g.terms_version, g.document_sha256, g.signed_at, g.channel
FROM verified v LEFT JOIN signed g ON g.application_id = v.application_id
ORDER BY v.application_id, g.agreement_id
"""


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
    """Start personalizing the run's verified applications; the future gives how many were personalized.

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
    """Personalize the run's verified applications into `staged_personalized`; returns how many.

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
        with read.cursor(name="verified", binary=True) as cur:
            cur.itersize = PAGE
            cur.execute(_VERIFIED, {"run": run_id})
            applications = itertools.groupby(itertools.chain.from_iterable(_pages(cur)), key=_FIRST)
            while page := [
                _candidate(list(rows), banks, business_date, window_days, vault)
                for _id, rows in itertools.islice(applications, PAGE)
            ]:
                if not keep_going():
                    raise SystemExit("the nightly run that started this helper is gone")
                copy_rows(
                    write,
                    "staged_personalized",
                    COLUMNS,
                    _personalized_rows(page, vault, banks, run_id, requested_at),
                )
                count += len(page)
        write.commit()
    return count


_FIRST = operator.itemgetter(0)


def _pages(cur: Any) -> Iterator[list[tuple[Any, ...]]]:
    while page := cur.fetchmany(PAGE):
        yield page


def _candidate(
    rows: list[tuple[Any, ...]],
    banks: Mapping[str, Bank],
    business_date: date,
    window_days: int,
    vault: Vault,
) -> Candidate:
    """One verified application (its rows: one per agreement that names it), with the agreement the
    transaction's rule accepts, if any. With a single candidate there is nothing to choose (the night accepts
    the application on that one or not at all), so the rule runs only where several agreements compete."""
    (
        application_id,
        application_type,
        bank_code,
        area_code,
        card_number,
        id_enc,
        name_enc,
        slot,
        submitted_at,
        utc_offset,
    ) = rows[0][:10]
    signed = [r for r in rows if r[10] is not None]
    accepted = None
    if len(signed) == 1:
        only = signed[0]
        accepted = SignedAgreement(only[10], only[12], only[13])
    elif signed:
        agreements = [
            Agreement(r[10], application_id, r[11], r[12], r[13], r[14], Channel(r[15])) for r in signed
        ]
        shell = application_shell(application_id, application_type, bank_code, submitted_at, int(utc_offset))
        bank = banks.get(bank_code) or Bank(bank_code, "", "", "")
        outcome = check_agreements(shell, agreements, bank, business_date, window_days)
        if outcome.status == AgreementStatus.ACCEPTED and outcome.agreement is not None:
            chosen = outcome.agreement
            accepted = SignedAgreement(chosen.agreement_id, chosen.terms_version, chosen.document_sha256)
    return Candidate(
        application_id,
        application_type,
        bank_code,
        area_code,
        card_number,
        vault.decrypt(id_enc),
        vault.decrypt(name_enc),
        int(slot),
        FIRST_ATTEMPT,
        accepted,
    )


def _personalized_rows(
    candidates: list[Candidate],
    vault: Vault,
    banks: Mapping[str, Bank],
    run_id: int,
    requested_at: datetime,
) -> list[tuple[Any, ...]]:
    return [
        (
            run_id,
            p.application_id,
            p.new_card_number,
            p.card_identification_code,
            p.account_index,
            p.account_number_enc,
            p.agreement_id,
            p.request_event_id,
            p.request_payload,
        )
        for p in personalize(candidates, banks, vault, run_id, requested_at)
    ]

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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

from issuance.crypto import Vault
from issuance.domain.model import Bank
from issuance.gc_policy import use_batch_thresholds
from issuance.store.db import connect, copy_rows
from pipelines.personalize import Candidate, personalize

COLUMNS = (
    "run_id",
    "application_id",
    "new_card_number",
    "card_identification_code",
    "account_index",
    "account_number_enc",
    "request_event_id",
    "request_payload",
)
PAGE = 10_000
HELPER_NICENESS = 10
FIRST_ATTEMPT = 1

# The record the run keeps of a repeated application id is its first (`decisions_repo.repeated_applications`).
_VERIFIED = """
SELECT DISTINCT ON (application_id) application_id, application_type, bank_code, area_code, card_number,
       id_number_enc, name_enc, slot
FROM staged_applications
WHERE run_id = %s AND reasons = '{}'
ORDER BY application_id, source_topic, source_partition, source_offset
"""


@contextmanager
def personalizing(
    database_url: str, vault: Vault, banks: Mapping[str, Bank], run_id: int, *, in_process: bool
) -> Iterator[Future[int]]:
    """Start personalizing the run's verified applications; the future gives how many were personalized.

    `in_process` keeps the helper on a thread (a small night: no process to start)."""
    pool: Executor = (
        ThreadPoolExecutor(1, thread_name_prefix="personalize")
        if in_process
        else ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    )
    with pool:
        yield pool.submit(personalize_staged, database_url, vault, dict(banks), run_id, in_process)


def personalize_staged(
    database_url: str, vault: Vault, banks: Mapping[str, Bank], run_id: int, in_process: bool = True
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
            cur.execute(_VERIFIED, (run_id,))
            while page := cur.fetchmany(PAGE):
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


def _personalized_rows(
    page: list[tuple[Any, ...]], vault: Vault, banks: Mapping[str, Bank], run_id: int, requested_at: datetime
) -> list[tuple[Any, ...]]:
    candidates = [
        Candidate(
            application_id,
            application_type,
            bank_code,
            area_code,
            card_number,
            vault.decrypt(id_enc),
            vault.decrypt(name_enc),
            int(slot),
            FIRST_ATTEMPT,
        )
        for (
            application_id,
            application_type,
            bank_code,
            area_code,
            card_number,
            id_enc,
            name_enc,
            slot,
        ) in page
    ]
    return [
        (
            run_id,
            p.application_id,
            p.new_card_number,
            p.card_identification_code,
            p.account_index,
            p.account_number_enc,
            p.request_event_id,
            p.request_payload,
        )
        for p in personalize(candidates, banks, vault, run_id, requested_at)
    ]

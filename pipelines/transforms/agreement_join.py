"""Agreement join stage: each application the night examines, decided against the agreements that may be its.

It starts once every chunk is staged (`AfterStaging`, a GroupByKey over the staging stage's summaries and one
start element, so an empty night still examines the applications awaiting from earlier nights). One task then
splits the application ids into ranges of about as many staged applications each (`ListIdRanges`), spread
over the workers by a GroupByKey on their index (`SpreadIdRanges`). Each range is read by a worker with its
own connection (the documented bounded reads of `issuance.store.agreement_join_repo`: the run's staged
applications and agreements, the applications awaiting an agreement and the pending agreements of earlier
nights, and which application and agreement ids are kept already), decided by the pure domain rule
(`issuance.domain.agreement.check_agreements`) and staged into `staged_agreement_decisions`, replacing the
range's earlier rows, so a retried bundle or a re-run never stages a decision twice. Nothing becomes visible
until the final transaction applies the staged decisions (`pipelines.commit`).

Everything is decided here except what only exists inside the final transaction: the duplicates rule
(per person, across ranges) rejects some of these applications there, and those keep that decision.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

import apache_beam as beam
from psycopg import Connection

from issuance.domain.agreement import AgreementStatus, check_agreements
from issuance.domain.lifecycle import ApplicationState
from issuance.domain.model import Bank
from issuance.store.agreement_join_repo import IdRange, candidates_in_range, id_ranges, replace_range
from issuance.store.db import connect
from issuance.store.decisions_repo import AgreementCandidate
from pipelines.personalize import agreement_of, application_shell

_APPLICATION = operator.attrgetter("application_id")
_ACCEPTED = ApplicationState.ACCEPTED.value
_AWAITING = ApplicationState.AWAITING_AGREEMENT.value
_REJECTED = ApplicationState.REJECTED.value
Decision = tuple[str, bool, str, list[str], str | None]  # application id, is new, state, reasons, agreement


def decide(
    rows: Iterable[AgreementCandidate], banks: Mapping[str, Bank], business_date: date, window_days: int
) -> Iterator[Decision]:
    """One decision per application of the (application, agreement) rows, grouped by application id: ACCEPTED
    on the earliest valid agreement, REJECTED with the reasons (invalid agreements, or the window passed),
    else AWAITING_AGREEMENT."""
    for application_id, group in itertools.groupby(rows, key=_APPLICATION):
        members = list(group)
        first = members[0]
        application = application_shell(
            application_id,
            first.application_type,
            first.bank_code,
            first.submitted_at,
            first.submitted_utc_offset,
        )
        agreements = [agreement_of(r) for r in members if r.agreement_id is not None]
        bank = banks.get(application.bank_code) or Bank(application.bank_code, "", "", "")
        outcome = check_agreements(application, agreements, bank, business_date, window_days)
        if outcome.status == AgreementStatus.ACCEPTED:
            assert outcome.agreement is not None
            yield application_id, first.is_new, _ACCEPTED, [], outcome.agreement.agreement_id
        elif outcome.status == AgreementStatus.AWAITING:
            yield application_id, first.is_new, _AWAITING, [], None
        else:
            yield application_id, first.is_new, _REJECTED, [r.value for r in outcome.reasons], None


class ListIdRanges(beam.DoFn):  # type: ignore[misc]
    """(key, staged summaries) -> (index, IdRange), once: the ranges of application ids the join is spread
    over, keyed by their index so that a GroupByKey spreads them (Dask replaces a Reshuffle by an identity,
    which would leave every range in the one task that listed them)."""

    def __init__(self, database_url: str, run_id: int, parts: int) -> None:
        self._database_url, self._run_id, self._parts = database_url, run_id, parts

    def process(self, _staged: Any) -> Iterator[tuple[int, IdRange]]:
        with connect(self._database_url, application_name="issuance-nightly-join") as conn:
            ranges = id_ranges(conn, self._run_id, self._parts)
            conn.commit()
        yield from enumerate(ranges)


class DecideRange(beam.DoFn):  # type: ignore[misc]
    """(index, [IdRange]) -> (low id, decisions staged) per range, once its decisions are committed."""

    def __init__(
        self, database_url: str, run_id: int, banks: Mapping[str, Bank], business_date: date, window_days: int
    ) -> None:
        self._database_url, self._run_id = database_url, run_id
        self._banks, self._business_date, self._window_days = dict(banks), business_date, window_days
        self._conn: Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = connect(self._database_url, application_name="issuance-nightly-join")

    def process(self, keyed: tuple[int, Iterable[IdRange]]) -> Iterator[tuple[str, int]]:
        for ids in keyed[1]:
            yield self._decide(ids)

    def _decide(self, ids: IdRange) -> tuple[str, int]:
        conn = self._conn
        assert conn is not None, "setup() opens the connection"
        rows = [
            (self._run_id, app, is_new, state, reasons, agreement)
            for page in candidates_in_range(conn, self._run_id, ids)
            for app, is_new, state, reasons, agreement in decide(
                page, self._banks, self._business_date, self._window_days
            )
        ]
        conn.commit()
        replace_range(conn, self._run_id, ids, rows)
        return ids[0] or "", len(rows)

    def teardown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _started(_element: Any) -> tuple[int, int]:
    return 0, 0


class JoinAgreements(beam.PTransform):  # type: ignore[misc]
    """PCollection[staged summaries] -> PCollection[(low id, decisions staged)], after the last is staged."""

    def __init__(
        self,
        database_url: str,
        run_id: int,
        parts: int,
        banks: Mapping[str, Bank],
        business_date: date,
        window_days: int,
    ) -> None:
        super().__init__()
        self._ranges = ListIdRanges(database_url, run_id, max(1, parts))
        self._decide = DecideRange(database_url, run_id, banks, business_date, window_days)

    def expand(self, staged: beam.PCollection) -> beam.PCollection:
        start = staged.pipeline | "JoinStart" >> beam.Create([(0, 0)])  # the join runs on an empty night too
        done = staged | "StagedChunk" >> beam.Map(_started)
        return (
            (start, done)
            | "StagingDone" >> beam.Flatten()  # (0, 0) per staged chunk and one to start
            | "AfterStaging" >> beam.GroupByKey()  # one element, once every chunk is staged
            | "ListIdRanges" >> beam.ParDo(self._ranges)  # (index, IdRange)
            | "SpreadIdRanges" >> beam.GroupByKey()  # (index, [IdRange]), spread over workers
            | "DecideAgreements" >> beam.ParDo(self._decide)  # (low id, decisions staged)
        )

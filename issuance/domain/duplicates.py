"""Which of one person's verified applications goes on (the others are DUPLICATE_APPLICATION), and what makes
two records under one application id the same application."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from issuance.domain.model import Application


@dataclass(frozen=True, slots=True)
class DuplicateResolution:
    """`kept` goes on (None when an earlier run's open application does); `duplicates` are rejected."""

    kept: Application | None
    duplicates: tuple[Application, ...]


def content_parts(application: Application) -> tuple[str, ...]:
    """Every field of the application as the contract reads it (ID numbers with an upper-case X, the
    submission time with its offset), in a fixed order: two records are the same application sent again when
    these are equal. The nightly run keeps a keyed digest of them, never the parts."""
    applicant = application.applicant
    return (
        application.application_id,
        application.application_type.value,
        application.branch_code,
        application.bank_code,
        application.channel.value,
        applicant.id_number,
        applicant.name,
        applicant.phone,
        application.card_number or "",
        application.guardian_id_number or "",
        ",".join(material.value for material in application.materials),
        application.submitted_at.isoformat(),
    )


def precedence(application: Application) -> tuple[object, ...]:
    """Sort key: earliest submitted_at (as an instant), then smallest application_id."""
    return (application.submitted_at, application.application_id)


def resolve_duplicates(candidates: Iterable[Application], open_elsewhere: bool) -> DuplicateResolution:
    """Resolve one person's applications of this run that passed verification.

    `open_elsewhere` says the person already has an open application from an earlier run: that one goes on and
    every candidate is a duplicate. Otherwise the first by `precedence` goes on. Duplicates come out in
    `precedence` order.
    """
    ordered = sorted(candidates, key=precedence)
    if open_elsewhere or not ordered:
        return DuplicateResolution(None, tuple(ordered))
    return DuplicateResolution(ordered[0], tuple(ordered[1:]))

"""Sending published events again, after the broker lost them (a restart without its data, a topic recreated).

The chosen outbox rows are re-opened and their audit line written in one transaction; then the relay
(`publish_outbox`) sends every unpublished event with its original event id. A crash in between leaves the
rows unpublished: the next relay (this command again, `issuance consume`, or the next night) sends them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from issuance.crypto import Vault
from issuance.errors import InputError
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import ensure_topics
from issuance.services.endpoints import Endpoints
from issuance.settings import Settings
from issuance.store import outbox_repo
from issuance.store.audit import SERVICE_NIGHTLY, record_action
from issuance.store.outbox_repo import Chosen, Selection
from issuance.store.reference_repo import load_catalog
from issuance.store.run_repo import Conn

ACTION = "outbox.republish"
NIGHTLY_ACTOR = SERVICE_NIGHTLY


@dataclass(frozen=True, slots=True)
class Republished:
    """What a re-publish chose, re-opened and sent."""

    selection: Selection
    chosen: Chosen
    applied: bool
    sent: int  # every event the relay sent (the re-opened ones and any that were pending)

    def as_dict(self) -> dict[str, Any]:
        return {
            "selection": self.selection.as_dict(),
            "events": self.chosen.events,
            "by_topic": outbox_repo.chosen_counts(self.chosen.counts),
            "applied": self.applied,
            "sent": self.sent,
        }


def republish(
    conn: Conn,
    settings: Settings,
    endpoints: Endpoints,
    vault: Vault,
    selection: Selection,
    *,
    actor: str,
    apply: bool,
) -> Republished:
    """Count the events `selection` chooses; with `apply`, re-open them (audited) and send them again."""
    if selection.empty:
        raise InputError(
            "say which events to send again: --run, --topic, --published-since/--published-until"
            " or --unanswered-after-hours"
        )
    if not apply:
        chosen = outbox_repo.count_chosen(conn, selection)
        conn.commit()
        return Republished(selection, chosen, False, 0)
    with conn.transaction():
        chosen = outbox_repo.reopen_chosen(conn, selection)
        if chosen.events:
            record_action(
                conn,
                actor=actor,
                action=ACTION,
                entity="outbox",
                entity_id=_entity_id(selection),
                detail={
                    "selection": selection.as_dict(),
                    "events": chosen.events,
                    "by_topic": outbox_repo.chosen_counts(chosen.counts),
                },
            )
    conn.commit()
    sent = send_pending(conn, settings, endpoints, vault) if outbox_repo.pending(conn) else 0
    conn.commit()
    return Republished(selection, chosen, True, sent)


def resend_unanswered(conn: Conn, settings: Settings, endpoints: Endpoints, vault: Vault) -> int:
    """The night's resend: bank requests (account openings and activations) still unanswered
    `resend_unanswered_after_hours` after they were published, with their original event ids. How many were
    sent again."""
    selection = Selection(unanswered_after_hours=settings.resend_unanswered_after_hours)
    done = republish(conn, settings, endpoints, vault, selection, actor=NIGHTLY_ACTOR, apply=True)
    return done.chosen.events


def send_pending(conn: Conn, settings: Settings, endpoints: Endpoints, vault: Vault) -> int:
    """Send every unpublished event, after making sure its topic exists (a broker that lost its state has
    none of them)."""
    catalog = load_catalog(conn)
    conn.commit()
    ensure_topics(endpoints.kafka, settings, list(catalog.banks))
    return publish_outbox(
        conn,
        endpoints.kafka,
        vault,
        endpoints.database_url,
        processes=settings.relay_processes or os.cpu_count() or 1,
        trust=RelayTrust.load(conn, settings),
    )


def _entity_id(selection: Selection) -> str:
    """A short name of the selection for the audit log's entity id (the detail holds all of it)."""
    parts = []
    if selection.run_id is not None:
        parts.append(f"run:{selection.run_id}")
    if selection.topics:
        parts.append("topics:" + ",".join(selection.topics))
    if selection.published_since or selection.published_until:
        parts.append("published-window")
    if selection.unanswered_after_hours is not None:
        parts.append(f"unanswered:{selection.unanswered_after_hours:g}h")
    return " ".join(parts)

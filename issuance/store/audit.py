"""The audit log (Article 6 of the Measures): one writer for every operator action and automated change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb


def record_action(
    conn: Connection[Any],
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Append one line to the audit log, in the caller's transaction (it commits with the change it records).

    `detail` must never hold personal data in clear: ids, counts, codes and masked values only."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, detail) VALUES (%s, %s, %s, %s, %s)",
        (actor, action, entity, entity_id, Jsonb(dict(detail or {}))),
    )

"""`issuance dead-letters list|show|export|redrive|handle`: the operator's tools for records set aside.

A dead letter is OPEN until it is re-driven (its record published again to its source topic, repaired or as it
was, where the next night reads it like any other record, under the same business keys) or handled (closed
with a reason). Reading a payload (`show`, masked; `export`, whole) and every change are audited under the
operator's identity. Nothing here prints personal data in clear: `export` writes it to an owner-only file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from cli.common import (
    OperatorOption,
    command,
    console,
    load_settings,
    operator_identity,
    print_json,
)
from issuance.crypto import Vault
from issuance.dead_letter_events import decode_headers
from issuance.domain.contract import parse_agreement, parse_application
from issuance.domain.dead_letter_payload import PayloadForm, PayloadView, RecordKind, inspect_payload
from issuance.domain.model import DeadLetterReason
from issuance.errors import InputError, IssuanceError, SchemaViolation
from issuance.kafka.topics import Topics
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store import dead_letters_repo as repo
from issuance.store.audit import record_action
from issuance.store.dashboard_queries import mask_detail
from issuance.store.db import connect
from issuance.store.roles import OPERATOR, in_role
from issuance.trust.keystore import bureau_keys
from issuance.trust.sealing import Unsealer
from producers.client import Acknowledged, BranchClient, Prepared, Preparer
from producers.submission import Kind, LineRejected, prepare_line

dead_letters_app = typer.Typer(
    help="Dead letters: list, show (masked), export for repair, re-drive, or close them as handled."
)

ENTITY = "dead_letter"
MAX_PAGE = 1000
MAX_HANDLED_REASON = 500
_LONG_DIGITS = re.compile(r"\d{6,}")  # could be part of an ID, card or account number

IdArg = Annotated[
    int, typer.Argument(metavar="ID", help="The dead letter's id (see `dead-letters list`).", min=1)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    """Add the `dead-letters` command group."""
    app.add_typer(dead_letters_app, name="dead-letters", no_args_is_help=True)


# Shared ---------------------------------------------------------------------------------------------------


def _database_url(settings: Settings) -> str:
    return in_role(resolve(settings), OPERATOR).database_url


def _found(conn: repo.Conn, dead_letter_id: int, *, for_update: bool = False) -> repo.DeadLetterRow:
    row = repo.get(conn, dead_letter_id, for_update=for_update)
    if row is None:
        raise InputError(f"no dead letter {dead_letter_id}: check the id (issuance dead-letters list)")
    return row


def record_kind(topics: Topics, source_topic: str) -> RecordKind | None:
    """What the dead letter's source topic carries, when it is one of this system's input topics."""
    return {topics.applications: RecordKind.APPLICATION, topics.agreements: RecordKind.AGREEMENT}.get(
        source_topic
    )


def _payload(
    conn: repo.Conn, vault: Vault, row: repo.DeadLetterRow, topics: Topics, unsealer: Unsealer | None = None
) -> tuple[bytes, PayloadView]:
    data = vault.decrypt_bytes(repo.payload_envelope(conn, row.id))
    return data, inspect_payload(data, record_kind(topics, row.source_topic), unsealer)


def row_json(row: repo.DeadLetterRow) -> dict[str, Any]:
    """A dead letter's metadata for a screen (the detail with long digit runs hidden)."""
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "run_id": row.run_id,
        "source_topic": row.source_topic,
        "source_partition": row.source_partition,
        "source_offset": row.source_offset,
        "stage": row.stage,
        "reason": row.reason,
        "detail": mask_detail(row.detail),
        "branch_code": row.branch_code,
        "status": row.status,
        "closed_by": row.closed_by,
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "handled_reason": row.handled_reason,
    }


def _source(row: repo.DeadLetterRow) -> str:
    return f"{row.source_topic}/{row.source_partition}@{row.source_offset}"


# list -----------------------------------------------------------------------------------------------------


def _reason(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in DeadLetterReason.__members__:
        raise InputError(f"--reason {value!r}: one of {', '.join(DeadLetterReason)}")
    return code


def _status(value: str | None) -> repo.DeadLetterStatus | None:
    if value is None:
        return None
    try:
        return repo.DeadLetterStatus(value.strip().upper())
    except ValueError as exc:
        raise InputError(f"--status {value!r}: one of open, redriven, handled") from exc


def _topic(topics: Topics, value: str | None) -> str | None:
    """A topic filter: `applications` and `agreements` name this system's input topics."""
    if value is None:
        return None
    return {"applications": topics.applications, "agreements": topics.agreements}.get(value, value)


@dead_letters_app.command("list")
@command
def list_command(
    ctx: typer.Context,
    run: Annotated[int | None, typer.Option("--run", help="Only those of this nightly run.")] = None,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="Only those read from this topic (applications, agreements)."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only this reason code.")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Only this branch code.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only open, redriven or handled ones.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.", min=1)] = 50,
    before: Annotated[
        int | None, typer.Option("--before", help="Only those older than this id (the next page).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters, newest first, without their content (exit 2 on a bad filter)."""
    settings = load_settings(ctx)
    filters = repo.Filters(
        run_id=run,
        topic=_topic(Topics(settings), topic),
        reason=_reason(reason),
        branch_code=branch,
        status=_status(status),
    )
    size = min(limit, MAX_PAGE)
    with connect(_database_url(settings), autocommit=True, application_name="issuance-dead-letters") as conn:
        rows = repo.page(conn, filters, size + 1, before)
    more = len(rows) > size
    rows = rows[:size]
    next_before = rows[-1].id if more else None
    if as_json:
        print_json({"dead_letters": [row_json(r) for r in rows], "next_before": next_before})
        return
    if not rows:
        typer.echo("no dead letters match")
        return
    for row in rows:
        typer.echo(
            f"{row.id:>8}  {row.created_at:%Y-%m-%d %H:%M}  run {row.run_id or '-':<5} {row.status:<9}"
            f" {row.reason:<22} {row.branch_code or '-':<10} {_source(row)}  {mask_detail(row.detail)}"
        )
    if next_before is not None:
        typer.echo(f"more: add --before {next_before}")


# show -----------------------------------------------------------------------------------------------------


@dead_letters_app.command("show")
@command
def show_command(
    ctx: typer.Context, dead_letter_id: IdArg, operator: OperatorOption, as_json: JsonOpt = False
) -> None:
    """Show a dead letter and its content decoded as far as it goes, personal fields masked (audited)."""
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    vault, topics = Vault.from_settings(settings), Topics(settings)
    with connect(_database_url(settings), application_name="issuance-dead-letters") as conn:
        row = _found(conn, dead_letter_id)
        _, view = _payload(conn, vault, row, topics, Unsealer([bureau_keys(settings)]))
        redrives = repo.redrives(conn, dead_letter_id)
        record_action(conn, actor=actor, action="dead_letter.show", entity=ENTITY, entity_id=str(row.id))
        conn.commit()
    document = row_json(row) | {
        "payload": view.masked(),
        "redrives": [_redrive_json(r) for r in redrives],
    }
    if as_json:
        print_json(document)
    else:
        _print_show(document)


def _redrive_json(redrive: repo.RedriveRow) -> dict[str, Any]:
    return {
        "at": redrive.at.isoformat(),
        "operator": redrive.operator,
        "repaired": redrive.repaired,
        "record_id": redrive.record_id,
        "topic": redrive.topic,
        "partition": redrive.topic_partition,
        "offset": redrive.topic_offset,
    }


def _print_show(d: dict[str, Any]) -> None:
    typer.echo(
        f"dead letter {d['id']}  {d['status']}  {d['reason']}  stage {d['stage']}  run {d['run_id'] or '-'}"
    )
    typer.echo(
        f"  source     {d['source_topic']}/{d['source_partition']}@{d['source_offset']}"
        f"  branch {d['branch_code'] or '-'}  received {d['created_at'][:19]}"
    )
    typer.echo(f"  detail     {d['detail']}")
    if d["closed_by"]:
        why = f"  ({d['handled_reason']})" if d["handled_reason"] else ""
        typer.echo(f"  closed     {d['closed_at'][:19]} by {d['closed_by']}{why}")
    p = d["payload"]
    schema = f"  {p['record_name']} v{p['version']}" if p["record_name"] else ""
    typer.echo(f"  payload    {p['size']} bytes  {p['form']}{schema}  sha256 {p['sha256']}")
    if p["error"]:
        typer.echo(f"  decode     {p['error']}")
    for problem in p["problems"]:
        typer.echo(f"  problem    {problem['field']}: {problem['problem']}")
    if p["hex_excerpt"]:
        typer.echo(f"  first bytes {p['hex_excerpt']}")
    if p["record"] is not None:
        typer.echo("  record (personal fields masked)")
        for line in json.dumps(p["record"], indent=2, ensure_ascii=False).splitlines():
            typer.echo(f"    {line}")
    for r in d["redrives"]:
        how = "repaired" if r["repaired"] else "original"
        typer.echo(
            f"  re-driven  {r['at'][:19]} by {r['operator']} ({how})"
            f"  -> {r['topic']}/{r['partition']}@{r['offset']}"
        )


# export ---------------------------------------------------------------------------------------------------


def export_bytes(data: bytes, view: PayloadView) -> tuple[str, bytes]:
    """What `export` writes: the JSON form of the record when the bytes decode as Avro, else the bytes."""
    if view.form is PayloadForm.AVRO and view.record is not None:
        return "json", (json.dumps(view.record, indent=2, ensure_ascii=False) + "\n").encode()
    return "raw", data


def write_owner_only(path: Path, content: bytes) -> None:
    """Create `path` readable and writable by its owner only (0600); never overwrite a file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InputError(f"--out {path}: the file exists; give a new file (export never overwrites)") from exc
    except OSError as exc:
        raise InputError(f"--out {path}: cannot create it ({exc.strerror or exc})") from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "wb") as out:
            out.write(content)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@dead_letters_app.command("export")
@command
def export_command(
    ctx: typer.Context,
    dead_letter_id: IdArg,
    out: Annotated[Path, typer.Option("--out", help="New file to write (mode 0600).", show_default=False)],
    operator: OperatorOption,
) -> None:
    """Write a dead letter's record to a new 0600 file for repair: JSON if it decodes, else raw (audited)."""
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    vault, topics = Vault.from_settings(settings), Topics(settings)
    with connect(_database_url(settings), application_name="issuance-dead-letters") as conn:
        row = _found(conn, dead_letter_id)
        data, view = _payload(conn, vault, row, topics, Unsealer([bureau_keys(settings)]))
        form, content = export_bytes(data, view)
        record_action(
            conn,
            actor=actor,
            action="dead_letter.export",
            entity=ENTITY,
            entity_id=str(row.id),
            detail={"form": form, "out": str(out.resolve()), "payload_sha256": view.sha256},
        )
        write_owner_only(out, content)
        try:
            conn.commit()
        except BaseException:
            out.unlink(missing_ok=True)  # no audit row, no file
            raise
    what = (
        "the record as JSON" if form == "json" else f"the original {len(content)} bytes (they do not decode)"
    )
    console.print(
        f"dead letter {row.id}: wrote {what} to {out} "
        "(mode 0600; it holds personal data: delete it after use)"
    )


# redrive --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redrive:
    """What a re-drive publishes."""

    prepared: Prepared
    repaired: bool


def _record_id(kind: RecordKind) -> str:
    return "application_id" if kind is RecordKind.APPLICATION else "agreement_id"


def _problems_text(problems: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    return "; ".join(f"{field}: {problem}" for field, problem in problems)


def prepare_redrive(
    preparer: Preparer,
    kind: RecordKind,
    original: bytes,
    repaired: bytes | None,
    headers: tuple[tuple[str, bytes], ...] = (),
    unsealer: Unsealer | None = None,
) -> Redrive:
    """The record to publish, validated as `issuance submit` validates a line; InputError says why not.

    Without a repaired file, the original bytes are published as they are, with the headers they came with
    (their sender's channel headers and MAC cover exactly these bytes and key: the re-driven record is still
    authenticated by the branch or bank that sent it), once they decode and meet the contract (a cause fixed
    elsewhere, e.g. a schema now known; an application's personal fields opened with `unsealer`, the
    bureau's keys). An original kept without headers is sealed and signed afresh by the party it speaks for,
    where this keystore holds that party's keys. A repaired record is new content: it goes as `issuance
    submit` sends a record. It keeps the business key of the original when the original's key could be
    read."""
    view = inspect_payload(original, kind, unsealer)
    if repaired is None:
        if not view.valid:
            why = view.error or _problems_text(view.problems)
            raise InputError(
                f"the original record still fails ({why}): "
                "export it, repair the file and re-drive with --file"
            )
        assert view.record is not None
        if headers:
            key_field = _record_id(kind)
            topic = (
                preparer.topics.applications if kind is RecordKind.APPLICATION else preparer.topics.agreements
            )
            kept = Prepared(
                topic,
                str(view.record["application_id"]).encode(),
                original,
                str(view.record[key_field]),
                headers=list(headers),
            )
            return Redrive(kept, repaired=False)
        return Redrive(_prepare(preparer, kind, view.record), repaired=False)
    line_kind = Kind.APPLICATIONS if kind is RecordKind.APPLICATION else Kind.AGREEMENTS
    try:
        prepared = prepare_line(preparer, line_kind, repaired)
    except LineRejected as exc:
        raise InputError(
            f"the repaired record still fails ({_problems_text(exc.problems)}): nothing published"
        ) from exc
    key_field = _record_id(kind)
    original_id = (view.record or {}).get(key_field)
    key_broken = any(field == key_field for field, _ in view.problems)
    if isinstance(original_id, str) and not key_broken and original_id != prepared.record_id:
        raise InputError(
            f"the repaired record's {key_field} differs from the original's ({original_id}): keep it, "
            "so that the night sees the same business key; nothing published"
        )
    return Redrive(prepared, repaired=True)


def _prepare(preparer: Preparer, kind: RecordKind, record: dict[str, Any]) -> Prepared:
    try:
        if kind is RecordKind.APPLICATION:
            parse_application(record)
            return preparer.prepare_application(record)
        parse_agreement(record)
        return preparer.prepare_agreement(record)
    except SchemaViolation as exc:  # pragma: no cover - view.valid checked the same contract
        raise InputError(f"the original record fails the contract ({exc})") from exc


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"--file {path}: cannot read it ({exc.strerror or exc})") from exc


def _refuse_closed(row: repo.DeadLetterRow, again: bool) -> None:
    if again or row.status == repo.DeadLetterStatus.OPEN:
        return
    when = f"{row.closed_at:%Y-%m-%d %H:%M} by {row.closed_by}" if row.closed_at else ""
    done = "re-driven" if row.status == repo.DeadLetterStatus.REDRIVEN else "handled (closed)"
    raise InputError(
        f"dead letter {row.id} was already {done} {when}: nothing published; add --again to publish it once "
        "more (the night decides a repeated record only once)"
    )


@dead_letters_app.command("redrive")
@command
def redrive_command(
    ctx: typer.Context,
    dead_letter_id: IdArg,
    operator: OperatorOption,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="The repaired record (JSON, as `export` wrote it); else the original bytes."
        ),
    ] = None,
    again: Annotated[
        bool, typer.Option("--again", help="Re-drive a dead letter already re-driven or handled.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the broker's acknowledgement.", min=1)
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Publish a dead letter's record, repaired or as it was, to its source topic again (audited)."""
    actor = operator_identity(operator)
    repaired = _read_file(file) if file is not None else None
    settings = load_settings(ctx)
    vault, topics = Vault.from_settings(settings), Topics(settings)
    with (
        BranchClient.from_settings(
            settings, delivery_timeout_s=timeout, client_id="issuance-redrive"
        ) as client,
        connect(_database_url(settings), application_name="issuance-dead-letters") as conn,
    ):
        row = _found(conn, dead_letter_id, for_update=True)  # one re-drive at a time
        _refuse_closed(row, again)
        kind = record_kind(topics, row.source_topic)
        if kind is None:
            raise InputError(
                f"dead letter {row.id} came from {row.source_topic}, not this system's applications or "
                "agreements topic (check ISSUANCE_TOPIC_PREFIX)"
            )
        original = vault.decrypt_bytes(repo.payload_envelope(conn, row.id))
        kept = repo.headers_envelope(conn, row.id)
        headers = decode_headers(vault.decrypt_bytes(kept)) if kept is not None else ()
        unsealer = Unsealer([bureau_keys(settings)])
        redrive = prepare_redrive(client.preparer, kind, original, repaired, headers, unsealer)
        client.require_topics(redrive.prepared.topic)
        ack: Acknowledged = client.send(redrive.prepared).result(timeout=timeout + 5)
        try:
            done = repo.record_redrive(
                conn,
                row.id,
                operator=actor,
                repaired=redrive.repaired,
                record_id=redrive.prepared.record_id,
                topic=ack.topic,
                partition=ack.partition,
                offset=ack.offset,
            )
            record_action(
                conn,
                actor=actor,
                action="dead_letter.redrive",
                entity=ENTITY,
                entity_id=str(row.id),
                detail=_redrive_json(done) | {"again": row.status != repo.DeadLetterStatus.OPEN},
            )
            conn.commit()
        except psycopg.Error as exc:
            raise IssuanceError(
                f"dead letter {row.id}: the record was published to {ack.topic}/{ack.partition}@{ack.offset}"
                f" but PostgreSQL failed before recording the re-drive ({type(exc).__name__}): when it is"
                " back, re-drive it again (the night decides the repeated record once)"
            ) from exc
    if as_json:
        print_json({"id": row.id, "status": repo.DeadLetterStatus.REDRIVEN.value} | _redrive_json(done))
        return
    how = "the repaired record" if redrive.repaired else "the original record"
    console.print(
        f"dead letter {row.id}: published {how} ({_record_id(kind)} {done.record_id}) to "
        f"{ack.topic}/{ack.partition}@{ack.offset}; the next night reads it"
    )


# handle ---------------------------------------------------------------------------------------------------


def handled_reason(text: str) -> str:
    """An operator's reason for closing a dead letter: 1..500 printable characters, no long digit runs."""
    reason = " ".join(text.split())
    if not reason or len(reason) > MAX_HANDLED_REASON or not reason.isprintable():
        raise InputError(f"--reason: say why it is closed (1 to {MAX_HANDLED_REASON} printable characters)")
    if _LONG_DIGITS.search(reason):
        raise InputError(
            "--reason: no ID, card or account numbers (6 or more digits in a row); name the case instead"
        )
    return reason


@dead_letters_app.command("handle")
@command
def handle_command(
    ctx: typer.Context,
    dead_letter_id: IdArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is closed without a re-drive.", show_default=False)
    ],
    operator: OperatorOption,
) -> None:
    """Close an open dead letter without re-driving it, with a reason (audited; exit 2 if not open)."""
    actor = operator_identity(operator)
    why = handled_reason(reason)
    settings = load_settings(ctx)
    with connect(_database_url(settings), application_name="issuance-dead-letters") as conn:
        row = _found(conn, dead_letter_id, for_update=True)
        if row.status != repo.DeadLetterStatus.OPEN:
            raise InputError(
                f"dead letter {row.id} is {row.status.lower()} already "
                f"(closed {row.closed_at:%Y-%m-%d %H:%M} by {row.closed_by}): nothing changed"
            )
        repo.mark_handled(conn, row.id, operator=actor, reason=why)
        record_action(
            conn,
            actor=actor,
            action="dead_letter.handle",
            entity=ENTITY,
            entity_id=str(row.id),
            detail={"reason": why},
        )
        conn.commit()
    console.print(f"dead letter {row.id}: handled (closed without re-drive) by {actor}")

"""Avro single-object encoding of the contract records: the wire format of every topic.

A message is 0xC3 0x01, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's parsing
canonical form, then the Avro binary body. We always write the newest version of a record and read every known
version into the newest one. Errors never quote message content: it may hold personal data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from issuance.codec.registry import MAGIC, NAMESPACE, Registry, SchemaVersion, default_registry
from issuance.errors import DecodeError, MalformedMessage, SchemaViolation, UnknownSchema

HEADER_SIZE = len(MAGIC) + 8

# What fastavro raises on bytes that are not a valid body (truncated varints and strings, enum or union
# indexes out of range, invalid UTF-8, absurd lengths).
_BODY_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    ValueError,  # includes UnicodeDecodeError
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    struct.error,
)
# What fastavro's writer raises on a record that does not fit the schema.
_WRITE_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    OverflowError,
    struct.error,
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded message: the record resolved to the newest version of its schema."""

    record_name: str
    version: int  # the writer's version
    record: dict[str, Any]
    fingerprint: bytes  # the writer's fingerprint, as on the wire


def registry() -> Registry:
    """The process-wide registry (loaded on first use)."""
    return default_registry()


def _schema(record_name: str, version: int | None = None) -> SchemaVersion:
    versions = default_registry().versions.get(record_name)
    if not versions:
        raise UnknownSchema(f"no schema for record {record_name!r}")
    if version is None:
        return versions[-1]
    if not 1 <= version <= len(versions):
        raise UnknownSchema(f"no schema for record {record_name!r} version {version}")
    return versions[version - 1]


def encode(record_name: str, record: Mapping[str, Any], *, version: int | None = None) -> bytes:
    """Encode with the newest version of the record's schema (or `version`, for tests and replays).

    SchemaViolation names the fields that do not fit, never their values.
    """
    return _encode(_schema(record_name, version), record)


def encode_many(record_name: str, records: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Encode many records of one kind, looking the schema up once."""
    schema = _schema(record_name)
    return [_encode(schema, record) for record in records]


def _encode(schema: SchemaVersion, record: Mapping[str, Any]) -> bytes:
    buffer = BytesIO()
    buffer.write(schema.header)
    try:
        schemaless_writer(buffer, schema.parsed, record)
    except _WRITE_ERRORS as exc:
        raise SchemaViolation(
            f"{schema.name} record does not fit the schema", _invalid_fields(schema, record)
        ) from exc
    return buffer.getvalue()


def _invalid_fields(schema: SchemaVersion, record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Names (never values) of the fields fastavro's validator rejects; only called on the error path."""
    try:
        validate(record, schema.parsed, raise_errors=True)
    except ValidationError as exc:
        fields = sorted({_field_path(error.field, schema.name) for error in exc.errors})
        return [(field, "does not match the schema type") for field in fields]
    except _WRITE_ERRORS:
        pass
    return [(schema.name, "does not match the schema")]


def _field_path(path: str | None, record_name: str) -> str:
    # fastavro reports "cn.ssc.issuance.ApplicationSubmitted.applicant.id_number"-like paths.
    if not path:
        return record_name
    full = f"{NAMESPACE}.{record_name}."
    return path[len(full) :] if path.startswith(full) else path


def decode(data: bytes, expected: str | None = None, *, as_written: bool = False) -> Decoded:
    """Decode one message, resolved to the newest version of its record (`as_written`: in its writer's own
    version, for a tool that shows an older record whole, e.g. a field a later version removed).

    Raises MalformedMessage (not a message), UnknownSchema (unknown writer fingerprint) or SchemaViolation (a
    different record than `expected`, or a writer version the newest reader cannot resolve).
    """
    if len(data) < HEADER_SIZE:
        raise MalformedMessage(f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    if data[:2] != MAGIC:
        raise MalformedMessage("message does not start with the Avro single-object marker C3 01")
    fingerprint = bytes(data[2:HEADER_SIZE])
    registry_ = default_registry()
    writer = registry_.by_fingerprint.get(fingerprint)
    if writer is None:
        raise UnknownSchema(f"unknown writer schema fingerprint {fingerprint.hex()}")
    if expected is not None and writer.name != expected:
        if expected not in registry_.versions:
            raise UnknownSchema(f"no schema for record {expected!r}")
        raise SchemaViolation(
            f"expected a {expected} message, got {writer.name} v{writer.version}", [("$record", "unexpected")]
        )
    reader = registry_.versions[writer.name][-1]
    buffer = BytesIO(data)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(
            buffer, writer.parsed, None if reader is writer or as_written else reader.parsed
        )
    except SchemaResolutionError as exc:
        raise SchemaViolation(
            f"{writer.name} v{writer.version} cannot be read as v{reader.version}",
            [("$record", "not resolvable to the newest schema")],
        ) from exc
    except _BODY_ERRORS as exc:
        raise MalformedMessage(
            f"{writer.name} v{writer.version} body is not decodable ({type(exc).__name__})"
        ) from exc
    if buffer.tell() != len(data):
        raise MalformedMessage(
            f"{writer.name} v{writer.version} body has {len(data) - buffer.tell()} trailing bytes"
        )
    if not isinstance(record, dict):  # pragma: no cover - our schemas are all records
        raise MalformedMessage(f"{writer.name} body is not a record")
    return Decoded(writer.name, writer.version, record, fingerprint)


def decode_many(messages: Iterable[bytes], expected: str | None = None) -> Iterator[Decoded | DecodeError]:
    """Decode a stream of messages; bad messages come out as their error instead of stopping the stream."""
    for message in messages:
        try:
            yield decode(message, expected)
        except DecodeError as exc:
            yield exc

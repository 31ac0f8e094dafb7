"""MessageDeadLettered: every dead-letter reason is a symbol of the newest schema, and an older reader reads a
newer reason as its default."""

from __future__ import annotations

import io
import json
from pathlib import Path

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from issuance.codec.avro import registry
from issuance.domain.model import DeadLetterReason
from tests.avro_samples import SAMPLES

SCHEMAS = Path(__file__).parents[2] / "schemas"


def _reason_symbols(schema: dict[str, object]) -> list[str]:
    (field,) = [f for f in schema["fields"] if f["name"] == "reason"]  # type: ignore[attr-defined]
    return list(field["type"]["symbols"])


def test_every_reason_is_a_symbol_of_the_newest_schema() -> None:
    newest = registry().latest("MessageDeadLettered")
    assert newest.version == 4
    assert set(_reason_symbols(newest.parsed)) == {reason.value for reason in DeadLetterReason}


def test_a_v2_reader_reads_a_transition_not_allowed_as_its_default() -> None:
    v2 = parse_schema(json.loads((SCHEMAS / "MessageDeadLettered.v2.avsc").read_text()))
    v3 = parse_schema(json.loads((SCHEMAS / "MessageDeadLettered.v3.avsc").read_text()))
    buffer = io.BytesIO()
    schemaless_writer(buffer, v3, SAMPLES[("MessageDeadLettered", 3)])
    buffer.seek(0)
    record = schemaless_reader(buffer, v3, v2)
    assert isinstance(record, dict)
    assert record["reason"] == "UNPROCESSABLE_RECORD"


def test_a_v3_reader_reads_a_trust_reason_as_its_default() -> None:
    v3 = parse_schema(json.loads((SCHEMAS / "MessageDeadLettered.v3.avsc").read_text()))
    v4 = parse_schema(json.loads((SCHEMAS / "MessageDeadLettered.v4.avsc").read_text()))
    buffer = io.BytesIO()
    schemaless_writer(buffer, v4, SAMPLES[("MessageDeadLettered", 4)])
    buffer.seek(0)
    record = schemaless_reader(buffer, v4, v3)
    assert isinstance(record, dict)
    assert record["reason"] == "UNPROCESSABLE_RECORD"

"""Schema evolution: every newer version of a record reads data written by every older one."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer

from issuance.codec.avro import decode, encode, registry
from issuance.codec.registry import NAMESPACE, SchemaVersion, default_registry
from tests.avro_samples import SAMPLES

PAIRS = [
    (old, new)
    for name in registry().names
    for old, new in itertools.combinations(registry().versions[name], 2)
]


def _fields(schema: SchemaVersion) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in schema.parsed["fields"]}


def test_there_is_at_least_one_evolved_record() -> None:
    assert ("ApplicationSubmitted", 1, 2) in [(old.name, old.version, new.version) for old, new in PAIRS]


@pytest.mark.parametrize(
    ("old", "new"), PAIRS, ids=[f"{o.name}.v{o.version}->v{n.version}" for o, n in PAIRS]
)
def test_newer_version_reads_older_data(old: SchemaVersion, new: SchemaVersion) -> None:
    buffer = io.BytesIO()
    schemaless_writer(buffer, old.parsed, SAMPLES[(old.name, old.version)])
    buffer.seek(0)

    record = schemaless_reader(buffer, old.parsed, new.parsed)

    assert isinstance(record, dict)
    for name, field in _fields(new).items():
        expected = SAMPLES[(old.name, old.version)].get(name, field.get("default"))
        assert record[name] == expected, name


@pytest.mark.parametrize(
    ("old", "new"), PAIRS, ids=[f"{o.name}.v{o.version}->v{n.version}" for o, n in PAIRS]
)
def test_fields_added_later_have_defaults(old: SchemaVersion, new: SchemaVersion) -> None:
    added = _fields(new).keys() - _fields(old).keys()
    assert all("default" in _fields(new)[name] for name in added)


def test_every_older_version_decodes_through_the_codec_into_the_newest() -> None:
    for name in registry().names:
        newest = registry().latest(name)
        for schema in registry().versions[name]:
            data = encode(name, SAMPLES[(name, schema.version)], version=schema.version)
            decoded = decode(data, expected=name)
            assert decoded.version == schema.version
            assert decoded.record.keys() == _fields(newest).keys()


def test_registry_is_parsed_once_per_process() -> None:
    assert default_registry() is default_registry()


def test_every_schema_is_a_record_of_the_namespace_with_a_unique_fingerprint() -> None:
    schemas = list(registry().by_fingerprint.values())
    assert len({s.fingerprint for s in schemas}) == len(schemas)
    for schema in schemas:
        assert schema.parsed["name"] == f"{NAMESPACE}.{schema.name}"

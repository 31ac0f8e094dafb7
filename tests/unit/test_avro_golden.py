"""Golden bytes: the wire format of every schema version is fixed; a change here breaks every reader.

Regenerate (only for a NEW schema version, never for an existing one): UPDATE_GOLDEN=1 pytest this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from issuance.codec.avro import decode, encode, registry
from tests.avro_samples import SAMPLES

GOLDEN = Path(__file__).parent / "golden"
ALL_VERSIONS = [(s.name, s.version) for name in registry().names for s in registry().versions[name]]


def test_every_schema_version_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(ALL_VERSIONS)


@pytest.mark.parametrize(("name", "version"), ALL_VERSIONS, ids=[f"{n}.v{v}" for n, v in ALL_VERSIONS])
def test_encoding_matches_golden_bytes(name: str, version: int) -> None:
    path = GOLDEN / f"{name}.v{version}.bin"
    data = encode(name, SAMPLES[(name, version)], version=version)
    if os.environ.get("UPDATE_GOLDEN") and not path.exists():
        path.write_bytes(data)
    assert data == path.read_bytes()


@pytest.mark.parametrize(("name", "version"), ALL_VERSIONS, ids=[f"{n}.v{v}" for n, v in ALL_VERSIONS])
def test_golden_bytes_decode_to_the_newest_reader(name: str, version: int) -> None:
    decoded = decode((GOLDEN / f"{name}.v{version}.bin").read_bytes(), expected=name)

    newest = registry().latest(name)
    sample = SAMPLES[(name, version)]
    # The newest reader's fields: the writer's value, else the reader's default (a field a later version
    # removed, such as ApplicationSubmitted v3's clear applicant, is not read at all).
    expected = {f["name"]: sample.get(f["name"], f.get("default")) for f in newest.parsed["fields"]}
    assert decoded.record_name == name
    assert decoded.version == version
    assert decoded.record == expected


def test_golden_header_is_single_object_encoding() -> None:
    data = (GOLDEN / "ApplicationSubmitted.v1.bin").read_bytes()
    assert data[:2] == b"\xc3\x01"
    # CRC-64-AVRO of the v1 parsing canonical form, little-endian: pinned so a schema edit is noticed.
    assert data[2:10].hex() == "4d3394a363b50c6c"

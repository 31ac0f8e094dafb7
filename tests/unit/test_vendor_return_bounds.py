"""A return file and its signature are read bounded: a file larger than allowed is refused before it is read
whole, and a signature file must hold base64 of a signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.vendor import read_bounded
from issuance.domain.vendor_return import ReturnFileRefused, parse_signature, signature_path
from issuance.errors import InputError


def test_a_file_above_the_limit_is_refused_and_one_at_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "V1.return.jsonl"
    path.write_bytes(b"x" * 101)
    with pytest.raises(InputError, match="at most 100 bytes"):
        read_bounded(path, 100, "return file")
    assert read_bounded(path, 101, "return file") == b"x" * 101
    with pytest.raises(InputError, match="cannot read"):
        read_bounded(tmp_path / "missing.jsonl", 100, "return file")


def test_the_signature_beside_the_file() -> None:
    assert signature_path(Path("/d/V1.return.jsonl")) == Path("/d/V1.return.jsonl.sig")
    assert parse_signature(b"AQID\n") == b"\x01\x02\x03"
    for bad in (b"", b"not base64!", b"   "):
        with pytest.raises(ReturnFileRefused):
            parse_signature(bad)

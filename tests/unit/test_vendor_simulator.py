"""The simulated vendor: deterministic return files that the bureau's parser reads without a refusal."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from issuance.domain.vendor_return import Result, parse
from issuance.errors import InputError
from producers.vendor_simulator import simulate, vendor_file_path

CARDS = [f"A{n:07d}K" for n in range(1, 41)]


def vendor_file(root: Path, run_id: int = 3, vendor: str = "V1", manifest: bool = True) -> bytes:
    path = vendor_file_path(root, run_id, vendor)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps({"card_number": c, "name_enc": "sealed"}).encode() + b"\n" for c in CARDS)
    path.write_bytes(data)
    if manifest:
        sha = hashlib.sha256(data).hexdigest()
        path.with_name(f"{vendor}.manifest.json").write_text(json.dumps({"sha256": sha}))
    return data


def test_the_same_seed_writes_the_same_file_and_the_bureau_reads_every_line(tmp_path: Path) -> None:
    data = vendor_file(tmp_path)
    first = simulate(tmp_path, 3, "V1", fail_rate=0.3, seed=9)
    content = first.path.read_bytes()
    assert simulate(tmp_path, 3, "V1", fail_rate=0.3, seed=9).path.read_bytes() == content
    assert simulate(tmp_path, 3, "V1", fail_rate=0.3, seed=10).path.read_bytes() != content

    parsed = parse(content)
    assert parsed.refused == ()
    assert (parsed.header.run_id, parsed.header.vendor_code) == (3, "V1")
    assert parsed.header.manifest_sha256 == hashlib.sha256(data).hexdigest()
    assert [line.card_number for line in parsed.lines] == CARDS
    failed = sum(line.result is Result.FAILED for line in parsed.lines)
    assert failed == first.failed and 0 < failed < len(CARDS)
    assert first.produced + first.failed == len(CARDS)


@pytest.mark.parametrize(("rate", "produced"), [(0.0, len(CARDS)), (1.0, 0)])
def test_rates_of_zero_and_one(tmp_path: Path, rate: float, produced: int) -> None:
    vendor_file(tmp_path, manifest=False)
    assert simulate(tmp_path, 3, "V1", fail_rate=rate, seed=1).produced == produced


def test_a_missing_or_damaged_vendor_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no vendor file"):
        simulate(tmp_path, 3, "V1", fail_rate=0.0, seed=1)
    vendor_file(tmp_path)
    with vendor_file_path(tmp_path, 3, "V1").open("ab") as out:
        out.write(b'{"card_number": "B0000001K"}\n')
    with pytest.raises(InputError, match="does not match the SHA-256 of its manifest"):
        simulate(tmp_path, 3, "V1", fail_rate=0.0, seed=1)

"""The simulated vendor: deterministic return files that the bureau's parser reads without a refusal, from
vendor files it checked are the bureau's, signed with its own key."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from issuance.domain.vendor_return import Result, parse, parse_signature, signature_path
from issuance.errors import InputError
from issuance.trust.channel import sign_file, verify_file
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU, vendor
from issuance.trust.sealing import Sealer, seal_personal
from producers.vendor_simulator import UNREADABLE, simulate, vendor_file_path

CARDS = [f"A{n:07d}K" for n in range(1, 41)]
BUREAU_KEYS = PartyKeys.generate(BUREAU)
V1 = PartyKeys.generate(vendor("V1"))
V2 = PartyKeys.generate(vendor("V2"))
DIRECTORY = Directory([BUREAU_KEYS.public(), V1.public(), V2.public()])
PERSONAL = {
    "holder_id_number": "110101198001011234",
    "holder_name": "Zhang San",
    "holder_sex": "MALE",
    "holder_birth_date": "1980-01-01",
    "holder_ethnic_group": None,
    "account_number": "6222020000000000001",
}


def vendor_file(
    root: Path, run_id: int = 3, code: str = "V1", signer: PartyKeys = BUREAU_KEYS, sealed_to: str = "V1"
) -> bytes:
    """A vendor file as the night writes it: personal data sealed to the vendor, signed by `signer`."""
    path = vendor_file_path(root, run_id, code)
    path.parent.mkdir(parents=True, exist_ok=True)
    sealer = Sealer.to(DIRECTORY, vendor(sealed_to))
    data = b"".join(
        json.dumps(
            {
                "card_number": c,
                "personal_enc": base64.b64encode(
                    seal_personal("VendorCardPersonal", PERSONAL, sealer, c)
                ).decode(),
            }
        ).encode()
        + b"\n"
        for c in CARDS
    )
    path.write_bytes(data)
    digest = hashlib.sha256(data)
    signature = base64.b64encode(sign_file(signer, digest.digest())).decode()
    manifest = {"sha256": digest.hexdigest(), "signature": signature}
    path.with_name(f"{code}.manifest.json").write_text(json.dumps(manifest))
    return data


def run(root: Path, rate: float = 0.0, seed: int = 1, own: PartyKeys = V1) -> Path:
    return simulate(root, 3, "V1", fail_rate=rate, seed=seed, directory=DIRECTORY, own=own).path


def test_the_same_seed_writes_the_same_file_and_the_bureau_reads_every_line(tmp_path: Path) -> None:
    data = vendor_file(tmp_path)
    first = simulate(tmp_path, 3, "V1", fail_rate=0.3, seed=9, directory=DIRECTORY, own=V1)
    content = first.path.read_bytes()
    assert run(tmp_path, 0.3, 9).read_bytes() == content
    assert run(tmp_path, 0.3, 10).read_bytes() != content

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
    vendor_file(tmp_path)
    written = simulate(tmp_path, 3, "V1", fail_rate=rate, seed=1, directory=DIRECTORY, own=V1)
    assert written.produced == produced


def test_a_missing_or_damaged_vendor_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no vendor file"):
        run(tmp_path)
    vendor_file(tmp_path)
    with vendor_file_path(tmp_path, 3, "V1").open("ab") as out:
        out.write(b'{"card_number": "B0000001K"}\n')
    with pytest.raises(InputError, match="does not match the SHA-256 of its manifest"):
        run(tmp_path)


def test_a_vendor_file_not_signed_by_the_bureau_is_not_produced(tmp_path: Path) -> None:
    vendor_file(tmp_path, signer=V2)  # another party's signature over the right digest
    with pytest.raises(InputError, match="not signed by the bureau"):
        run(tmp_path)
    assert not vendor_file_path(tmp_path, 3, "V1").with_name("V1.return.jsonl").exists()


def test_the_return_file_is_signed_by_the_vendor(tmp_path: Path) -> None:
    vendor_file(tmp_path)
    path = run(tmp_path)
    signature = parse_signature(signature_path(path).read_bytes())
    verify_file(DIRECTORY, vendor("V1"), hashlib.sha256(path.read_bytes()).digest(), signature)


def test_cards_whose_data_does_not_open_with_the_vendors_key_fail(tmp_path: Path) -> None:
    vendor_file(tmp_path, sealed_to="V2")  # sealed to another vendor: V1 cannot write the chips
    parsed = parse(run(tmp_path).read_bytes())
    assert {(line.result, line.failure_reason) for line in parsed.lines} == {(Result.FAILED, UNREADABLE)}

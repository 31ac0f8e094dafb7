"""The codec: round trips, and every kind of bad message rejected with its typed error."""

from __future__ import annotations

import random

import pytest

from issuance.codec.avro import HEADER_SIZE, Decoded, decode, decode_many, encode, encode_many, registry
from issuance.errors import DecodeError, MalformedMessage, SchemaViolation, UnknownSchema
from tests.avro_samples import SAMPLES

APPLICATION = SAMPLES[("ApplicationSubmitted", 3)]
VALID = encode("ApplicationSubmitted", APPLICATION)


@pytest.mark.parametrize("name", registry().names)
def test_round_trip_of_every_record(name: str) -> None:
    record = SAMPLES[(name, registry().latest(name).version)]
    decoded = decode(encode(name, record), expected=name)
    assert decoded == Decoded(
        name, registry().latest(name).version, record, registry().latest(name).fingerprint
    )


def test_encode_many_matches_encode() -> None:
    assert encode_many("ApplicationSubmitted", [APPLICATION, APPLICATION]) == [VALID, VALID]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedMessage),
        (VALID[: HEADER_SIZE - 1], MalformedMessage),
        (b"\x00\x01" + VALID[2:], MalformedMessage),
        (b'{"application_id": "APP-1"}', MalformedMessage),
        (VALID[:-1], MalformedMessage),
        (VALID[: HEADER_SIZE + 3], MalformedMessage),
        (VALID + b"\x00", MalformedMessage),
        (VALID[:2] + bytes(8) + VALID[HEADER_SIZE:], UnknownSchema),
    ],
    ids=[
        "empty",
        "short",
        "magic",
        "json",
        "truncated",
        "header-only-ish",
        "trailing",
        "unknown-fingerprint",
    ],
)
def test_bad_messages_raise_typed_errors(data: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error) as caught:
        decode(data)
    assert type(caught.value) is error


def test_header_alone_is_not_a_record() -> None:
    with pytest.raises(MalformedMessage):
        decode(VALID[:HEADER_SIZE])


def test_wrong_record_for_the_expected_one_is_a_schema_violation() -> None:
    agreement = encode("AgreementSigned", SAMPLES[("AgreementSigned", 1)])
    with pytest.raises(SchemaViolation, match="expected a ApplicationSubmitted message"):
        decode(agreement, expected="ApplicationSubmitted")


def test_unknown_record_names_are_unknown_schemas() -> None:
    with pytest.raises(UnknownSchema):
        encode("NoSuchRecord", {})
    with pytest.raises(UnknownSchema):
        decode(VALID, expected="NoSuchRecord")
    with pytest.raises(UnknownSchema):
        encode("ApplicationSubmitted", APPLICATION, version=99)


def test_invalid_enum_index_is_malformed() -> None:
    # application_id "APP-000001" is 1 length byte + 10 bytes; the application_type index follows.
    offset = HEADER_SIZE + 11
    data = VALID[:offset] + b"\x7e" + VALID[offset + 1 :]
    with pytest.raises(MalformedMessage):
        decode(data)


def test_encoding_a_record_that_does_not_fit_names_the_field_not_the_value() -> None:
    secret = "NOT-AN-APPLICATION-TYPE-SECRET"
    with pytest.raises(SchemaViolation) as caught:
        encode("ApplicationSubmitted", {**APPLICATION, "application_type": secret})
    assert caught.value.problems == (("application_type", "does not match the schema type"),)
    assert secret not in str(caught.value)


def test_error_messages_never_quote_message_content() -> None:
    clear = SAMPLES[("ApplicationSubmitted", 2)]  # an older version, with the applicant in clear
    name = clear["applicant"]["name"]
    older = encode("ApplicationSubmitted", clear, version=2)
    for data in (VALID[:-4], VALID + b"xx", VALID[:-30], older[:-4], older + b"xx", older[:-30]):
        with pytest.raises(DecodeError) as caught:
            decode(data)
        assert name not in str(caught.value)
        assert APPLICATION["application_id"] not in str(caught.value)
        assert clear["application_id"] not in str(caught.value)


def test_decode_many_yields_errors_as_data() -> None:
    results = list(decode_many([VALID, b"junk", VALID], expected="ApplicationSubmitted"))
    assert isinstance(results[0], Decoded)
    assert isinstance(results[1], MalformedMessage)
    assert isinstance(results[2], Decoded)


def _mutations(rng: random.Random, valid: list[bytes]) -> bytes:
    kind = rng.randrange(6)
    base = bytearray(rng.choice(valid))
    if kind == 0:  # any bytes at all
        return rng.randbytes(rng.randrange(64))
    if kind == 5:  # the marker and any fingerprint
        return bytes(base[:2]) + rng.randbytes(8) + bytes(base[HEADER_SIZE:])
    if kind == 1:  # a known header and a random body
        return bytes(base[:HEADER_SIZE]) + rng.randbytes(rng.randrange(200))
    if kind == 2:  # a few flipped body bytes
        for _ in range(rng.randrange(1, 6)):
            base[rng.randrange(HEADER_SIZE, len(base))] = rng.randrange(256)
        return bytes(base)
    if kind == 3:  # truncated
        return bytes(base[: rng.randrange(len(base))])
    return bytes(base) + rng.randbytes(rng.randrange(1, 8))  # trailing garbage


def test_decode_raises_nothing_but_the_three_typed_errors() -> None:
    rng = random.Random(20261128)
    valid = [encode(name, SAMPLES[(name, version)], version=version) for name, version in SAMPLES]
    outcomes: dict[str, int] = {}
    for _ in range(20_000):
        data = _mutations(rng, valid)
        try:
            decode(data)
            outcome = "decoded"
        except (MalformedMessage, UnknownSchema, SchemaViolation) as exc:
            outcome = type(exc).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The generator reaches each outcome, so the property is not vacuous.
    assert {"decoded", "MalformedMessage", "UnknownSchema"} <= outcomes.keys()

"""Forged and misdirected bank answers on the real broker and PostgreSQL: anyone who can write to a bank's
answer topic may publish any bytes, and an answer's event id is computable. Each forgery is a dead letter with
its trust reason, the application is left as it was, and the bank's real answer is still applied."""

from __future__ import annotations

from kafka import KafkaProducer

from issuance.domain import numbers
from issuance.domain.masking import mask_account
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.messages import ActivationCompleted
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory
from issuance.trust.channel import Signer
from issuance.trust.parties import BUREAU, bank
from tests.factories import BANK
from tests.fixtures_activation import (
    BIN,
    Activating,
    party_keys,
    produce,
    publish_signed,
    scalar,
    seed_accepted,
    seed_activations,
    sides,
    states,
)
from tests.integration.test_consume_bank_results import NOW, completed, consume, failed, publish_results

OTHER_BANK, OTHER_BIN = "ABC", "621700"


def dead_letters(settings: Settings) -> dict[str, int]:
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        rows = conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason").fetchall()
    return {str(reason): int(n) for reason, n in rows}


def claimed(settings: Settings) -> int:
    return scalar(settings, "SELECT count(*) FROM inbox WHERE consumer = 'bank-results'")


def untouched(settings: Settings, a: Activating) -> None:
    assert states(settings)[a.application_id] == ("ACCEPTED", 0, True, False)
    assert sides(settings, a.card_application_id) == ("ISSUED", "OPENED")
    assert scalar(settings, "SELECT count(*) FROM person_cards WHERE financial_status = 'ACTIVE'") == 0


def publish_tampered(settings: Settings, payload: bytes) -> None:
    """The bank's headers for `payload`, sent with another value (a MAC that does not match)."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        signer = Signer(party_keys(settings, bank(BANK)), load_directory(conn))
    headers = signer.headers(BUREAU, None, payload)
    producer = KafkaProducer(**KafkaClientConfig.from_settings(settings).client_kwargs(), acks="all")
    try:
        altered = payload[:-1] + bytes([payload[-1] ^ 1])
        producer.send(Topics(settings).bank_results(BANK), value=altered, headers=headers)
        producer.flush()
    finally:
        producer.close()


def test_a_forged_completion_is_a_dead_letter_and_activates_nothing(settings: Settings) -> None:
    (a,) = seed_activations(settings, 1)
    forged = completed(a).to_bytes()
    produce(settings.kafka_bootstrap or "", Topics(settings).bank_results(BANK), [forged])  # no headers
    publish_tampered(settings, forged)
    seed_accepted(settings, 1, bank_code=OTHER_BANK, start=50)  # another bank, with registered keys
    publish_signed(settings, Topics(settings).bank_results(BANK), [forged], bank(OTHER_BANK), BUREAU)

    stats = consume(settings)

    assert (stats["activated"], stats["dead_lettered"]) == (0, 3)
    assert dead_letters(settings) == {"SIGNATURE_MISSING": 1, "SIGNATURE_INVALID": 1, "SENDER_MISMATCH": 1}
    untouched(settings, a)
    assert claimed(settings) == 0


def test_a_forged_failure_does_not_pre_empt_the_banks_real_answer(settings: Settings) -> None:
    (a,) = seed_activations(settings, 1)
    forged = failed(a)
    assert forged.event_id == completed(a).event_id  # computable by anyone: the same id as the real answer
    produce(settings.kafka_bootstrap or "", Topics(settings).bank_results(BANK), [forged.to_bytes()])
    assert consume(settings)["dead_lettered"] == 1
    untouched(settings, a)

    publish_results(settings, [completed(a).to_bytes()])
    stats = consume(settings)

    assert (stats["activated"], stats["duplicates"]) == (1, 0)
    assert states(settings)[a.application_id] == ("COMPLETED", 0, False, False)
    assert sides(settings, a.card_application_id) == ("ISSUED", "ACTIVE")
    assert dead_letters(settings) == {"SIGNATURE_MISSING": 1}


def test_an_answer_of_another_bank_is_refused_however_it_is_addressed(settings: Settings) -> None:
    (a,) = seed_activations(settings, 1)
    seed_accepted(settings, 1, bank_code=OTHER_BANK, start=50)
    topics = Topics(settings)
    answer = completed(a)
    as_other = ActivationCompleted(
        answer.event_id, answer.request_event_id, a.application_id, OTHER_BANK, answer.personal, NOW
    )
    # The other bank, on its own topic, answering for an application of BANK.
    publish_signed(settings, topics.bank_results(OTHER_BANK), [as_other.to_bytes()], bank(OTHER_BANK), BUREAU)
    # The other bank, on BANK's topic, in BANK's name.
    publish_signed(settings, topics.bank_results(BANK), [answer.to_bytes()], bank(OTHER_BANK), BUREAU)
    # BANK, on its own topic, naming the other bank.
    publish_results(settings, [as_other.to_bytes()])

    stats = consume(settings)

    assert (stats["activated"], stats["dead_lettered"]) == (0, 3)
    assert dead_letters(settings) == {"SENDER_MISMATCH": 3}
    untouched(settings, a)
    assert claimed(settings) == 0


def test_an_activated_account_is_checked_and_only_ever_shown_masked(settings: Settings) -> None:
    (a,) = seed_activations(settings, 1)
    not_the_cards = completed(a, number=numbers.bank_account_number(BIN, 77))
    other_bin = completed(a, number=numbers.bank_account_number(OTHER_BIN, 1))
    garbage = ActivationCompleted(
        not_the_cards.event_id, not_the_cards.request_event_id, a.application_id, BANK, b"\x01junk", NOW
    )
    publish_results(settings, [not_the_cards.to_bytes(), other_bin.to_bytes(), garbage.to_bytes()])

    stats = consume(settings)

    assert (stats["activated"], stats["dead_lettered"]) == (0, 3)
    assert dead_letters(settings) == {"SCHEMA_VIOLATION": 2, "SEAL_INVALID": 1}
    untouched(settings, a)

    publish_results(settings, [completed(a).to_bytes()])
    assert consume(settings)["activated"] == 1
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        texts = [
            str(detail)
            for (detail,) in conn.execute(
                "SELECT detail::text FROM application_history WHERE application_id = %s"
                " UNION ALL SELECT detail::text FROM card_history WHERE application_id = %s"
                " UNION ALL SELECT detail::text FROM dead_letters"
                " UNION ALL SELECT detail::text FROM audit_log",
                (a.application_id, a.card_application_id),
            ).fetchall()
        ]
    assert any(mask_account(a.account_number) in t for t in texts)
    assert not any(a.account_number in t or a.account_number[6:] in t for t in texts)


def test_history_lines_with_an_unchecked_account_reference_are_withheld(settings: Settings) -> None:
    from issuance.store.migrate import available_migrations

    (a,) = seed_activations(settings, 1)
    clear = a.account_number
    lines = [
        ("bank", f"bank {BANK} switched on account {clear}"),
        ("activation", f"bank {BANK} opened account {clear}"),
        ("bank", f"bank {BANK} opened account {mask_account(clear)}"),  # an account opening's, checked
    ]
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        for n, (stage, detail) in enumerate(lines):
            conn.execute(
                "INSERT INTO application_history (application_id, to_state, stage, event_id, detail)"
                " VALUES (%s, 'COMPLETED', %s, %s, %s)",
                (a.application_id, stage, f"event-{n}", detail),
            )
        [script] = [m for m in available_migrations() if m.version == "0034_unchecked_account_references"]
        conn.execute(script.sql)  # type: ignore[arg-type]
        details = [
            str(d)
            for (d,) in conn.execute(
                "SELECT detail FROM application_history WHERE application_id = %s ORDER BY id",
                (a.application_id,),
            ).fetchall()
        ]
    assert details[-3:] == [
        f"bank {BANK} switched on account (reference withheld: received unchecked)",
        f"bank {BANK} opened account (reference withheld: received unchecked)",
        f"bank {BANK} opened account {mask_account(clear)}",
    ]

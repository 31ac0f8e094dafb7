"""The bureau's consumer of the banks' answers against the real broker and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from consumers.bank_simulator import FailurePolicy
from consumers.serve import consume_results, serve_banks
from issuance.crypto import Vault
from issuance.dead_letter_events import open_original
from issuance.domain import numbers
from issuance.kafka.topics import Topics
from issuance.messages import (
    AccountOpened,
    AccountRefused,
    ActivationCompleted,
    ActivationFailed,
    BankRefusalReason,
    DecisionIssued,
    MessageDeadLettered,
    account_answer_event_id,
    activation_answer_event_id,
)
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import BUREAU, bank
from issuance.trust.sealing import Unsealer
from tests.factories import BANK
from tests.fixtures_activation import (
    BIN,
    Accepted,
    Activating,
    activation_request_for,
    opening_request_for,
    publish_signed,
    read_topic,
    scalar,
    sealed_account,
    seed_accepted,
    seed_activations,
    sides,
    states,
)

IDLE = 1.5
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def opened(a: Accepted, number: str | None = None, attempt: int = 1) -> AccountOpened:
    request = opening_request_for(a, attempt).event_id
    number = number or numbers.bank_account_number(BIN, int(a.application_id[4:]))
    answer_id = account_answer_event_id(request)
    personal = sealed_account(a.directory, number, answer_id)
    return AccountOpened(answer_id, request, a.application_id, a.bank_code, personal, NOW)


def refused(a: Accepted, attempt: int = 1) -> AccountRefused:
    request = opening_request_for(a, attempt).event_id
    return AccountRefused(
        account_answer_event_id(request),
        request,
        a.application_id,
        a.bank_code,
        BankRefusalReason.KYC_FAILED,
        NOW,
        "identity check failed",
    )


def completed(a: Activating, attempt: int = 1, number: str | None = None) -> ActivationCompleted:
    request = activation_request_for(a, attempt).event_id
    answer_id = activation_answer_event_id(request)
    personal = sealed_account(a.directory, number or a.account_number, answer_id)
    return ActivationCompleted(answer_id, request, a.application_id, a.bank_code, personal, NOW)


def failed(a: Activating, attempt: int = 1) -> ActivationFailed:
    request = activation_request_for(a, attempt).event_id
    return ActivationFailed(
        activation_answer_event_id(request),
        request,
        a.application_id,
        a.bank_code,
        BankRefusalReason.BANK_SYSTEM_ERROR,
        NOW,
    )


def publish_results(settings: Settings, payloads: list[bytes]) -> None:
    """The bank's answers on its own topic, with its channel headers."""
    publish_signed(settings, Topics(settings).bank_results(BANK), payloads, bank(BANK), BUREAU)


def publish_requests(settings: Settings, payloads: list[bytes]) -> None:
    """The bureau's requests on the bank's topic, with the bureau's channel headers (as the relay sends)."""
    publish_signed(settings, Topics(settings).bank_requests(BANK), payloads, BUREAU, bank(BANK))


def consume(settings: Settings) -> dict[str, int]:
    stats: dict[str, Any] = consume_results(settings, resolve(settings), IDLE, threading.Event())
    return {**stats["bank_results"], "published": stats["published"]}


def decisions(settings: Settings) -> list[tuple[str, str]]:
    events = read_topic(settings, Topics(settings).decisions)
    return sorted((e.application_id, e.state.value) for e in events if isinstance(e, DecisionIssued))


def request_again(settings: Settings, application_id: str) -> None:
    """What the next night does to a refused request with attempts left (REQUESTED_AGAIN)."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("UPDATE applications SET retry_due = false WHERE application_id = %s", (application_id,))


def test_round_trip_opens_accounts_and_refusals_are_asked_again(settings: Settings) -> None:
    accepted = seed_accepted(settings, 30)
    policy = FailurePolicy(fail_rate=0.25, seed=3)
    requests = [opening_request_for(a) for a in accepted]
    publish_requests(settings, [r.to_bytes() for r in requests])
    serve_banks(settings, resolve(settings), None, policy, IDLE, threading.Event())

    stats = consume(settings)

    refusing = {r.application_id for r in requests if policy.failure(r.event_id)}
    assert 0 < len(refusing) < 30
    assert (stats["opened"], stats["refused"], stats["final_failures"]) == (
        30 - len(refusing),
        len(refusing),
        0,
    )
    for a in accepted:
        if a.application_id in refusing:
            assert states(settings)[a.application_id] == ("ACCEPTED", 1, True, True)
            assert sides(settings, a.application_id) == ("ORDERED", "REQUESTED")
        else:
            assert states(settings)[a.application_id] == ("ACCEPTED", 0, True, False)
            assert sides(settings, a.application_id) == ("ORDERED", "OPENED")
    # The bank's number, sealed with its blind index; its step in the card's history, from the bank.
    vault = Vault.from_settings(settings)
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT account_index, account_number_enc, opened_at FROM bank_accounts WHERE status = 'OPENED'"
        ).fetchall()
    assert len(rows) == 30 - len(refusing)
    for index, enc, opened_at in rows:
        number = vault.decrypt(enc)
        assert numbers.is_valid_assigned_account(number, BIN) and vault.blind_index(number) == bytes(index)
        assert opened_at is not None
    assert scalar(
        settings,
        "SELECT count(*) FROM card_history WHERE side = 'financial' AND from_status = 'REQUESTED'"
        " AND to_status = 'OPENED' AND source = %s AND event_id IS NOT NULL",
        [f"bank:{BANK}"],
    ) == 30 - len(refusing)
    assert decisions(settings) == []  # no outcome is final: the applications stay ACCEPTED
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action LIKE 'bank.account_%'") == 30


def test_an_account_opened_with_a_bad_number_is_a_dead_letter_and_changes_nothing(settings: Settings) -> None:
    good, other_bin, short, bad_luhn = seed_accepted(settings, 4)
    bad_check = numbers.bank_account_number(BIN, 4)
    bad_check = bad_check[:-1] + str((int(bad_check[-1]) + 1) % 10)
    answers = [
        opened(other_bin, numbers.bank_account_number("621700", 2)),
        opened(short, BIN + "12345"),
        opened(bad_luhn, bad_check),
        opened(good),
    ]
    publish_results(settings, [a.to_bytes() for a in answers])

    stats = consume(settings)

    assert (stats["dead_lettered"], stats["opened"]) == (3, 1)
    for a in (other_bin, short, bad_luhn):
        assert states(settings)[a.application_id] == ("ACCEPTED", 0, True, False)
        assert sides(settings, a.application_id) == ("ORDERED", "REQUESTED")
    assert sides(settings, good.application_id) == ("ORDERED", "OPENED")
    assert scalar(settings, "SELECT count(*) FROM dead_letters WHERE reason = 'SCHEMA_VIOLATION'") == 3
    # Not claimed in the inbox: the bank may send its answer again, corrected.
    assert scalar(settings, "SELECT count(*) FROM inbox WHERE consumer = 'bank-results'") == 1
    # The detail never shows the number.
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:  # type: ignore[union-attr]
        details = [str(d) for (d,) in conn.execute("SELECT detail FROM dead_letters").fetchall()]
    assert all("account_number" in d for d in details)
    clear = [numbers.bank_account_number("621700", 2), BIN + "12345", bad_check]
    assert not any(n in d or n[6:] in d for n in clear for d in details)


def test_a_refusal_with_attempts_left_is_due_again_and_the_last_fails_the_application(
    settings: Settings,
) -> None:
    (a,) = seed_accepted(settings, 1)
    last = settings.max_activation_attempts
    for attempt in range(1, last + 1):
        if attempt > 1:
            request_again(settings, a.application_id)
        publish_results(settings, [refused(a, attempt).to_bytes()])
        stats = consume(settings)
        if attempt < last:
            assert states(settings)[a.application_id] == ("ACCEPTED", attempt, True, True)
            assert sides(settings, a.application_id) == ("ORDERED", "REQUESTED")
    assert stats["final_failures"] == 1
    assert states(settings)[a.application_id] == ("FAILED", last, False, False)
    assert sides(settings, a.application_id) == ("CANCELLED", "REFUSED")
    assert decisions(settings) == [(a.application_id, "FAILED")]
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM card_history WHERE application_id = %s AND source = %s"
            " AND ((side = 'card' AND from_status = 'ORDERED' AND to_status = 'CANCELLED')"
            " OR (side = 'financial' AND from_status = 'REQUESTED' AND to_status = 'REFUSED'))",
            [a.application_id, f"bank:{BANK}"],
        )
        == 2
    )
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM application_history WHERE application_id = %s AND to_state = 'FAILED'"
            " AND detail LIKE '%%the holder may apply again%%'",
            [a.application_id],
        )
        == 1
    )


def test_an_activation_completed_activates_the_cards_account_and_completes_only_the_activation(
    settings: Settings,
) -> None:
    first, second = seed_activations(settings, 2)
    publish_results(settings, [completed(first).to_bytes(), failed(second).to_bytes()])

    stats = consume(settings)

    assert (stats["activated"], stats["activation_failed"]) == (1, 1)
    assert states(settings)[first.application_id] == ("COMPLETED", 0, False, False)
    assert states(settings)[first.card_application_id] == ("COMPLETED", 0, False, False)  # untouched
    assert states(settings)[second.application_id] == ("ACCEPTED", 1, True, True)
    assert sides(settings, first.card_application_id) == ("ISSUED", "ACTIVE")
    assert sides(settings, second.card_application_id) == ("ISSUED", "OPENED")
    assert scalar(settings, "SELECT count(*) FROM bank_accounts WHERE activated_at IS NOT NULL") == 1
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM person_cards WHERE financial_status = 'ACTIVE' AND card_number = %s",
            [first.card_number],
        )
        == 1
    )
    assert scalar(settings, "SELECT count(*) FROM person_cards WHERE financial_status = 'ACTIVE'") == 1
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM card_history WHERE application_id = %s AND side = 'financial'"
            " AND from_status = 'OPENED' AND to_status = 'ACTIVE'",
            [first.card_application_id],
        )
        == 1
    )
    assert decisions(settings) == [(first.application_id, "COMPLETED")]


def test_each_answer_applies_once_and_a_stale_one_changes_nothing(settings: Settings) -> None:
    a, b = seed_accepted(settings, 2)
    publish_results(settings, [opened(a).to_bytes(), opened(a).to_bytes(), refused(b).to_bytes()])
    consume(settings)
    assert sides(settings, a.application_id) == ("ORDERED", "OPENED")
    assert states(settings)[b.application_id] == ("ACCEPTED", 1, True, True)
    # b's first answer delivered again (duplicate); a refusal of a's attempt 2 that was never requested, and
    # b's attempt 2 opened while b is still due again (out of order: the night has not asked yet).
    publish_results(
        settings, [refused(b).to_bytes(), refused(a, attempt=2).to_bytes(), opened(b, attempt=2).to_bytes()]
    )
    stats = consume(settings)
    assert (stats["duplicates"], stats["stale"], stats["opened"], stats["refused"]) == (1, 2, 0, 0)
    assert sides(settings, a.application_id) == ("ORDERED", "OPENED")
    assert states(settings)[b.application_id] == ("ACCEPTED", 1, True, True)
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action = 'bank.answer_ignored'") == 2


def test_unreadable_answers_go_to_the_dead_letters(settings: Settings) -> None:
    (a,) = seed_accepted(settings, 1)
    unknown_schema = b"\xc3\x01" + b"\x00" * 8 + b"\x02"
    publish_results(settings, [unknown_schema, b"not avro", opened(a).to_bytes()])
    stats = consume(settings)
    assert stats["dead_lettered"] == 2 and stats["opened"] == 1
    assert scalar(settings, "SELECT count(*) FROM dead_letters WHERE reason = 'UNKNOWN_SCHEMA'") == 1
    assert scalar(settings, "SELECT count(*) FROM dead_letters WHERE reason = 'MALFORMED_MESSAGE'") == 1
    letters = [
        e for e in read_topic(settings, Topics(settings).dead_letters) if isinstance(e, MessageDeadLettered)
    ]
    assert sorted(letter.reason.value for letter in letters) == ["MALFORMED_MESSAGE", "UNKNOWN_SCHEMA"]
    unsealer = Unsealer(bureau_keys(settings))  # sealed to the bureau: nobody else opens them
    assert {open_original(letter, unsealer).excerpt for letter in letters} == {unknown_schema, b"not avro"}


def test_the_bank_opens_the_account_and_later_switches_on_the_number_it_assigned(settings: Settings) -> None:
    """The whole round: the number the bank assigns passes the bureau's checks, and the activation request
    that carries it back finds the account in the bank's ledger."""
    [accepted] = seed_accepted(settings, 1)
    publish_requests(settings, [opening_request_for(accepted).to_bytes()])
    serve_banks(settings, resolve(settings), [BANK], FailurePolicy(), IDLE, threading.Event())
    assert consume(settings)["opened"] == 1
    # The nights and the branch in between (personalized, produced, collected), as their rows leave it.
    vault = Vault.from_settings(settings)
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT account_number_enc FROM bank_accounts WHERE application_id = %s",
            (accepted.application_id,),
        ).fetchone()
        assert row is not None
        number = vault.decrypt(row[0])
        conn.execute(
            "UPDATE cards SET card_number = 'A00000001', status = 'ISSUED' WHERE application_id = %s",
            (accepted.application_id,),
        )
        conn.execute(
            "UPDATE bank_accounts SET card_number = 'A00000001' WHERE application_id = %s",
            (accepted.application_id,),
        )
        conn.execute(
            "UPDATE applications SET state = 'COMPLETED', is_open = false WHERE application_id = %s",
            (accepted.application_id,),
        )
    [activating] = seed_activations(settings, 1, start=90)
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(
            "UPDATE applications SET card_number = 'A00000001' WHERE application_id = %s",
            (activating.application_id,),
        )
    ours = Activating(
        activating.application_id,
        accepted.application_id,
        BANK,
        "A00000001",
        number,
        accepted.id_number,
        activating.directory,
    )
    publish_requests(settings, [activation_request_for(ours).to_bytes()])
    serve_banks(settings, resolve(settings), [BANK], FailurePolicy(), IDLE, threading.Event())

    assert consume(settings)["activated"] == 1

    assert states(settings)[activating.application_id] == ("COMPLETED", 0, False, False)
    assert sides(settings, accepted.application_id) == ("ISSUED", "ACTIVE")
    assert sides(settings, activating.card_application_id) == ("ISSUED", "OPENED")  # another card, untouched

"""Who each outbox event is for, and the bureau's channel headers that authenticate it to that party.

Every message the bureau publishes carries the headers of the bureau's `Signer` to the event's recipient (the
bank of a bank request, the branch of a decision or a dispatch, the bureau itself for a dead letter): the
receiving party knows the bureau sent it and that it was not changed. The recipient is written with the event
(`outbox.recipient`). Events written before that column existed are given the recipient their topic and record
say (a bank's request topic, the branch code of a decision or a dispatch, the dead-letter topic); any other is
set aside with a reason, never sent unauthenticated.

`RelayTrust` is what a relay process needs (the bureau's private keys and the directory of public keys); it is
picklable, so the relay's helper processes each build their own `Signer` (their own channels) from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from issuance.errors import ConfigurationError, DecodeError
from issuance.kafka.topics import Topics
from issuance.messages import CardDispatched, DecisionIssued, decode_event
from issuance.settings import Settings
from issuance.store import party_keys_repo
from issuance.store.run_repo import Conn
from issuance.trust.channel import Signer
from issuance.trust.errors import UnknownParty
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import BUREAU, Party, bank, branch

Headers = list[tuple[str, bytes]]


class NoRecipient(Exception):
    """An event the relay cannot authenticate to anyone: set aside with `reason` (never content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LegacyRecipients:
    """The topic names that say who an event written without a recipient is for."""

    decisions: str
    card_dispatches: str
    dead_letters: str
    bank_request: tuple[str, str]  # a bank's request topic is head + bank code + tail

    @classmethod
    def of(cls, topics: Topics) -> LegacyRecipients:
        head, _, tail = topics.bank_requests("\0").partition("\0")
        return cls(topics.decisions, topics.card_dispatches, topics.dead_letters, (head, tail))

    def recipient(self, topic: str, value: bytes) -> Party:
        """The party an event on `topic` is for; NoRecipient when neither the topic nor the record says."""
        if topic == self.dead_letters:
            return BUREAU
        head, tail = self.bank_request
        if len(topic) > len(head) + len(tail) and topic.startswith(head) and topic.endswith(tail):
            try:
                return bank(topic[len(head) : len(topic) - len(tail)])
            except ConfigurationError as exc:
                raise NoRecipient("no recipient: its bank request topic names no valid bank code") from exc
        if topic in (self.decisions, self.card_dispatches):
            try:
                event = decode_event(value)
            except DecodeError as exc:
                raise NoRecipient(
                    f"no recipient: written before events named theirs, and its record does not decode"
                    f" ({exc.reason})"
                ) from exc
            if isinstance(event, DecisionIssued | CardDispatched):
                return branch(event.branch_code)
        raise NoRecipient(
            "no recipient: written before events named theirs, and its topic does not say who it is for"
        )


@dataclass(frozen=True, slots=True)
class RelayTrust:
    """The bureau's keys, the public keys of the parties and the legacy topic rules (picklable)."""

    keys: PartyKeys
    directory: Directory
    legacy: LegacyRecipients

    @classmethod
    def load(cls, conn: Conn, settings: Settings) -> RelayTrust:
        """The bureau's keys (ConfigurationError when missing outside development) and the registered public
        keys, read in the caller's transaction."""
        return cls(
            bureau_keys(settings), party_keys_repo.load_directory(conn), LegacyRecipients.of(Topics(settings))
        )

    def stamper(self) -> HeaderStamper:
        return HeaderStamper(self)


@dataclass(slots=True)
class HeaderStamper:
    """One relay process's signer: the headers of each event, its recipient parsed once per text."""

    trust: RelayTrust
    _signer: Signer = field(init=False)
    _parties: dict[str, Party] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._signer = Signer(self.trust.keys, self.trust.directory)

    def headers(self, recipient: str | None, topic: str, key: bytes | None, value: bytes) -> Headers:
        """The bureau's channel headers for the event; NoRecipient (the event is set aside) when it is for no
        one the bureau can name or for a party without registered keys."""
        party = self._party(recipient) if recipient else self.trust.legacy.recipient(topic, value)
        try:
            return self._signer.headers(party, key, value)
        except UnknownParty as exc:
            raise NoRecipient(
                f"recipient {party} has no registered seal key: register its public keys"
                " (issuance keys register), then retry the event (issuance set-aside retry)"
            ) from exc

    def _party(self, text: str) -> Party:
        party = self._parties.get(text)
        if party is None:
            party = self._parties[text] = Party.parse(text)
        return party

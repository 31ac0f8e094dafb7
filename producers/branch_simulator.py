"""The branches and the card holders, simulated: what happens to a card after the vendor dispatched it.

One run (`issuance branch simulate`):

1. reads CardDispatched (its own consumer group) until idle and confirms the receipt of each card at its
   branch (CardReceived, with a counter operator's id);
2. collects a deterministic fraction of the cards received and not yet collected (CardCollected, the holder's
   identity checked at the counter);
3. for a deterministic fraction of the cards collected in this run, sends the holder's FINANCIAL_ACTIVATION
   application and its signed agreement (the bank's current terms) to the branches' input topics, through the
   same client as `issuance submit`.

Everything it decides is written to its own ledger (schema branch_sim) before it is sent and marked once the
broker acknowledged it: a re-run first sends again what was not acknowledged (the same bytes, the same ids),
and never decides a second receipt, collection or activation for one card. The draws come from (seed, run
number, card number), so a later run collects other cards of those still waiting.

Each simulated branch speaks with its own keys (`keys_dir/parties/branch-<code>.key`): its card events carry
its channel headers to the bureau, and a dispatch is acted on only when the bureau authenticated it to that
branch (the record's key and branch code); any other is counted as refused and skipped.

The holder's identity for an activation (ID number, name, phone) is read from the bureau's records through
the Vault: a stand-in for the branch's own files of the holder, who shows their ID card at the counter.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from consumers.loop import LoopOptions, make_producer, run_loop, send_all
from issuance.crypto import Vault
from issuance.domain.business_dates import BUSINESS_ZONE
from issuance.domain.model import ApplicationType, Channel, Material
from issuance.errors import ConfigurationError, DecodeError
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import CardCollected, CardDispatched, CardReceived, decode_event, event_id
from issuance.services.endpoints import Endpoints
from issuance.settings import Settings
from issuance.store import branch_ledger as ledger
from issuance.store import party_keys_repo
from issuance.store.branch_ledger import Conn, Delivered, LedgerCard
from issuance.store.db import connect
from issuance.store.roles import BRANCH_SIMULATOR
from issuance.trust.channel import Signer, Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory
from issuance.trust.keystore import partner_keys
from issuance.trust.parties import BUREAU, branch
from producers.client import BranchClient
from producers.credentials import SenderKeys

log = logging.getLogger(__name__)

MATERIALS = (Material.RESIDENT_ID_CARD, Material.SOCIAL_SECURITY_CARD)
MATERIALS_OF_A_MINOR = (*MATERIALS, Material.HOUSEHOLD_REGISTER)
OPERATORS_PER_BRANCH = 5
OPENING_HOUR = time(9, 30)


@dataclass(frozen=True, slots=True)
class BranchOptions:
    """How many of the waiting cards the holders collect and activate, and when to stop reading."""

    collect_rate: float = 1.0
    activate_rate: float = 1.0
    until_idle: float = 5.0
    seed: int = 0
    batch_size: int = 1_000
    # The business day the branches act on (their events and the holders' applications are dated that day,
    # at the counters' opening hour); None: now. A night reads applications dated up to its business date.
    day: date | None = None

    def moment(self) -> datetime:
        """When the branches act: `day` at the opening hour in the bureau's time zone, or now."""
        if self.day is None:
            return datetime.now(UTC)
        return datetime.combine(self.day, OPENING_HOUR, BUSINESS_ZONE)


@dataclass(slots=True)
class BranchStats:
    """What one run did."""

    run_no: int = 0
    dispatches: int = 0  # CardDispatched read
    unreadable: int = 0  # dispatches that could not be read (skipped: the branch has nothing to act on)
    refused: int = 0  # dispatches not authenticated by the bureau to their branch (skipped)
    receipts: int = 0  # CardReceived sent now
    collections: int = 0
    activations: int = 0  # FINANCIAL_ACTIVATION applications (each with its agreement)
    no_identity: int = 0  # collected cards whose holder could not be found for an activation
    resent: int = 0  # decided by an earlier run, not acknowledged then, sent now


def group_id(settings: Settings) -> str:
    """The branch simulator's consumer group (its own: the bureau's consumer is not disturbed)."""
    return f"{settings.topic_prefix}branch-simulator"


def draw(seed: int, run_no: int, card_number: str, what: str) -> float:
    """A deterministic number in [0, 1) for one decision about one card."""
    digest = hashlib.sha256(f"{seed}:{run_no}:{card_number}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def operator_id(branch_code: str, seed: int, card_number: str) -> str:
    """The counter operator who handles the card (a staff id of its branch)."""
    number = int(draw(seed, 0, card_number, "operator") * OPERATORS_PER_BRANCH) + 1
    return f"{branch_code}-OP{number:02d}"


def receipt(dispatch: CardDispatched, seed: int, at: datetime) -> CardReceived:
    """The branch's confirmation that a dispatched card arrived."""
    return CardReceived(
        event_id=event_id("card-received", dispatch.card_number, dispatch.event_id),
        card_number=dispatch.card_number,
        branch_code=dispatch.branch_code,
        operator_id=operator_id(dispatch.branch_code, seed, dispatch.card_number),
        received_at=at,
    )


def collection(card: LedgerCard, seed: int, at: datetime) -> CardCollected:
    """The holder's collection after the identity check."""
    return CardCollected(
        event_id=event_id("card-collected", card.card_number, card.receipt_event_id),
        card_number=card.card_number,
        branch_code=card.branch_code,
        identity_checked=True,
        operator_id=operator_id(card.branch_code, seed, card.card_number),
        collected_at=at,
    )


class BranchKeys:
    """The simulated branches' own keys, loaded once per branch: a Signer of its card events to the bureau and
    a Verifier of what the bureau sent it."""

    def __init__(self, settings: Settings, directory: Directory) -> None:
        self._settings = settings
        self._directory = directory
        self._signers: dict[str, Signer] = {}
        self._verifiers: dict[str, Verifier] = {}

    def signer(self, branch_code: str) -> Signer:
        signer = self._signers.get(branch_code)
        if signer is None:
            own = partner_keys(self._settings, branch(branch_code))
            signer = self._signers[branch_code] = Signer(own, self._directory)
        return signer

    def verifier(self, branch_code: str) -> Verifier:
        verifier = self._verifiers.get(branch_code)
        if verifier is None:
            own = partner_keys(self._settings, branch(branch_code))
            verifier = self._verifiers[branch_code] = Verifier(own, self._directory)
        return verifier

    def from_bureau(self, record: ConsumerRecord) -> CardDispatched | None:
        """The dispatch, when the bureau authenticated it to the branch it names (key and branch code)."""
        key = bytes(record.key or b"").decode("utf-8", "replace")
        value = bytes(record.value or b"")
        try:
            sender = self.verifier(key).sender(record.headers, record.key, value)
        except (TrustFailure, ConfigurationError) as exc:
            log.warning(
                "dispatch at %s/%s@%s refused: %s", record.topic, record.partition, record.offset, exc
            )
            return None
        try:
            event = decode_event(value)
        except DecodeError:
            return None
        if sender != BUREAU or not isinstance(event, CardDispatched) or event.branch_code != key:
            log.warning(
                "dispatch at %s/%s@%s refused: not the bureau's to its branch",
                record.topic,
                record.partition,
                record.offset,
            )
            return None
        return event


class BranchSimulator:
    """One run of the simulated branches over the ledger connection, a producer and the branch client."""

    def __init__(
        self,
        conn: Conn,
        producer: KafkaProducer,
        client: BranchClient,
        vault: Vault,
        topics: Topics,
        options: BranchOptions,
        keys: BranchKeys,
    ) -> None:
        self._conn = conn
        self._producer = producer
        self._client = client
        self._vault = vault
        self._topics = topics
        self._options = options
        self._keys = keys
        self.stats = BranchStats()

    def start(self) -> None:
        """Begin a run: send again what an earlier run decided and the broker did not acknowledge."""
        self.stats.run_no = ledger.start_run(self._conn, self._options.seed)
        receipts = ledger.unsent_receipts(self._conn)
        self._send_events([(c.card_number, c.branch_code, c.receipt_payload) for c in receipts])
        ledger.mark_receipts_sent(self._conn, [c.card_number for c in receipts])
        collections = ledger.unsent_collections(self._conn)
        self._send_events([(c.card_number, c.branch_code, c.collection_payload or b"") for c in collections])
        ledger.mark_collections_sent(self._conn, [c.card_number for c in collections])
        activations = ledger.unsent_activations(self._conn)
        self._send_activations(activations)
        self.stats.resent += len(receipts) + len(collections) + len(activations)

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """A batch of dispatches: record the new cards with their receipts, send them, mark them sent."""
        now = self._options.moment()
        delivered: list[Delivered] = []
        for record in records:
            self.stats.dispatches += 1
            event = self._keys.from_bureau(record)
            if event is None:
                self.stats.refused += 1
                continue
            confirm = receipt(event, self._options.seed, now)
            delivered.append(
                Delivered(
                    event.card_number,
                    event.application_id,
                    event.branch_code,
                    event.event_id,
                    confirm.event_id,
                    confirm.to_bytes(),
                )
            )
        with self._conn.transaction():
            new = set(ledger.add_delivered(self._conn, delivered))
        sending = [
            (d.card_number, d.branch_code, d.receipt_payload) for d in delivered if d.card_number in new
        ]
        self._send_events(sending)
        ledger.mark_receipts_sent(self._conn, [number for number, _, _ in sending])
        self.stats.receipts += len(sending)

    def collect(self) -> None:
        """The holders collect a fraction of the cards waiting at their branches."""
        now = self._options.moment()
        chosen: list[tuple[str, str, bytes]] = []
        with self._conn.transaction():
            for card in ledger.to_collect(self._conn):
                if draw(self._options.seed, self.stats.run_no, card.card_number, "collect") >= (
                    self._options.collect_rate
                ):
                    continue
                event = collection(card, self._options.seed, now)
                payload = event.to_bytes()
                ledger.decide_collection(
                    self._conn, card.card_number, event.event_id, payload, self.stats.run_no
                )
                chosen.append((card.card_number, card.branch_code, payload))
        self._send_events(chosen)
        ledger.mark_collections_sent(self._conn, [number for number, _, _ in chosen])
        self.stats.collections += len(chosen)

    def activate(self) -> None:
        """A fraction of the holders who collected their card now activate its savings function."""
        now = self._options.moment()
        with self._conn.transaction():
            for card in ledger.collected_in(self._conn, self.stats.run_no):
                if draw(self._options.seed, self.stats.run_no, card.card_number, "activate") >= (
                    self._options.activate_rate
                ):
                    continue
                at_terminal = draw(self._options.seed, 0, card.card_number, "channel") < 0.5
                channel = Channel.SELF_SERVICE_TERMINAL if at_terminal else Channel.COUNTER
                ledger.decide_activation(
                    self._conn,
                    card.card_number,
                    f"FA-{card.card_number}",
                    f"AG-FA-{card.card_number}",
                    channel.value,
                    now,
                )
        self._send_activations(ledger.unsent_activations(self._conn))

    def _send_events(self, messages: Sequence[tuple[str, str, bytes]]) -> None:
        """Card events (card number, branch code, payload) keyed by card number, so that one card's receipt
        and collection stay in order; each with its branch's channel headers to the bureau."""
        topic = self._topics.card_events
        keyed = [(topic, number.encode(), payload) for number, _, payload in messages]
        headers = [
            self._keys.signer(code).headers(BUREAU, key, payload)
            for (_, key, payload), (_, code, _) in zip(keyed, messages, strict=True)
        ]
        send_all(self._producer, keyed, headers)

    def _send_activations(self, cards: Sequence[LedgerCard]) -> None:
        sent: list[str] = []
        submissions = []
        for card in cards:
            records = self._activation_records(card)
            if records is None:
                self.stats.no_identity += 1
                continue
            application, agreement = records
            submissions.append(self._client.submit_application(application))
            submissions.append(self._client.submit_agreement(agreement))
            sent.append(card.card_number)
        self._client.flush()
        for submission in submissions:
            submission.result(timeout=0)
        ledger.mark_activations_sent(self._conn, sent)
        self.stats.activations += len(sent)

    def _activation_records(self, card: LedgerCard) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The holder's application and signed agreement, as a branch system submits them."""
        holder = ledger.holder(self._conn, card.application_id)
        if holder is None or holder.phone_enc is None:
            return None
        assert card.activation_application_id and card.activation_agreement_id and card.activation_at
        at = card.activation_at.isoformat()
        guardian = None if holder.guardian_id_enc is None else self._vault.decrypt(holder.guardian_id_enc)
        application = {
            "application_id": card.activation_application_id,
            "application_type": ApplicationType.FINANCIAL_ACTIVATION.value,
            "branch_code": card.branch_code,
            "bank_code": holder.bank_code,
            "channel": card.activation_channel,
            "applicant": {
                "id_number": self._vault.decrypt(holder.id_number_enc),
                "name": self._vault.decrypt(holder.name_enc),
                "phone": self._vault.decrypt(holder.phone_enc),
            },
            "card_number": card.card_number,
            # A minor comes with the guardian and the household register, as on the card's application.
            "guardian_id_number": guardian,
            "materials": [m.value for m in (MATERIALS if guardian is None else MATERIALS_OF_A_MINOR)],
            "submitted_at": at,
        }
        agreement_id = card.activation_agreement_id
        agreement = {
            "agreement_id": agreement_id,
            "application_id": card.activation_application_id,
            "bank_code": holder.bank_code,
            "terms_version": holder.terms_version,
            "document_sha256": hashlib.sha256(f"{agreement_id}/{holder.bank_code}".encode()).hexdigest(),
            "signed_at": at,
            "channel": card.activation_channel,
        }
        return application, agreement


def simulate(
    settings: Settings, endpoints: Endpoints, options: BranchOptions, stop: threading.Event
) -> dict[str, int]:
    """One run of the branches: receipts, collections, activations; what it did."""
    ensure_topics(endpoints.kafka, settings, [])
    topics = Topics(settings)
    vault = Vault.from_settings(settings)
    producer = make_producer(endpoints.kafka)
    try:
        with (
            BranchClient(
                endpoints.kafka,
                topics,
                SenderKeys.from_settings(settings, endpoints.database_url),
                client_id="issuance-branch-sim",
            ) as client,
            connect(
                endpoints.database_url,
                role=BRANCH_SIMULATOR,
                autocommit=True,
                application_name="branch-simulator",
            ) as conn,
        ):
            keys = BranchKeys(settings, party_keys_repo.load_directory(conn))
            branches = BranchSimulator(conn, producer, client, vault, topics, options, keys)
            branches.start()
            loop = LoopOptions(
                endpoints.kafka,
                (topics.card_dispatches,),
                group_id(settings),
                options.until_idle,
                options.batch_size,
                join_timeout=settings.consumer_join_timeout_s,
            )
            run_loop(loop, branches.handle, stop)
            if not stop.is_set():
                branches.collect()
                branches.activate()
            return asdict(branches.stats)
    finally:
        producer.close()

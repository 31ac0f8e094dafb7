"""Key pairs of a bureau and a few partners, generated in memory: what unit and pipeline tests sign, seal,
verify and open with when no keystore or database is at hand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from issuance.errors import ConfigurationError
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU, Party
from pipelines.transforms.decode import NightTrust
from producers.client import Preparer
from producers.credentials import SenderKeys


class WireParties:
    """The bureau and `partners`, each with fresh keys, all registered in one directory."""

    def __init__(self, partners: Iterable[Party]) -> None:
        self.bureau = PartyKeys.generate(BUREAU)
        self.keys = {party: PartyKeys.generate(party) for party in partners}
        self.directory = Directory([self.bureau.public(), *(k.public() for k in self.keys.values())])

    def _keys_of(self, party: Party) -> PartyKeys:
        if party not in self.keys:
            raise ConfigurationError(f"no key file for {party} in this keystore")
        return self.keys[party]

    def sender_keys(self) -> SenderKeys:
        """What a branch system holding every partner's key sends with."""
        return SenderKeys(self.directory, self._keys_of)

    def preparer(self, topics: Topics | None = None, today: date = date(2026, 11, 1)) -> Preparer:
        return Preparer(topics or Topics(Settings(topic_prefix="u.")), self.sender_keys(), lambda: today)

    def trust(self) -> NightTrust:
        """What the night verifies and opens with."""
        return NightTrust((self.bureau,), self.directory)

"""What a branch system sends with: its parties' private keys and the directory of registered public keys.

Every application is signed by the branch it names and every agreement by the bank it names (channel headers
of `issuance.trust.channel`, one Signer per sending party), and an application's personal fields are sealed
to the bureau's registered seal key. A party whose private key this keystore lacks is a ConfigurationError
before anything of its record is sent; in production each branch and bank holds only its own key file, the
simulators and `issuance submit` on a development machine hold the simulated partners' files.
"""

from __future__ import annotations

from collections.abc import Callable

from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory
from issuance.trust.channel import Signer
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.keystore import partner_keys
from issuance.trust.parties import BUREAU, Party
from issuance.trust.sealing import Sealer

Headers = list[tuple[str, bytes]]


class SenderKeys:
    """Signers by sending party (loaded on first use, then kept) and one Sealer to the bureau."""

    def __init__(self, directory: Directory, keys_of: Callable[[Party], PartyKeys]) -> None:
        self.directory = directory
        self._keys_of = keys_of
        self._signers: dict[Party, Signer] = {}
        self._sealer: Sealer | None = None

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str | None = None) -> SenderKeys:
        """The keystore of `settings` (ISSUANCE_KEYS_DIR) and the directory registered in the bureau's
        database (the configured or embedded one)."""
        url = database_url or resolve(settings).database_url
        with connect(url, autocommit=True, application_name="issuance-branch-keys") as conn:
            directory = load_directory(conn)
        return cls(directory, lambda party: partner_keys(settings, party))

    def signer(self, party: Party) -> Signer:
        """The party's Signer; ConfigurationError naming the key file when this keystore lacks it."""
        signer = self._signers.get(party)
        if signer is None:
            signer = self._signers[party] = Signer(self._keys_of(party), self.directory)
        return signer

    def headers(self, party: Party, key: bytes | None, value: bytes) -> Headers:
        """The channel headers of one message `party` sends to the bureau."""
        return self.signer(party).headers(BUREAU, key, value)

    def to_bureau(self) -> Sealer:
        """The Sealer of personal fields: the bureau's newest registered seal key (UnknownParty if none)."""
        if self._sealer is None:
            self._sealer = Sealer.to(self.directory, BUREAU)
        return self._sealer

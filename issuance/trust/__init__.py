"""Trust on the wire: who the parties are, their keys, personal data sealed to its reader, authenticated
messages and files. Pure apart from reading and writing key files (issuance.trust.keystore)."""

from issuance.trust.channel import HEADER_CHANNEL, HEADER_MAC, Signer, Verifier, sign_file, verify_file
from issuance.trust.errors import TrustFailure, UnknownParty
from issuance.trust.keys import Directory, PartyKeys, PublicKeys, Purpose, key_id
from issuance.trust.parties import BUREAU, Party, PartyKind
from issuance.trust.sealing import Sealer, Unsealer, open_personal, seal_personal

__all__ = [
    "BUREAU",
    "HEADER_CHANNEL",
    "HEADER_MAC",
    "Directory",
    "Party",
    "PartyKeys",
    "PartyKind",
    "PublicKeys",
    "Purpose",
    "Sealer",
    "Signer",
    "TrustFailure",
    "UnknownParty",
    "Unsealer",
    "Verifier",
    "key_id",
    "open_personal",
    "seal_personal",
    "sign_file",
    "verify_file",
]

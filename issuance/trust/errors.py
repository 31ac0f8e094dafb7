"""What goes wrong with trust on the wire: a message, blob or file that does not authenticate or open, and a
party nobody registered a key for."""

from __future__ import annotations

from issuance.domain.model import DeadLetterReason
from issuance.errors import ConfigurationError, IssuanceError


class TrustFailure(IssuanceError):
    """Bytes from the wire that are not what they claim: unsigned, forged, altered, or sealed to someone else.

    `reason` is the dead-letter reason the message is set aside with. `detail` says what failed in terms of
    the format (lengths, versions, which check); it never quotes the bytes, which may hold personal data or
    whatever an attacker chose to put there."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[TrustFailure], tuple[DeadLetterReason, str]]:
        return (type(self), (self.reason, self.detail))


class UnknownParty(ConfigurationError):
    """No unrevoked key of the party is registered: nothing can be sealed to it."""


def seal_invalid(detail: str) -> TrustFailure:
    return TrustFailure(DeadLetterReason.SEAL_INVALID, detail)


def signature_invalid(detail: str) -> TrustFailure:
    return TrustFailure(DeadLetterReason.SIGNATURE_INVALID, detail)


def signature_missing(detail: str) -> TrustFailure:
    return TrustFailure(DeadLetterReason.SIGNATURE_MISSING, detail)

"""The project's own error hierarchy: library errors are translated into these at the edge."""

from __future__ import annotations

from collections.abc import Iterable


class IssuanceError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(IssuanceError):
    """Settings are missing or inconsistent."""


class ServicesNotRunning(IssuanceError):
    """Neither configured servers nor the embedded services are available."""


class InputError(IssuanceError):
    """A user-supplied file or argument is invalid (exit code 2)."""


class DecodeError(IssuanceError):
    """A message could not be turned into a contract record."""

    reason: str = "MALFORMED_MESSAGE"


class MalformedMessage(DecodeError):
    """The bytes are not a decodable message."""

    reason = "MALFORMED_MESSAGE"


class EmptyMessage(DecodeError):
    """The record has no value at all (a null or zero-length value)."""

    reason = "EMPTY_MESSAGE"


class UnknownSchema(DecodeError):
    """The message names a writer schema this system does not know."""

    reason = "UNKNOWN_SCHEMA"


class SchemaViolation(DecodeError):
    """The message decodes but breaks the contract.

    `problems` lists (field, what is wrong) pairs, field names as dotted paths; never field values, which may
    be personal data. `reason` stays the dead-letter reason code.
    """

    reason = "SCHEMA_VIOLATION"

    def __init__(self, message: str = "", problems: Iterable[tuple[str, str]] = ()) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        if not message:
            message = "; ".join(f"{field}: {what}" for field, what in self.problems) or "contract violation"
        super().__init__(message)

    @property
    def field(self) -> str | None:
        """The first offending field, if any."""
        return self.problems[0][0] if self.problems else None

    def __reduce__(self) -> tuple[type[SchemaViolation], tuple[str, tuple[tuple[str, str], ...]]]:
        return (type(self), (str(self), self.problems))


class ReconciliationFailed(IssuanceError):
    """A nightly run's counts do not balance."""


class BrokerUnavailable(IssuanceError):
    """The Kafka broker did not answer within the retry budget."""

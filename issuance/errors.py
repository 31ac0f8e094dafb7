"""The project's own error hierarchy: library errors are translated into these at the edge."""

from __future__ import annotations


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


class UnknownSchema(DecodeError):
    """The message names a writer schema this system does not know."""

    reason = "UNKNOWN_SCHEMA"


class SchemaViolation(DecodeError):
    """The message decodes but breaks the contract."""

    reason = "SCHEMA_VIOLATION"


class ReconciliationFailed(IssuanceError):
    """A nightly run's counts do not balance."""


class BrokerUnavailable(IssuanceError):
    """The Kafka broker did not answer within the retry budget."""

"""The parties that exchange messages with the bureau, named the same way in keys, topics and audit lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from issuance.errors import ConfigurationError

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PartyKind(StrEnum):
    """Who a party is to the bureau."""

    BUREAU = "bureau"
    BRANCH = "branch"
    BANK = "bank"
    VENDOR = "vendor"


@dataclass(frozen=True, slots=True)
class Party:
    """One party: its kind and its code in the reference data (the bureau's code is "bureau")."""

    kind: PartyKind
    code: str

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ConfigurationError(f"party code {self.code!r} must match {_CODE.pattern}")

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.code}"

    @classmethod
    def parse(cls, text: str) -> Party:
        """A party from its text form "kind:code" (e.g. "bank:ICBC")."""
        kind, sep, code = text.strip().partition(":")
        try:
            return cls(PartyKind(kind), code) if sep else _invalid(text)
        except ValueError:
            return _invalid(text)

    @property
    def file_stem(self) -> str:
        """The name of this party's key file, without suffix: "bank-ICBC"."""
        return f"{self.kind.value}-{self.code}"


def _invalid(text: str) -> Party:
    kinds = ", ".join(kind.value for kind in PartyKind)
    raise ConfigurationError(f"{text!r} is not a party: write kind:code with kind one of {kinds}")


BUREAU = Party(PartyKind.BUREAU, "bureau")


def branch(code: str) -> Party:
    return Party(PartyKind.BRANCH, code)


def bank(code: str) -> Party:
    return Party(PartyKind.BANK, code)


def vendor(code: str) -> Party:
    return Party(PartyKind.VENDOR, code)

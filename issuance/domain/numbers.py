"""The numbers a personalized card carries, each derived deterministically from an allocated sequence.

Card number: the sequence (0 <= n < 36**8) written in base 36 with the digits 0-9A-Z, zero-padded to an
8-character body, followed by one ISO 7064 MOD 37,36 check character over the body
(`stdnum.iso7064.mod_37_36`, alphabet 0-9A-Z), 9 characters in all. The official algorithm is not public; MOD
37,36 detects every single-character substitution and nearly every swap of adjacent characters.

Card identification code: the issuing area's 6-digit code, the fixed `D156000005`, then the card sequence as
16 zero-padded uppercase hex digits, 32 characters in all. The sequence is allocated once per card
system-wide, so the last 16 characters are unique per card whatever the area; plain hex (no keyed permutation)
keeps it reversible for audits and needs no key to manage.

Bank account number: the bank's BIN (6 to 8 digits), the account sequence zero-padded to fill 18 digits, then
one Luhn check digit (`stdnum.luhn`), 19 digits in all, the length of an RMB debit card number. The banks
number the accounts they open this way; the bureau accepts any number a bank assigns that has 16 to 19 digits,
starts with that bank's BIN and carries a correct Luhn digit (`is_valid_assigned_account`).
"""

from __future__ import annotations

from stdnum import luhn
from stdnum.iso7064 import mod_37_36

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CARD_BODY_LENGTH = 8
CARD_NUMBER_LENGTH = CARD_BODY_LENGTH + 1
MAX_CARD_SEQUENCE = len(ALPHABET) ** CARD_BODY_LENGTH - 1
CARD_ID_INFIX = "D156000005"
MAX_CARD_ID_SEQUENCE = 16**16 - 1
ACCOUNT_LENGTH = 19
_ALPHABET_SET = frozenset(ALPHABET)
_DIGITS = frozenset("0123456789")


def card_body(sequence: int) -> str:
    """The 8-character base-36 body for a card sequence."""
    if not 0 <= sequence <= MAX_CARD_SEQUENCE:
        raise ValueError(f"card sequence {sequence} outside 0..{MAX_CARD_SEQUENCE}")
    digits = []
    for _ in range(CARD_BODY_LENGTH):
        sequence, rest = divmod(sequence, 36)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def card_number(sequence: int) -> str:
    """The 9-character card number (body + MOD 37,36 check character) for a card sequence."""
    body = card_body(sequence)
    return body + mod_37_36.calc_check_digit(body)


def is_valid_card_number(number: str) -> bool:
    """True for 9 characters of 0-9A-Z whose last is the MOD 37,36 check character of the first 8."""
    return (
        len(number) == CARD_NUMBER_LENGTH
        and _ALPHABET_SET.issuperset(number)
        and mod_37_36.checksum(number) == 1
    )


def card_identification_code(area_code: str, sequence: int) -> str:
    """Area code + D156000005 + the card sequence as 16 uppercase hex digits."""
    if len(area_code) != 6 or not _DIGITS.issuperset(area_code):
        raise ValueError(f"area code {area_code!r} is not 6 digits")
    if not 0 <= sequence <= MAX_CARD_ID_SEQUENCE:
        raise ValueError(f"card sequence {sequence} outside 0..{MAX_CARD_ID_SEQUENCE}")
    return f"{area_code}{CARD_ID_INFIX}{sequence:016X}"


def bank_account_number(bin_: str, sequence: int) -> str:
    """BIN + zero-padded account sequence + Luhn check digit, 19 digits."""
    if not 6 <= len(bin_) <= 8 or not _DIGITS.issuperset(bin_):
        raise ValueError(f"BIN {bin_!r} is not 6 to 8 digits")
    width = ACCOUNT_LENGTH - 1 - len(bin_)
    if not 0 <= sequence < 10**width:
        raise ValueError(f"account sequence {sequence} does not fit {width} digits after BIN {bin_}")
    body = f"{bin_}{sequence:0{width}d}"
    return body + luhn.calc_check_digit(body)


ASSIGNED_ACCOUNT_LENGTHS = range(16, 20)


def is_valid_assigned_account(number: str, bin_: str) -> bool:
    """A number a bank may assign: 16 to 19 digits, starting with its BIN, with a correct Luhn digit."""
    return (
        len(number) in ASSIGNED_ACCOUNT_LENGTHS
        and _DIGITS.issuperset(number)
        and bool(bin_)
        and number.startswith(bin_)
        and luhn.is_valid(number)
    )


def is_valid_bank_account(number: str, bin_: str | None = None) -> bool:
    """True for 19 digits with a correct Luhn digit (and starting with `bin_` when given)."""
    return (
        len(number) == ACCOUNT_LENGTH
        and _DIGITS.issuperset(number)
        and (bin_ is None or number.startswith(bin_))
        and luhn.is_valid(number)
    )

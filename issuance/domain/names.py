"""Names as the registry compares them: one written form however a counter typed it.

Minority names written in Chinese characters join their parts with a middle dot (买买提·艾力). Counters type
that dot in many ways: the interpunct U+00B7, a bullet U+2022, the katakana middle dot U+30FB (or its
half-width form), the hyphenation point U+2027, a full stop or its full-width form U+FF0E. Unicode NFKC folds
full-width and compatibility forms first; every dot variant then becomes U+00B7, and spaces around it or at
either end go.
"""

from __future__ import annotations

import re
import unicodedata

MIDDLE_DOT = "\u00b7"
# After NFKC: U+FF0E is ".", U+FF65 is U+30FB, U+0387 is U+00B7.
_DOTS = re.compile(r"\s*[\u00b7\u2022\u30fb\u2027\u2219\u22c5.]\s*")
_SPACES = re.compile(r"\s+")


def canonical_name(name: str) -> str:
    """NFKC, every middle-dot variant written U+00B7, runs of white space as one space, no outer spaces."""
    folded = unicodedata.normalize("NFKC", name)
    return _SPACES.sub(" ", _DOTS.sub(MIDDLE_DOT, folded)).strip()


def same_name(typed: str, registered: str) -> bool:
    """True when the two names are the same once both are written canonically."""
    return typed == registered or canonical_name(typed) == canonical_name(registered)

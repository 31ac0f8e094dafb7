"""README's reason tables are the catalogue's: generated from issuance/reason_text.py, they cannot drift.

When a reason or its message changes, `UPDATE_README=1 pytest tests/unit/test_readme_reasons.py` rewrites the
tables between their markers (and still fails once, so that the change is looked at and committed).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path

import pytest

from issuance import i18n
from issuance.domain.model import DeadLetterReason, Reason
from issuance.reason_text import reason_message

README = Path(__file__).resolve().parents[2] / "README.md"
TABLES: dict[str, type[StrEnum]] = {"reasons": Reason, "dead-letter-reasons": DeadLetterReason}


def _cell(text: str) -> str:
    """A message as a table cell: a pipe would end the cell."""
    return text.replace("|", "\\|")


def table(codes: type[StrEnum]) -> str:
    """The Markdown table of a reason enum: code, the Chinese message, the English one."""
    zh_cn, en = i18n.lang("zh_CN"), i18n.lang("en")
    rows = ["| code | 中文 | English |", "|---|---|---|"]
    rows += [
        f"| `{code}` | {_cell(reason_message(code, zh_cn))} | {_cell(reason_message(code, en))} |"
        for code in codes
    ]
    return "\n".join(rows)


def _section(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}: generated[^\n]*-->\n)(.*?)(<!-- /{name} -->)", re.DOTALL)


@pytest.mark.parametrize("name", TABLES)
def test_readme_table_is_the_catalogue(name: str) -> None:
    text = README.read_text(encoding="utf-8")
    found = _section(name).search(text)
    assert found, f"README.md has no <!-- {name}: generated ... --> ... <!-- /{name} --> section"
    expected = table(TABLES[name]) + "\n"
    if found.group(2) != expected and os.environ.get("UPDATE_README"):
        README.write_text(
            text[: found.start(2)] + expected + text[found.end(2) :], encoding="utf-8", newline="\n"
        )
    assert found.group(2) == expected, (
        f"README.md's {name} table differs from issuance/reason_text.py and reasons.po: run"
        " UPDATE_README=1 pytest tests/unit/test_readme_reasons.py and commit README.md"
    )


def test_a_message_cannot_break_its_table_row() -> None:
    for name, codes in TABLES.items():
        for row in table(codes).splitlines()[2:]:
            assert row.count("|") - row.count("\\|") == 4, (name, row)

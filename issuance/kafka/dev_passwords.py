"""Random passwords for the compose stack's Kafka principals, written as an environment file.

docker-compose.yml reads each principal's password from a variable (`KAFKA_PASSWORD_<PRINCIPAL>`, e.g.
KAFKA_PASSWORD_BANK_ICBC for `bank-icbc`) and refuses to start without it; the broker turns them into SCRAM
credentials when it formats its storage. This writes the variables that are missing with fresh random values
and keeps the ones already there, so running it again never changes a password the broker already holds.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

# What the broker's entrypoint accepts: no quote, comma or bracket can end up in its SCRAM or JAAS syntax.
PASSWORD_PATTERN = re.compile(r"^[A-Za-z0-9_-]{24,}$")
PRINCIPAL_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")


def password_variable(principal: str) -> str:
    """The environment variable holding a principal's password: bank-icbc -> KAFKA_PASSWORD_BANK_ICBC."""
    if not PRINCIPAL_PATTERN.fullmatch(principal):
        raise ValueError(f"principal names are lower-case letters, digits and '-': {principal!r}")
    return "KAFKA_PASSWORD_" + principal.upper().replace("-", "_")


def write_passwords(path: Path, principals: Iterable[str]) -> list[str]:
    """Add a random password for every principal missing from the file (mode 0600); return the variables
    added. Existing lines are kept as they are."""
    text = path.read_text() if path.exists() else ""
    present = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    added = [name for name in (password_variable(p) for p in principals) if name not in present]
    lines = [f"{name}={secrets.token_urlsafe(24)}" for name in added]
    if text and not text.endswith("\n"):
        text += "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "".join(line + "\n" for line in lines))
    os.chmod(path, 0o600)
    return added

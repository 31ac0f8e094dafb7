"""Dashboard users and roles from a configuration file, with argon2 password hashes.

The file (ISSUANCE_DASHBOARD_USERS, JSON) holds
{"users": [{"username": "...", "password_hash": "$argon2id$...", "role": "bureau|branch|bank",
"branch_code": "...", "bank_code": "..."}]}. `issuance dashboard add-user` writes an entry (the password
hashed, never stored or shown in clear); `issuance dashboard hash-password` prints a hash for it.
Demo users (generated, their passwords printed) exist only with the embedded services.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from issuance.errors import ConfigurationError
from issuance.store.report_queries import Role, Scope

USERS_FILE = "dashboard-users.json"
DEMO_LOGINS_FILE = "dashboard-demo-logins.json"

_hasher = PasswordHasher()
# Verifying against this hash when the user is unknown costs the same time as a real check.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    """A person allowed to log in, with the part of the data they may see."""

    username: str
    password_hash: str
    scope: Scope


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A generated demo account, printed for the person trying the embedded default."""

    username: str
    password: str
    role: str
    sees: str


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def _user(entry: dict[str, str], where: Path) -> User:
    """One entry of the users file, checked."""
    try:
        username, password_hash, role = entry["username"], entry["password_hash"], Role(entry["role"])
        scope = Scope(role, entry.get("branch_code"), entry.get("bank_code"))
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(f"{where}: bad user entry {entry.get('username', '?')!r}: {exc}") from exc
    return User(username, password_hash, scope)


def load_users(path: Path) -> dict[str, User]:
    """Every user of the file, by username."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read dashboard users from {path}: {exc}") from exc
    users = [_user(e, path) for e in document.get("users", [])]
    if not users:
        raise ConfigurationError(f"{path}: no users")
    return {u.username: u for u in users}


def authenticate(users: dict[str, User], username: str, password: str) -> User | None:
    """The user when the password matches, else None (same cost either way)."""
    user = users.get(username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


MIN_PASSWORD_CHARS = 12


def add_user(
    path: Path,
    username: str,
    password: str,
    role: Role,
    *,
    branch_code: str | None = None,
    bank_code: str | None = None,
    replace: bool = False,
) -> bool:
    """Add a user to the users file (created, readable by its owner only, when missing) with the password's
    argon2id hash; an existing username is refused unless `replace`. Returns True when a user was replaced.
    The file is rewritten through a temporary file and a rename, so a reader never sees half of it."""
    username = username.strip()
    if not username or len(username) > 128 or not username.isprintable():
        raise ValueError("the username must be 1 to 128 printable characters")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if (branch_code and role is not Role.BRANCH) or (bank_code and role is not Role.BANK):
        raise ValueError("a branch code goes with the branch role only, a bank code with the bank role only")
    scope = Scope(role, branch_code, bank_code)  # ValueError when the role's code is missing
    entries: list[dict[str, str]] = []
    if path.exists():
        load_users(path)  # refuses a file that is not a users file before it is rewritten
        entries = json.loads(path.read_text(encoding="utf-8"))["users"]
    replaced = any(e["username"] == username for e in entries)
    if replaced and not replace:
        raise ValueError(f"{username!r} is already in {path} (add --replace to set a new password or role)")
    entry = {"username": username, "password_hash": hash_password(password), "role": scope.role.value}
    if scope.branch_code:
        entry["branch_code"] = scope.branch_code
    if scope.bank_code:
        entry["bank_code"] = scope.bank_code
    entries = [e for e in entries if e["username"] != username] + [entry]
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    _write_private(temporary, json.dumps({"users": entries}, indent=2) + "\n")
    os.replace(temporary, path)
    return replaced


def ensure_demo_users(state_dir: Path, branch_code: str | None, bank_code: str | None) -> list[DemoLogin]:
    """Create (once) demo users for the embedded default: a bureau, a branch and a bank official."""
    state_dir.mkdir(parents=True, exist_ok=True)
    logins_path = state_dir / DEMO_LOGINS_FILE
    logins: list[DemoLogin] = []
    if logins_path.exists():
        logins = [DemoLogin(**e) for e in json.loads(logins_path.read_text(encoding="utf-8"))]
    wanted: list[tuple[str, Role, str | None, str | None, str]] = [
        ("bureau", Role.BUREAU, None, None, "everything")
    ]
    if branch_code:
        wanted.append((f"branch-{branch_code}", Role.BRANCH, branch_code, None, f"branch {branch_code} only"))
    if bank_code:
        wanted.append((f"bank-{bank_code}", Role.BANK, None, bank_code, f"bank {bank_code} only"))
    known = {d.username for d in logins}
    changed = False
    for username, role, _branch, _bank, sees in wanted:
        if username not in known:
            password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
            logins.append(DemoLogin(username, password, role.value, sees))
            changed = True
    if changed or not (state_dir / USERS_FILE).exists():
        codes = {w[0]: (w[2], w[3]) for w in wanted}
        entries = []
        for d in logins:
            branch, bank = codes.get(d.username, (None, None))
            if d.role == Role.BRANCH and branch is None:
                branch = d.username.removeprefix("branch-")
            if d.role == Role.BANK and bank is None:
                bank = d.username.removeprefix("bank-")
            entry = {"username": d.username, "password_hash": hash_password(d.password), "role": d.role}
            if branch:
                entry["branch_code"] = branch
            if bank:
                entry["bank_code"] = bank
            entries.append(entry)
        _write_private(state_dir / USERS_FILE, json.dumps({"users": entries}, indent=2))
        _write_private(logins_path, json.dumps([asdict(d) for d in logins], indent=2))
    return logins


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)

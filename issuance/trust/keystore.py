"""Private key files: the bureau's keys and the simulated partners' keys in settings.keys_dir.

    keys_dir/bureau.key                  the bureau (or ISSUANCE_BUREAU_KEY, the same text)
    keys_dir/parties/<kind>-<code>.key   one partner (a branch, bank or vendor simulator; in production each
                                         partner holds only its own file, on its own machine)

Files are written once (mode 0600, in a 0700 directory, created atomically so two processes starting together
keep one key) and never overwritten. Missing keys fail closed: only with the embedded services
(settings.development_keys_allowed) is a missing bureau key generated.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from issuance.errors import ConfigurationError
from issuance.settings import Settings
from issuance.trust.keys import PartyKeys
from issuance.trust.parties import BUREAU, Party

log = logging.getLogger(__name__)

BUREAU_KEY_FILE = "bureau.key"
PARTIES_DIR = "parties"
BUREAU_KEY_VARIABLE = "ISSUANCE_BUREAU_KEY"


def key_file(settings: Settings, party: Party) -> Path:
    """Where a party's private keys are kept in keys_dir."""
    if party == BUREAU:
        return Path(settings.keys_dir) / BUREAU_KEY_FILE
    return Path(settings.keys_dir) / PARTIES_DIR / f"{party.file_stem}.key"


def generate_command(party: Party) -> str:
    return f"issuance keys generate --party {party}"


def bureau_keys(settings: Settings) -> PartyKeys:
    """The bureau's keys: ISSUANCE_BUREAU_KEY, else keys_dir/bureau.key, else (embedded services only) a new
    key pair written there; otherwise ConfigurationError naming what to provide."""
    if settings.bureau_key is not None:
        return _parse(settings.bureau_key.get_secret_value(), BUREAU, BUREAU_KEY_VARIABLE)
    path = key_file(settings, BUREAU)
    if path.exists():
        return read_key_file(path, BUREAU)
    if settings.development_keys_allowed:
        keys = _create(path, BUREAU)
        log.warning("generated development bureau keys in %s (not for production)", path)
        return keys
    raise ConfigurationError(
        f"no bureau key: set {BUREAU_KEY_VARIABLE} or provide {path} (mode 0600); create one with "
        f"`{generate_command(BUREAU)}` and register its public keys (issuance keys register)"
    )


def partner_keys(settings: Settings, party: Party) -> PartyKeys:
    """A partner's keys from keys_dir/parties/<kind>-<code>.key (the bureau's: see bureau_keys)."""
    if party == BUREAU:
        return bureau_keys(settings)
    path = key_file(settings, party)
    if not path.exists():
        raise ConfigurationError(
            f"no key file for {party}: {path} is missing; create it with `{generate_command(party)}` and "
            "register its public keys with the bureau (issuance keys export-public, issuance keys register)"
        )
    return read_key_file(path, party)


def generate_partner_keys(settings: Settings, party: Party) -> PartyKeys:
    """The party's keys, generated into its key file when it has none (an existing file is kept)."""
    path = key_file(settings, party)
    if path.exists():
        return read_key_file(path, party)
    return _create(path, party)


def read_key_file(path: Path, party: Party) -> PartyKeys:
    """The keys in `path`, which must be `party`'s."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the key file ({type(exc).__name__})") from None
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; it should have mode 0600", path)
    return _parse(text, party, str(path))


def _parse(text: str, party: Party, source: str) -> PartyKeys:
    try:
        keys = PartyKeys.from_text(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    if keys.party != party:
        raise ConfigurationError(f"{source} holds the keys of {keys.party}, not of {party}")
    return keys


def _create(path: Path, party: Party) -> PartyKeys:
    """Write a new key pair to `path` unless another process just did; the file that exists wins."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = PartyKeys.generate(party)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(keys.to_text())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # atomic, and never replaces a key file that appeared meanwhile
    except FileExistsError:
        return read_key_file(path, party)
    finally:
        tmp.unlink(missing_ok=True)
    return keys

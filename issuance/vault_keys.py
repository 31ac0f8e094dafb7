"""Where the Vault's keys come from, kept apart from the data they protect (fail closed).

Each key is read from the first of:

1. its variable (ISSUANCE_DATA_KEYS, ISSUANCE_BLIND_INDEX_KEY), the key text itself;
2. the file its *_FILE variable names (ISSUANCE_DATA_KEYS_FILE, ...): a Docker or Kubernetes secret;
3. its file in settings.keys_dir (`data-keys`, `blind-index-key`).

A key file must be readable by its owner only: with configured servers a group- or world-readable file is
refused (a key that every account on the host can read protects nothing; a Kubernetes secret volume needs
defaultMode 0400, a Compose/Swarm secret mode 0400). With the embedded services it is only a warning.

Keys are generated only when settings.development_keys_allowed (the embedded services), into keys_dir, never
into state_dir. Earlier versions generated them into state_dir/keys.json, also beside configured servers; such
a file is moved into keys_dir once (the data sealed under it stays readable). With configured servers and a
key missing, a ConfigurationError names what to provide.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from issuance.crypto import generate_key_text
from issuance.errors import ConfigurationError
from issuance.settings import Settings

log = logging.getLogger(__name__)

# The development keys file of earlier versions, in state_dir.
LEGACY_KEYS_FILE = "keys.json"


@dataclass(frozen=True, slots=True)
class KeySource:
    """One key: its settings field (the variable), the field naming its file, its file in keys_dir."""

    field: str
    file_name: str

    @property
    def variable(self) -> str:
        return f"ISSUANCE_{self.field.upper()}"

    @property
    def file_variable(self) -> str:
        return f"{self.variable}_FILE"


DATA_KEYS = KeySource("data_keys", "data-keys")
BLIND_INDEX_KEY = KeySource("blind_index_key", "blind-index-key")
PREVIOUS_BLIND_INDEX_KEY = KeySource("previous_blind_index_key", "previous-blind-index-key")


def vault_key_texts(settings: Settings) -> tuple[str, str]:
    """(data keys text, blind-index key text) of this deployment; ConfigurationError when one is missing."""
    adopt_legacy_keys(settings)
    data, blind = read_key(settings, DATA_KEYS), read_key(settings, BLIND_INDEX_KEY)
    if data is None and blind is None and settings.development_keys_allowed:
        generate_development_keys(Path(settings.keys_dir))
        data, blind = read_key(settings, DATA_KEYS), read_key(settings, BLIND_INDEX_KEY)
    missing = [source for source, text in ((DATA_KEYS, data), (BLIND_INDEX_KEY, blind)) if text is None]
    if missing:
        raise ConfigurationError(
            "missing encryption key(s): "
            + "; ".join(_where(settings, source) for source in missing)
            + " (keys are generated only with the embedded services; see the README, Keys)"
        )
    assert data is not None and blind is not None
    return data, blind


def previous_blind_index_key_text(settings: Settings) -> str | None:
    """The blind-index key being replaced by a rotation, if configured."""
    return read_key(settings, PREVIOUS_BLIND_INDEX_KEY)


def read_key(settings: Settings, source: KeySource) -> str | None:
    """The text of one key from its variable, its *_FILE file or keys_dir, or None when none holds it."""
    value: SecretStr | None = getattr(settings, source.field)
    path: Path | None = getattr(settings, f"{source.field}_file")
    if value is not None and path is not None:
        raise ConfigurationError(f"set {source.variable} or {source.file_variable}, not both")
    if value is not None:
        return value.get_secret_value().strip()
    if path is None:
        path = Path(settings.keys_dir) / source.file_name
        if not path.exists():
            return None
    return _read_key_file(path, source, strict=not settings.development_keys_allowed)


def _read_key_file(path: Path, source: KeySource, *, strict: bool) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            if strict:
                raise ConfigurationError(
                    f"{path} ({source.variable}) is readable by other users (mode {mode:04o}): chmod 600 it "
                    "(a Kubernetes secret volume: defaultMode 0400)"
                )
            log.warning("%s is readable by other users (mode %04o); it should have mode 0600", path, mode)
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {path} ({source.variable}): {exc.strerror or type(exc).__name__}"
        ) from exc
    if not text:
        raise ConfigurationError(f"{path} ({source.variable}) is empty")
    return text


def _where(settings: Settings, source: KeySource) -> str:
    return (
        f"set {source.variable} or {source.file_variable}, "
        f"or put it in {Path(settings.keys_dir) / source.file_name} (mode 0600)"
    )


def write_key_file(path: Path, text: str) -> bool:
    """Write `text` to a new file of mode 0600, atomically and never over an existing one; whether it did."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    try:
        os.link(tmp, path)  # never overwrites: a concurrent first run keeps one key set
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def generate_development_keys(keys_dir: Path) -> None:
    """Fresh data and blind-index keys in keys_dir (embedded services only)."""
    data_keys, blind = generate_key_text("dev1")
    wrote = write_key_file(keys_dir / BLIND_INDEX_KEY.file_name, blind)
    wrote = write_key_file(keys_dir / DATA_KEYS.file_name, data_keys) or wrote
    if wrote:
        log.warning("generated development encryption keys in %s (not for production data)", keys_dir)


def adopt_legacy_keys(settings: Settings) -> None:
    """Move state_dir/keys.json of an earlier version into keys_dir, once: nothing it sealed is lost.

    Its keys become keys_dir/data-keys and keys_dir/blind-index-key where those do not exist yet; when they
    exist with other keys, the old file is kept whole as keys_dir/keys-from-state-dir.json for an operator."""
    legacy = Path(settings.state_dir) / LEGACY_KEYS_FILE
    if not legacy.exists():
        return
    keys_dir = Path(settings.keys_dir)
    try:
        stored = json.loads(legacy.read_text())
        texts = {DATA_KEYS: str(stored["data_keys"]), BLIND_INDEX_KEY: str(stored["blind_index_key"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{legacy} is not a valid keys file; move it out of the way") from exc
    conflicting = False
    for source, text in texts.items():
        target = keys_dir / source.file_name
        if not write_key_file(target, text) and target.read_text().strip() != text:
            conflicting = True
    if conflicting:
        kept = keys_dir / "keys-from-state-dir.json"
        write_key_file(kept, legacy.read_text().strip())
        legacy.unlink()
        log.warning("moved %s to %s: %s already holds other keys; keep both", legacy, kept, keys_dir)
        return
    legacy.unlink()
    log.warning(
        "moved the encryption keys of %s to %s (keys never live beside the data)%s",
        legacy,
        keys_dir,
        "" if settings.development_keys_allowed else "; they were generated for development: rotate them",
    )

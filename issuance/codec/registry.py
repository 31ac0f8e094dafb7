"""The Avro contracts of schemas/*.avsc, parsed once per process and indexed by fingerprint.

A file is named <RecordName>.v<N>.avsc; every version is kept so that old messages stay readable, and the
newest version of a record is the one we write and the one we read into.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from issuance.errors import ConfigurationError

NAMESPACE = "cn.ssc.issuance"
MAGIC = b"\xc3\x01"
_FILE_NAME = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One parsed schema file: a record at one version."""

    name: str
    version: int
    parsed: Any  # fastavro's parsed schema (a dict); opaque to callers
    canonical_form: str
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian as on the wire

    @property
    def header(self) -> bytes:
        """The single-object encoding header of messages written with this schema."""
        return MAGIC + self.fingerprint


@dataclass(frozen=True, slots=True, eq=False)
class Registry:
    """Every known schema version, by fingerprint and by record name."""

    by_fingerprint: Mapping[bytes, SchemaVersion]
    versions: Mapping[str, tuple[SchemaVersion, ...]]  # oldest first

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of a record: the writer and reader schema."""
        try:
            return self.versions[name][-1]
        except KeyError:
            raise ConfigurationError(f"no schema for record {name!r}") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.versions))


def parse_version(name: str, version: int, schema: Mapping[str, Any]) -> SchemaVersion:
    """Parse one schema and check it is the record and namespace its file name says."""
    if schema.get("type") != "record" or schema.get("name") != name or schema.get("namespace") != NAMESPACE:
        raise ConfigurationError(f"schema file {name}.v{version}.avsc must define record {NAMESPACE}.{name}")
    parsed = parse_schema(dict(schema))
    canonical = to_parsing_canonical_form(parsed)
    digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return SchemaVersion(name, version, parsed, canonical, digest)


def build_registry(schemas: Iterable[SchemaVersion]) -> Registry:
    """Index schema versions; fingerprints and (name, version) pairs must be unique."""
    by_fingerprint: dict[bytes, SchemaVersion] = {}
    grouped: dict[str, list[SchemaVersion]] = {}
    for schema in schemas:
        if schema.fingerprint in by_fingerprint:
            other = by_fingerprint[schema.fingerprint]
            raise ConfigurationError(
                f"{schema.name}.v{schema.version} has the canonical form of {other.name}.v{other.version}"
            )
        by_fingerprint[schema.fingerprint] = schema
        grouped.setdefault(schema.name, []).append(schema)
    versions: dict[str, tuple[SchemaVersion, ...]] = {}
    for name, group in grouped.items():
        ordered = tuple(sorted(group, key=lambda s: s.version))
        if [s.version for s in ordered] != list(range(1, len(ordered) + 1)):
            raise ConfigurationError(f"versions of {name} must be 1..N without gaps")
        versions[name] = ordered
    return Registry(by_fingerprint, versions)


def load_package_schemas(package: str = "schemas") -> list[SchemaVersion]:
    """Read and parse every <Name>.v<N>.avsc file of a package."""
    loaded = []
    for entry in sorted(resources.files(package).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".avsc"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ConfigurationError(f"schema file {entry.name!r} is not named <RecordName>.v<N>.avsc")
        schema = json.loads(entry.read_text(encoding="utf-8"))
        loaded.append(parse_version(match["name"], int(match["version"]), schema))
    return loaded


@cache
def default_registry() -> Registry:
    """The registry of the schemas package, loaded on first use and cached for the process."""
    return build_registry(load_package_schemas())

"""The same night on each engine of the Beam stage: the DirectRunner, and the DaskRunner on 1 and 2 workers.

    --engines direct,dask1,dask2   (benchmarks/nightly.py; daskN: a local Dask cluster of N worker processes)

The first engine is the night `benchmarks.nightly` profiles. Each further one runs the same night again from
the start, on a fresh database of the same PostgreSQL server (migrations, reference data, no checkpoints)
over the same topics: the same records, the same plan, the same commit and relay. Each reports its phases
(plan / stage / commit / files beside publishing / publish) and its rate against the honest floor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

ENGINE_SPEC = re.compile(r"^(direct|dask)(\d*)$")


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """`direct`, or `daskN`: the dask engine on a local cluster of N worker processes (N 0: one per CPU)."""

    label: str
    engine: Literal["direct", "dask"]
    workers: int


def parse_engines(text: str) -> list[EngineSpec]:
    specs = []
    for label in (part.strip() for part in text.split(",") if part.strip()):
        match = ENGINE_SPEC.match(label)
        if match is None or (match.group(1) == "direct" and match.group(2)):
            raise ValueError(f"engine {label!r}: direct or daskN (N worker processes)")
        engine: Literal["direct", "dask"] = "dask" if match.group(1) == "dask" else "direct"
        specs.append(EngineSpec(label, engine, int(match.group(2) or 0)))
    if not specs:
        raise ValueError("no engine given")
    return specs


def fresh_database(database_url: str, name: str) -> str:
    """A new, migrated database on the benchmark's server; its connection string."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from issuance.store.migrate import apply_migrations

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(database_url, dbname=name)
    apply_migrations(url)
    return url


def engine_night(
    spec: EngineSpec, settings: Any, database_url: str, generated: Any, honest_rate: float
) -> dict[str, Any]:
    """The night of `generated` on `spec`'s engine in a fresh database; its figures."""
    from pydantic import SecretStr

    from pipelines import nightly
    from tests.fixtures_nightly import load_reference_file

    url = fresh_database(database_url, f"bench_{spec.label}")
    world = settings.model_copy(
        update={
            "database_url": SecretStr(url),
            "engine": spec.engine,
            "beam_workers": spec.workers or settings.beam_workers,
            "personalization_dir": settings.personalization_dir.with_name(f"personalization-{spec.label}"),
        }
    )
    load_reference_file(world, url, generated)
    result = nightly.run(["--business-date", generated.business_date(1)], settings=world)
    rate = result.records_planned / result.timings["total_s"]
    return {
        "engine": spec.label,
        "records": result.records_planned,
        "records_per_s": round(rate),
        "ratio_honest": round(rate / honest_rate, 3),
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "balanced": result.balanced,
    }


def engine_lines(nights: Sequence[dict[str, Any]]) -> list[str]:
    """One line per engine: phases, rate, ratio against the honest floor, and the commit's share."""
    lines = ["engines (the same night from the start; s: plan / stage / commit / files | publish = total):"]
    for night in nights:
        t = night["timings_s"]
        share = t.get("commit_s", 0.0) / t["total_s"] if t.get("total_s") else 0.0
        lines.append(
            f"  {night['engine']:<7} {t.get('plan_s', 0):.1f} / {t.get('stage_s', 0):.1f} /"
            f" {t.get('commit_s', 0):.1f} / ({t.get('files_s', 0):.1f}) {t.get('publish_s', 0):.1f}"
            f" = {t.get('total_s', 0):.1f}  {night['records_per_s']:>8,} records/s"
            f"  ratio honest {night['ratio_honest']:.3f}  commit {share:.0%} of the night"
            f"  balanced {night['balanced']}"
        )
    return lines

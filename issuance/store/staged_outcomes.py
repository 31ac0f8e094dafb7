"""The staging stage's counters read back from the rows it staged, for engines that report no Beam metrics.

Beam's DaskRunner raises NotImplementedError for metrics, so a night staged on Dask counts its outcomes here,
under the names the DoFns' counters use (`stage.name`): records read per kind, verification outcomes, dead
letters by stage and reason, rows staged, cards personalized. The staged rows are what the commit applies:
each chunk's rows replace that chunk's earlier rows, so a task the engine ran twice is counted once (Beam's
attempted counters would count it twice). The DoFns' timings (`personalize.busy_ms`) are not in the rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from issuance.store.run_repo import Conn, staged_counts


def staged_counters(conn: Conn, run_id: int, kinds: Mapping[str, str]) -> dict[str, int]:
    """`{stage.name: count}` of the run's staged rows; `kinds` maps each source topic to its record kind
    ("application", "agreement"), which names the read counter (`decode.applications_read`)."""
    counts: dict[str, int] = {}

    def add(name: str, value: int) -> None:
        if value:
            counts[name] = counts.get(name, 0) + value

    for topic, read in conn.execute(
        "SELECT source_topic, count(*) FROM ("
        " SELECT source_topic FROM staged_applications WHERE run_id = %(run)s"
        " UNION ALL SELECT source_topic FROM staged_agreements WHERE run_id = %(run)s"
        " UNION ALL SELECT source_topic FROM staged_dead_letters WHERE run_id = %(run)s) AS r GROUP BY 1",
        {"run": run_id},
    ):
        add(f"decode.{kinds.get(topic, topic)}s_read", int(read))
    for outcome, n in conn.execute(
        "SELECT coalesce(reason, 'passed'), count(*) FROM staged_applications"
        " LEFT JOIN LATERAL unnest(reasons) AS reason ON true WHERE run_id = %s GROUP BY 1",
        (run_id,),
    ):
        add(f"verify.{outcome}", int(n))
    for stage, reason, n in conn.execute(
        "SELECT stage, reason, count(*) FROM staged_dead_letters WHERE run_id = %s GROUP BY 1, 2", (run_id,)
    ):
        add(f"{stage}.{reason}", int(n))
    for table, n in staged_counts(conn, run_id).items():
        add(f"stage.{table.removeprefix('staged_')}", n)
    cards = conn.execute(
        "SELECT count(*) FILTER (WHERE vendor_code IS NOT NULL), count(*) FILTER (WHERE vendor_code IS NULL)"
        " FROM staged_cards WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    assert cards is not None
    add("personalize.cards", int(cards[0]))
    add("personalize.no_vendor", int(cards[1]))
    return dict(sorted(counts.items()))

"""What the catalog records about one partition's contents, from its Arrow table.

The same function serves the writer (from the table it is about to store) and a rebuild
(from the file read back), so a reindexed catalog equals the one writes produced. Beyond
rows and the ts bounds, two tables carry what the cheap readers need: a validation summary
gives the day's verdict, failed checks and gap totals (status, coverage report); a metrics
partition gives its figures (status, the Prometheus collector).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

#: Table names whose partitions carry extra facts (kept as names so this module does not
#: depend on the schema definitions).
SUMMARY_TABLE = "validation_summary"
METRICS_TABLE = "ingest_metrics"


@dataclass(frozen=True)
class Facts:
    """Content facts of one partition."""

    rows: int
    first_ts: int | None = None
    last_ts: int | None = None
    verdict: str | None = None
    checks_failed: str | None = None
    gap_count: int | None = None
    gap_seconds: float | None = None
    facts: dict[str, float] = field(default_factory=dict)


def ts_bounds(table: pa.Table, ts_column: str) -> tuple[int | None, int | None]:
    """(min, max) of the ts column as int64 nanoseconds, ``None`` when all null/empty."""
    if ts_column not in table.column_names or table.num_rows == 0:
        return None, None
    col = table[ts_column]
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz=col.type.tz))
    bounds = pc.min_max(col.cast(pa.int64()) if not pa.types.is_integer(col.type) else col)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    return (None, None) if lo is None else (int(lo), int(hi))


def facts_of(table_name: str, table: pa.Table, ts_column: str) -> Facts:
    """The catalog facts of ``table`` (one partition of ``table_name``)."""
    first, last = ts_bounds(table, ts_column)
    base = {"rows": table.num_rows, "first_ts": first, "last_ts": last}
    if table.num_rows == 0:
        return Facts(**base)
    if table_name == SUMMARY_TABLE:
        return Facts(**base, **_summary_facts(table))
    if table_name == METRICS_TABLE:
        return Facts(**base, facts=_metric_facts(table))
    return Facts(**base)


def _last(table: pa.Table, column: str) -> object:
    if column not in table.column_names:
        return None
    return table[column][table.num_rows - 1].as_py()


def _summary_facts(table: pa.Table) -> dict:
    outcomes_text = _last(table, "check_outcomes") or "{}"
    try:
        outcomes = json.loads(str(outcomes_text))
    except ValueError:
        outcomes = {}
    failed = sorted(
        name for name, o in outcomes.items() if not (isinstance(o, dict) and o.get("passed"))
    )
    figures: dict[str, float] = {}
    for column in ("rows", "validation_seconds"):
        value = _last(table, column)
        if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
            figures[column] = float(value)
    gap_count = _last(table, "gap_count")
    gap_seconds = _last(table, "gap_seconds_total")
    verdict = _last(table, "verdict_overall")
    return {
        "verdict": None if verdict is None else str(verdict),
        "checks_failed": ",".join(failed),
        "gap_count": None if gap_count is None else int(gap_count),
        "gap_seconds": None if gap_seconds is None else float(gap_seconds),
        "facts": figures,
    }


def _metric_facts(table: pa.Table) -> dict[str, float]:
    """``{"asset.metric": value}``; the last row of a pair wins, as the readers expect."""
    needed = {"asset", "metric", "value"}
    if not needed <= set(table.column_names):
        return {}
    out: dict[str, float] = {}
    for asset, metric, value in zip(
        table["asset"].to_pylist(),
        table["metric"].to_pylist(),
        table["value"].to_pylist(),
        strict=True,
    ):
        if value is not None and not math.isnan(value):
            out[f"{asset}.{metric}"] = float(value)
    return out

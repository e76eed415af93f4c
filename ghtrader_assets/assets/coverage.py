"""The unpartitioned coverage report of the whole universe.

Its materialization is the one place a user sees which days need attention: the per-symbol
report (blocked days and the worst day first) and pass / warn / blocked for each of the
last trading days and symbols, both as real tables (sortable, every column visible at
1600 px) rather than markdown cut off at the window's edge.
"""

from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from ghtrader_assets import partition_key_cache
from ghtrader_assets.manifest import write_json_atomic
from ghtrader_assets.metrics import latency_metadata, scoped_timing
from ghtrader_assets.reports import COLUMNS, coverage_report, recent_verdicts
from ghtrader_assets.resources import StoreResource
from ghtrader_assets.symbols import MainSymbol

COVERAGE_REPORT_KEY = AssetKey(["coverage_report"])

# Before the report's step runs, Dagster lists every partition key of each of its upstream
# assets (two per symbol) to look up their data versions; list them once, not once per
# upstream (about 0.15 s of CPU per symbol and refresh; see the module).
partition_key_cache.install()

#: How many of the latest trading days the pass / warn / blocked table shows.
RECENT_DAYS = 10


def _plain(value: object) -> str | int | float | bool | None:
    """A cell a Dagster ``TableRecord`` accepts (numpy scalars and NaN are not)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()  # type: ignore[union-attr]
    return value if isinstance(value, str | int | float | bool) else str(value)


#: The report's columns shown in ``report``: what needs attention and the day counts,
#: narrow enough to be read whole in a 1600 px window (checked by bench/ui_screenshots.py);
#: the rest go to ``report_details``, keyed by symbol too.
SUMMARY_COLUMNS = (
    "symbol",
    "blocking_failure_days",
    "worst_day",
    "missing_days",
    "days_behind",
)


def report_table(report: pd.DataFrame, names: Sequence[str] | None = None) -> MetadataValue:
    """The coverage report (or its ``names`` columns) as a Dagster table with each column's
    type and meaning."""
    chosen = [c for c in COLUMNS if names is None or c.name in names]
    schema = TableSchema(
        columns=[TableColumn(c.name, c.type, description=c.description) for c in chosen]
    )
    records = [
        TableRecord({c.name: _plain(row[c.name]) for c in chosen})
        for row in report.to_dict(orient="records")
    ]
    return MetadataValue.table(records=records, schema=schema)


def verdict_table(recent: pd.DataFrame) -> MetadataValue:
    """Pass / warn / blocked per recent trading day (rows) and symbol (columns)."""
    columns = [TableColumn("trading_day", "string", description="Trading day, newest first")]
    columns += [
        TableColumn(
            str(c),
            "string",
            description=f"{c}: pass, warn REASON, blocked REASON, missing (not stored) or "
            "- (not listed)",
        )
        for c in recent.columns[1:]
    ]
    records = [
        TableRecord({str(k): _plain(v) for k, v in row.items()})
        for row in recent.to_dict(orient="records")
    ]
    return MetadataValue.table(records=records, schema=TableSchema(columns=columns))


def build_coverage_report_asset(
    universe: Sequence[MainSymbol],
    upstream: Sequence[AssetKey],
    partitions_def: PartitionsDefinition | None = None,
):
    """An asset that depends on every symbol's manifest and summarizes the store.

    With ``partitions_def`` (the symbols' trading-day partitions), expected and missing days
    count from ``GHTRADER_START_DATE`` as Dagster's partition counts do."""

    @asset(
        key=COVERAGE_REPORT_KEY,
        deps=list(upstream),
        group_name="reports",
        kinds={"pandas", "json"},
        description="Where to look first. `recent_days`: pass / warn / blocked (with reason) "
        f"for each of the last {RECENT_DAYS} trading days and symbol. `report`: per symbol, "
        "days that failed blocking checks, the worst day, days present vs the partitions "
        "(from GHTRADER_START_DATE), missing days, days behind, gap totals. Reads only "
        "coverage bounds and validation summaries, never ticks, so it is cheap to refresh.",
    )
    def coverage_report_asset(
        context: AssetExecutionContext, store: StoreResource
    ) -> MaterializeResult:
        timed, latency = scoped_timing(store.get_store())
        keys = list(partitions_def.get_partition_keys()) if partitions_def else None
        report = coverage_report(timed, universe, partition_keys=keys)
        recent = recent_verdicts(timed, universe, (keys or [])[-RECENT_DAYS:])
        path = store.reports_dir / "coverage.json"
        write_json_atomic(
            path,
            {
                "symbols": report.to_dict(orient="records"),
                "recent_days": recent.to_dict(orient="records"),
            },
        )
        cells = recent.iloc[:, 1:].to_numpy().ravel().astype(str) if len(recent) else []
        return MaterializeResult(
            metadata={
                "blocking_failure_days": int(report["blocking_failure_days"].sum()),
                "recent_days": verdict_table(recent),
                "report": report_table(report, SUMMARY_COLUMNS),
                "report_details": report_table(
                    report, ["symbol", *(c.name for c in COLUMNS if c.name not in SUMMARY_COLUMNS)]
                ),
                "recent_blocked": int(sum(c.startswith("blocked") for c in cells)),
                "recent_missing": int(sum(c == "missing" for c in cells)),
                "symbols": len(report),
                "days_present": int(report["days_present"].sum()),
                "days_expected": int(report["days_expected"].sum()),
                "missing_days": int(report["missing_days"].sum()),
                "gap_count": int(report["gap_count"].sum()),
                "json": MetadataValue.path(str(path)),
                # P50/P95/P99 of the store reads this report made: plotted over refreshes.
                **latency_metadata(latency),
            }
        )

    return coverage_report_asset

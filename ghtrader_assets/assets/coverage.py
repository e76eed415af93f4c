"""The unpartitioned coverage report of the whole universe."""

from collections.abc import Sequence

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from ghtrader_assets.manifest import write_json_atomic
from ghtrader_assets.metadata import markdown_table
from ghtrader_assets.metrics import latency_metadata, scoped_timing
from ghtrader_assets.reports import coverage_report
from ghtrader_assets.resources import StoreResource
from ghtrader_assets.symbols import MainSymbol

COVERAGE_REPORT_KEY = AssetKey(["coverage_report"])


def build_coverage_report_asset(universe: Sequence[MainSymbol], upstream: Sequence[AssetKey]):
    """An asset that depends on every symbol's manifest and summarizes the store."""

    @asset(
        key=COVERAGE_REPORT_KEY,
        deps=list(upstream),
        group_name="reports",
        kinds={"pandas", "json"},
        description="Per symbol: first/last day, days present vs the trading calendar, missing "
        "days, days behind, gap totals and days that failed blocking checks. Reads only "
        "coverage bounds and validation summaries, never ticks, so it is cheap to refresh.",
    )
    def coverage_report_asset(
        context: AssetExecutionContext, store: StoreResource
    ) -> MaterializeResult:
        timed, latency = scoped_timing(store.get_store())
        report = coverage_report(timed, universe)
        path = store.reports_dir / "coverage.json"
        write_json_atomic(path, {"symbols": report.to_dict(orient="records")})
        return MaterializeResult(
            metadata={
                "report": MetadataValue.md(markdown_table(report)),
                "symbols": len(report),
                "days_present": int(report["days_present"].sum()),
                "missing_days": int(report["missing_days"].sum()),
                "gap_count": int(report["gap_count"].sum()),
                "blocking_failure_days": int(report["blocking_failure_days"].sum()),
                "json": MetadataValue.path(str(path)),
                # P50/P95/P99 of the store reads this report made: plotted over refreshes.
                **latency_metadata(latency),
            }
        )

    return coverage_report_asset

"""What every stored column means, with its unit: the text the Dagster UI shows per column.

:func:`ghtrader_assets.schema.table_spec` puts these on the pandera fields
(``pa.Column(description=...)``), and :func:`ghtrader_assets.metadata.column_schema` carries
them into each asset's ``dagster/column_schema``. Descriptions are documentation only: they
are not part of :func:`ghtrader_assets.schema.schema_hash`, so rewording one never makes
stored data look incompatible.

Kept apart from ``schema.py`` so the table layouts stay readable; families of columns (book
levels, null rates, rule counts, verdict layers) are described by pattern. This module
imports nothing from the package, so ``schema.py`` can use it at import time.
"""

from __future__ import annotations

import re

_PRICE_UNIT = "CNY per quoted unit of the product (e.g. CNY/ton for cu)"

#: Columns with the same meaning wherever they appear.
COMMON: dict[str, str] = {
    "symbol": "Main continuous symbol the row belongs to, e.g. KQ.m@SHFE.cu (TqSdk notation).",
    "trading_day": "Trading day (YYYY-MM-DD, exchange calendar) the row belongs to; a day's "
    "night session is the evening before.",
    "underlying": "Real contract that was the main contract that day, e.g. SHFE.cu2507.",
    "source": "Where the data came from: simulated, csv (TqSdk DataDownloader files) or tqsdk.",
}

#: The trading day's midnight as a designated timestamp, for per-day tables.
_DAY_TS = "The trading day's midnight, Asia/Shanghai, in UTC (the table's designated timestamp)."

TABLES: dict[str, dict[str, str]] = {
    "ticks_main_l5": {
        "ts": "Exchange time of the tick, tz-aware UTC (from TqSdk's nanoseconds); "
        "convert to Asia/Shanghai for exchange time.",
        "datetime": "Exchange time of the tick as TqSdk delivers it: integer nanoseconds "
        "since the Unix epoch (UTC), kept exact.",
        "id": "TqSdk's tick sequence number; with ts and symbol it identifies a tick, so two "
        "ticks sharing a timestamp are both kept.",
        "last_price": f"Last traded price, {_PRICE_UNIT}.",
        "highest": f"Highest traded price of the trading day so far, {_PRICE_UNIT}.",
        "lowest": f"Lowest traded price of the trading day so far, {_PRICE_UNIT}.",
        "average": f"Volume-weighted average traded price of the day so far, {_PRICE_UNIT}.",
        "volume": "Traded volume of the trading day so far (cumulative, night session "
        "included), in lots.",
        "amount": "Traded value of the trading day so far (cumulative, night session "
        "included), in CNY.",
        "open_interest": "Open positions of the contract at this tick, in lots (not "
        "cumulative: falls when positions close).",
    },
    "roll_schedule": {
        "ts": _DAY_TS,
        "schedule_hash": "Hash of (symbol, trading day, underlying): the day's data version, "
        "so a changed roll marks the day's ticks stale.",
    },
    "manifests": {
        "ts": _DAY_TS,
        "rows": "Ticks stored for the day.",
        "first_tick": "Time of the day's first stored tick, UTC (empty for a day without ticks).",
        "last_tick": "Time of the day's last stored tick, UTC (empty for a day without ticks).",
        "schema_hash": "Hash of the ticks table layout (names, dtypes, nullability, keys) the "
        "day was written with; descriptions are not part of it.",
        "code_version": "Version of this package's code that wrote the day.",
        "checks_passed": "Asset checks that passed on the day (of 9).",
        "checks_failed": "Asset checks that failed on the day, at WARN or ERROR (of 9).",
        "check_outcomes": 'JSON {check: {"passed", "severity", "blocking"}} of the day\'s '
        "nine checks.",
        "created_at": "When the manifest was written, UTC.",
    },
    "skip_ledger": {
        "ts": _DAY_TS,
        "reason": "Why the source skipped the day on purpose (e.g. not_listed, no_l5).",
        "message": "The source's own words about the skip.",
        "attempts": "How many times the day was requested and skipped.",
        "first_at": "First time the day was skipped, UTC.",
        "last_at": "Latest time the day was skipped, UTC.",
    },
    "validation_summary": {
        "ts": _DAY_TS,
        "rows": "Ticks of the day that were validated.",
        "first_tick": "Time of the day's first tick, UTC (empty for a day without ticks).",
        "last_tick": "Time of the day's last tick, UTC (empty for a day without ticks).",
        "sessions": "Trading session windows of the day (night + day sessions) per the "
        "calendar and exchange events.",
        "seconds_expected": "Whole seconds inside the day's sessions.",
        "seconds_observed": "Seconds inside the sessions holding at least one tick.",
        "boundary_seconds_expected": "First and last seconds of the session windows, counted "
        "apart (opening/closing prints follow their own schedule).",
        "boundary_seconds_observed": "Boundary seconds holding at least one tick.",
        "half_seconds_expected": "Interior half-second slots judged for cadence (gaps above "
        "threshold and the session-end lag left out).",
        "half_seconds_observed": "Judged half-second slots holding a tick.",
        "half_seconds_missing_share": "Share (0-1) of judged half-seconds without a tick; "
        "empty unless cadence_mode is fixed.",
        "cadence_mode": "fixed (the exchange's 500 ms snapshot stream), event (ticks only on "
        "change) or none (no ticks).",
        "multi_tick_share": "Share (0-1) of interior seconds with ticks that hold two or more.",
        "gap_count": "Gaps: runs of at least 2 empty interior seconds inside a session "
        "(all buckets).",
        "gaps_2_5": "Gaps lasting 2-5 seconds.",
        "gaps_6_15": "Gaps lasting 6-15 seconds.",
        "gaps_16_30": "Gaps lasting 16-30 seconds.",
        "gaps_over_30": "Gaps lasting more than 30 seconds.",
        "gaps_over_threshold": "Gaps longer than their product/session warn threshold.",
        "gap_seconds_total": "Seconds inside all gaps of the day.",
        "max_gap_seconds": "Length of the day's longest gap, in seconds (0 without gaps).",
        "interval_p50_ms": "Median time between consecutive in-session ticks, milliseconds.",
        "interval_p95_ms": "95th percentile of the time between in-session ticks, ms.",
        "interval_p99_ms": "99th percentile of the time between in-session ticks, ms.",
        "interval_max_ms": "Longest time between consecutive in-session ticks, ms.",
        "in_session_ticks": "Ticks inside the day's sessions.",
        "boundary_ticks": "Call-auction and closing prints just outside a session edge "
        "(neither in nor out of session).",
        "out_of_session_ticks": "Ticks outside the sessions (boundary prints excepted).",
        "out_of_session_seconds": "Distinct seconds holding out-of-session ticks.",
        "missing_day": "1 when the day has sessions but no tick inside them, else 0.",
        "session_end_lag_seconds": "Seconds from the last in-session tick to the close of the "
        "last session (empty without ticks).",
        "duplicates_dropped": "Exact duplicate rows dropped before storing.",
        "duplicates_exact": "Exact duplicate rows (dropped at ingestion plus any still present).",
        "duplicates_conflicting": "Rows sharing (ts, id) with different values.",
        "max_null_run": "Longest run of consecutive nulls in a key field (bid1, ask1, last, "
        "volume, open interest), in rows.",
        "rules_skipped": "Comma-separated rules not evaluated that day (e.g. limit_band "
        "without limit prices).",
        "sampled": "1 when the row-level rules (field quality, outliers) ran on a random "
        "sample of the day (above 1,000,000 rows), 0 when on every row.",
        "sample_rows": "Rows the row-level rules ran on (all rows unless sampled).",
        "checks_failed": "Asset checks that failed on the day, at WARN or ERROR (of 9).",
        "blocking_failures": "Comma-separated blocking checks that failed at ERROR; non-empty "
        "means no manifest for the day.",
        "check_outcomes": 'JSON {check: {"passed", "severity", "blocking"}} of the nine checks.',
        "config_hash": "Hash of the validation thresholds used (GHTRADER_VALIDATION_*).",
        "validation_seconds": "Wall time of the day's validation, seconds.",
        "validated_at": "When the day was validated, UTC.",
    },
    "validation_gaps": {
        "ts": "Start of the gap (its first empty second), UTC.",
        "gap_end": "End of the gap (exclusive), UTC.",
        "seconds": "Length of the gap, seconds.",
        "session": "Session kind the gap falls in: day or night.",
        "threshold_seconds": "The product/session warn threshold the gap exceeded, seconds.",
        "severity": "WARN, or ERROR above the global error threshold.",
        "attribution": "unattributed, provider_missing (the source has no data either), "
        "provider_has_data (our download lost it) or not_checked.",
    },
    "ingest_metrics": {
        "ts": _DAY_TS,
        "asset": "Which asset recorded the figure: ticks, validation_summary or roll_schedule.",
        "metric": "Figure name with its unit, e.g. download_rows_per_second, validation_seconds.",
        "value": "The figure, in the unit its metric name states.",
        "run_id": "Dagster run that recorded the figure.",
        "recorded_at": "When the figure was recorded, UTC.",
    },
}

_BOOK = re.compile(r"(bid|ask)_(price|volume)([1-5])")
_NULL_FIELDS = {
    "bid1": "bid price level 1",
    "ask1": "ask price level 1",
    "last": "last price",
    "volume": "volume",
    "open_interest": "open interest",
    "depth": "book levels 2-5 (five-level products only)",
}
_VIOLATIONS = {
    "schema": "pandera schema failures (missing/extra columns, dtypes, required nulls)",
    "non_positive_price": "rows with a price <= 0",
    "negative_volume": "rows with a negative volume, amount, open interest or book volume",
    "cumulative_decrease": "rows whose cumulative volume or amount falls within the day",
    "open_interest_decrease": "rows whose open interest falls (informational: positions close)",
    "limit_band": "rows with a price outside the day's limit band (0 when limits unknown)",
    "crossed_book": "rows with bid1 >= ask1 while both are quoted",
    "bid_ladder": "rows whose bid prices do not strictly fall from level 1 to 5",
    "ask_ladder": "rows whose ask prices do not strictly rise from level 1 to 5",
}
_OUTLIERS = {
    "price_jump": "ticks whose price change exceeds k rolling standard deviations",
    "volume_spike": "ticks whose traded volume exceeds a multiple of the rolling median",
    "spread_anomaly": "ticks whose spread exceeds a multiple of the day's p95 spread",
}
_LAYERS = {
    "engineering": "our pipeline",
    "source": "the provider's data",
    "policy": "our completeness policy",
    "overall": "the worst of the three layers",
}


def _pattern(table: str, column: str) -> str | None:
    book = _BOOK.fullmatch(column)
    if table == "ticks_main_l5" and book:
        side, kind, level = book.groups()
        what = "price" if kind == "price" else "volume (lots)"
        unit = f", {_PRICE_UNIT}" if kind == "price" else ""
        return (
            f"{side.capitalize()} {what} at book level {level}{unit}; empty where the "
            "exchange publishes fewer levels."
        )
    if table != "validation_summary":
        return None
    if column.startswith("null_rate_") and column[10:] in _NULL_FIELDS:
        return f"Share (0-1) of rows with {_NULL_FIELDS[column[10:]]} null."
    if column.startswith("violations_") and column[11:] in _VIOLATIONS:
        return f"Count of {_VIOLATIONS[column[11:]]} (on the sample when sampled)."
    if column.startswith("outliers_") and column[9:] in _OUTLIERS:
        return f"Count of {_OUTLIERS[column[9:]]} (on the sample when sampled)."
    for prefix, what in (("verdict_", "Verdict"), ("reason_", "Reason codes"), ("hint_", "Hint")):
        layer = column[len(prefix) :] if column.startswith(prefix) else ""
        if layer in _LAYERS:
            detail = {
                "Verdict": "ok, warn or error",
                "Reason codes": "failed rules, comma-separated; empty when ok",
                "Hint": "what to do about it; empty when ok",
            }[what]
            return f"{what} of the {layer} layer ({_LAYERS[layer]}): {detail}."
    return None


def describe(table: str, column: str) -> str | None:
    """The description of ``table``'s ``column``, or ``None`` when it has none."""
    return TABLES.get(table, {}).get(column) or _pattern(table, column) or COMMON.get(column)

"""Column schemas: the single source of truth for every table this project stores.

The pandera schemas below decide column names, order and dtypes. Sources normalise to them,
the stores derive their table definitions from them (Parquet/Arrow types, QuestDB DDL), the
field-quality check validates with them and the manifest records :func:`schema_hash` so a
reader can tell which layout a partition was written with. Every column also carries a
description (meaning and unit, from :mod:`ghtrader_assets.column_descriptions`) that the
Dagster UI shows; descriptions are documentation and never enter the schema hash.

Numeric tick fields are float64 as TqSdk delivers them (levels 2-5 are NaN on exchanges that
publish level 1 only); ``id`` and ``datetime`` are TqSdk's int64 tick sequence id and
nanoseconds since the epoch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ghtrader_assets.column_descriptions import describe

LEVELS = (1, 2, 3, 4, 5)
BOOK_COLUMNS: tuple[str, ...] = tuple(
    f"{side}_{kind}{lvl}"
    for lvl in LEVELS
    for side in ("bid", "ask")
    for kind in ("price", "volume")
)
PRICE_COLUMNS = ("last_price", "highest", "lowest", "average")
CUMULATIVE_COLUMNS = ("volume", "amount", "open_interest")

#: Key columns present on every stored table: which main symbol and which trading day.
PARTITION_COLUMNS = ("symbol", "trading_day")


@dataclass(frozen=True)
class TableSpec:
    """A stored table: its pandera schema, designated timestamp and dedup keys.

    ``dedup_keys`` are the columns that identify one row; re-writing a row with the same keys
    replaces it (QuestDB ``DEDUP UPSERT KEYS``; the embedded store replaces whole
    partitions). For ticks the keys include TqSdk's tick ``id`` so two distinct ticks that
    share a timestamp are never collapsed.
    """

    name: str
    schema: pa.DataFrameSchema
    timestamp: str
    dedup_keys: tuple[str, ...]
    symbol_columns: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)


def table_spec(
    name: str,
    columns: dict[str, pa.Column],
    *,
    timestamp: str,
    dedup_keys: tuple[str, ...],
    symbol_columns: tuple[str, ...],
) -> TableSpec:
    """A table whose pandera schema is strict and ordered: exactly these columns, in order.

    Each column gets its description (meaning and unit) from
    :mod:`ghtrader_assets.column_descriptions` unless it carries its own; descriptions are
    documentation only and never enter :func:`schema_hash`."""
    columns = {n: _described(name, n, c) for n, c in columns.items()}
    schema = pa.DataFrameSchema(columns, strict=True, ordered=True, name=name)
    return TableSpec(name, schema, timestamp, dedup_keys, symbol_columns)


def _described(table: str, name: str, col: pa.Column) -> pa.Column:
    text = col.description or describe(table, name)
    if text is None or text == col.description:
        return col
    return pa.Column(**{**col.properties, "description": text})


def _str(nullable: bool = False) -> pa.Column:
    return pa.Column(str, nullable=nullable)


def _ts() -> pa.Column:
    return pa.Column("datetime64[ns, UTC]", nullable=False)


def _f64(*checks: pa.Check, nullable: bool = True) -> pa.Column:
    return pa.Column("float64", list(checks), nullable=nullable)


def _tick_f64(*checks: pa.Check) -> pa.Column:
    """A numeric tick field: NaN means "not quoted", but inf/-inf is never a real value
    (a parse or provider fault), and ``inf > 0`` would pass the positive check silently."""
    return _f64(*checks, _finite)


def _i64(*checks: pa.Check, nullable: bool = False) -> pa.Column:
    return pa.Column("int64", list(checks), nullable=nullable)


_positive = pa.Check.gt(0, name="positive", ignore_na=True)
_non_negative = pa.Check.ge(0, name="non_negative", ignore_na=True)
_finite = pa.Check(
    lambda s: ~np.isinf(s), name="finite", ignore_na=True, error="finite (not inf or -inf)"
)


def _day_lineage_columns() -> dict[str, pa.Column]:
    """What every per-symbol-day record (manifest, validation summary) says about the day:
    which symbol and day (``ts`` = the day's midnight, Asia/Shanghai, in UTC), which
    contract and source, and how many ticks between which first and last tick."""
    return {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),
        "underlying": _str(),
        "source": _str(),
        "rows": _i64(),
        "first_tick": pa.Column("datetime64[ns, UTC]", nullable=True),
        "last_tick": pa.Column("datetime64[ns, UTC]", nullable=True),
    }


def _tick_columns() -> dict[str, pa.Column]:
    cols: dict[str, pa.Column] = {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),
        "datetime": _i64(),
        "id": _i64(),
        "underlying": _str(),
        "source": _str(),
    }
    for c in PRICE_COLUMNS:
        cols[c] = _tick_f64(_positive)
    for c in CUMULATIVE_COLUMNS:
        cols[c] = _tick_f64(_non_negative)
    for c in BOOK_COLUMNS:
        cols[c] = _tick_f64(_positive if "price" in c else _non_negative)
    return cols


TICKS = table_spec(
    "ticks_main_l5",
    _tick_columns(),
    timestamp="ts",
    dedup_keys=("ts", "symbol", "id"),
    symbol_columns=("symbol", "trading_day", "underlying", "source"),
)

ROLL_SCHEDULE = table_spec(
    "roll_schedule",
    {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),
        "underlying": _str(),
        "source": _str(),
        "schedule_hash": _str(),
    },
    timestamp="ts",
    dedup_keys=("ts", "symbol"),
    symbol_columns=("symbol", "trading_day", "underlying", "source"),
)

MANIFESTS = table_spec(
    "manifests",
    {
        **_day_lineage_columns(),
        "schema_hash": _str(),
        "code_version": _str(),
        "checks_passed": _i64(),
        "checks_failed": _i64(),
        "check_outcomes": _str(),  # JSON: {check name: {passed, severity}}
        "created_at": _ts(),
    },
    timestamp="ts",
    dedup_keys=("ts", "symbol"),
    symbol_columns=("symbol", "trading_day", "underlying", "source"),
)


def empty_frame(spec: TableSpec) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes (for days with no rows)."""
    out = {}
    for name, col in spec.schema.columns.items():
        out[name] = pd.Series([], dtype=str(col.dtype) if str(col.dtype) != "str" else "str")
    return pd.DataFrame(out)


def conform(df: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Return ``df`` with exactly the table's columns, in order, cast to the schema dtypes.

    Missing optional (nullable float) columns are added as NaN, e.g. book levels 2-5 from an
    exchange that publishes level 1 only. A missing required column raises ``KeyError``
    naming it. Values are not checked here; that is the field-quality check's job.
    """
    out = {}
    for name, col in spec.schema.columns.items():
        if name in df.columns:
            s = df[name]
        elif col.nullable and str(col.dtype) == "float64":
            s = pd.Series(float("nan"), index=df.index)
        else:
            raise KeyError(f"{spec.name}: required column {name!r} is missing")
        dtype = str(col.dtype)
        if dtype == "str":
            s = s.astype("str")
        elif dtype.startswith("datetime64"):
            if str(s.dtype) != dtype:  # already-UTC ns columns skip the costly re-parse
                s = pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")
        else:
            s = s.astype(dtype)
        out[name] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


def schema_hash(spec: TableSpec = TICKS) -> str:
    """A short stable hash of the table layout (names, dtypes, nullability, keys)."""
    desc = {
        "name": spec.name,
        "columns": [(n, str(c.dtype), bool(c.nullable)) for n, c in spec.schema.columns.items()],
        "timestamp": spec.timestamp,
        "dedup_keys": list(spec.dedup_keys),
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


#: Days a source skipped for a known reason (main symbol not listed yet, no true-L5 ticks,
#: not a trading day for the provider...): one row per (symbol, trading_day, reason), so a
#: coverage report can tell "skipped on purpose" from "missing". Written by
#: :class:`ghtrader_assets.sources.skip_ledger.SkipLedger`.
SKIP_LEDGER = table_spec(
    "skip_ledger",
    {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),  # the trading day's midnight, Asia/Shanghai, in UTC
        "source": _str(),
        "reason": _str(),
        "message": _str(),
        "attempts": _i64(pa.Check.ge(1, name="at_least_one")),
        "first_at": _ts(),
        "last_at": _ts(),
    },
    timestamp="ts",
    dedup_keys=("ts", "symbol", "reason"),
    symbol_columns=("symbol", "trading_day", "source", "reason"),
)


def _f64_opt() -> pa.Column:
    return pa.Column("float64", nullable=True)


#: Counts of the rules that measure offending rows, stored per symbol-day (see
#: :mod:`ghtrader_assets.validation.rules`); a rule that was not evaluated (no limit prices,
#: disabled) stores 0 and is named in ``rules_skipped``.
VALIDATION_VIOLATION_RULES = (
    "schema",
    "non_positive_price",
    "negative_volume",
    "cumulative_decrease",
    "open_interest_decrease",
    "limit_band",
    "crossed_book",
    "bid_ladder",
    "ask_ladder",
)
VALIDATION_OUTLIER_RULES = ("price_jump", "volume_spike", "spread_anomaly")
VALIDATION_NULL_FIELDS = ("bid1", "ask1", "last", "volume", "open_interest", "depth")


def _validation_summary_columns() -> dict[str, pa.Column]:
    cols: dict[str, pa.Column] = {
        **_day_lineage_columns(),
        "sessions": _i64(),
        "seconds_expected": _i64(),
        "seconds_observed": _i64(),
        "boundary_seconds_expected": _i64(),
        "boundary_seconds_observed": _i64(),
        "half_seconds_expected": _i64(),
        "half_seconds_observed": _i64(),
        "half_seconds_missing_share": _f64_opt(),  # NaN unless cadence_mode == "fixed"
        "cadence_mode": _str(),  # fixed | event | none
        "multi_tick_share": _f64_opt(),
        "gap_count": _i64(),  # runs of >= 2 empty seconds (all buckets)
        "gaps_2_5": _i64(),
        "gaps_6_15": _i64(),
        "gaps_16_30": _i64(),
        "gaps_over_30": _i64(),
        "gaps_over_threshold": _i64(),
        "gap_seconds_total": _i64(),
        "max_gap_seconds": _i64(),
        "interval_p50_ms": _f64_opt(),
        "interval_p95_ms": _f64_opt(),
        "interval_p99_ms": _f64_opt(),
        "interval_max_ms": _f64_opt(),
        "in_session_ticks": _i64(),
        "boundary_ticks": _i64(),
        "out_of_session_ticks": _i64(),
        "out_of_session_seconds": _i64(),
        "missing_day": _i64(),  # 1 when the day has sessions but no tick inside them
        "session_end_lag_seconds": _f64_opt(),
        "duplicates_dropped": _i64(),
        "duplicates_exact": _i64(),
        "duplicates_conflicting": _i64(),
    }
    cols.update({f"null_rate_{f}": _f64_opt() for f in VALIDATION_NULL_FIELDS})
    cols["max_null_run"] = _i64()
    cols.update({f"violations_{r}": _i64() for r in VALIDATION_VIOLATION_RULES})
    cols.update({f"outliers_{r}": _i64() for r in VALIDATION_OUTLIER_RULES})
    cols.update(
        {
            "rules_skipped": _str(),
            "sampled": _i64(),  # 1 when field-quality rules ran on a row sample
            "sample_rows": _i64(),
        }
    )
    for layer in ("engineering", "source", "policy", "overall"):
        cols[f"verdict_{layer}"] = _str()  # ok | warn | error
        cols[f"reason_{layer}"] = _str()
        cols[f"hint_{layer}"] = _str()
    cols.update(
        {
            "checks_failed": _i64(),
            "blocking_failures": _str(),  # comma-separated check names
            "check_outcomes": _str(),  # JSON: {check: {passed, severity, blocking}}
            "config_hash": _str(),
            "validation_seconds": _f64_opt(),
            "validated_at": _ts(),
        }
    )
    return cols


#: One row per symbol-day: coverage, cadence, gaps, field quality and the layered verdict.
#: Recomputable from stored ticks alone (see ``ghtrader_assets.validation.validate_day``).
VALIDATION_SUMMARY = table_spec(
    "validation_summary",
    _validation_summary_columns(),
    timestamp="ts",
    dedup_keys=("ts", "symbol"),
    symbol_columns=(
        "symbol",
        "trading_day",
        "underlying",
        "source",
        "cadence_mode",
        "verdict_engineering",
        "verdict_source",
        "verdict_policy",
        "verdict_overall",
    ),
)

#: The largest over-threshold gaps of each symbol-day, with their session and attribution.
VALIDATION_GAPS = table_spec(
    "validation_gaps",
    {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),  # gap start (first empty second)
        "gap_end": _ts(),  # exclusive
        "seconds": _i64(),
        "session": _str(),  # day | night
        "threshold_seconds": _f64_opt(),
        "severity": _str(),  # WARN | ERROR
        "attribution": _str(),  # unattributed | provider_missing | provider_has_data | not_checked
    },
    timestamp="ts",
    dedup_keys=("ts", "symbol"),
    symbol_columns=("symbol", "trading_day", "session", "severity", "attribution"),
)

#: Ingestion and validation figures, one row per (symbol, trading day, asset, metric), so a
#: trend query ("rows/s of SHFE.cu over the last month") is one filtered read. The same
#: figures are Dagster materialization metadata; this table keeps them queryable outside
#: Dagster. Written by :mod:`ghtrader_assets.metrics`.
METRICS = table_spec(
    "ingest_metrics",
    {
        "symbol": _str(),
        "trading_day": _str(),
        "ts": _ts(),  # the trading day's midnight, Asia/Shanghai, in UTC
        "asset": _str(),  # ticks | validation_summary | roll_schedule
        "metric": _str(),  # e.g. download_rows_per_second, validation_seconds
        "value": pa.Column("float64", nullable=False),
        "run_id": _str(),
        "recorded_at": _ts(),
    },
    timestamp="ts",
    dedup_keys=("ts", "symbol", "asset", "metric"),
    symbol_columns=("symbol", "trading_day", "asset", "metric"),
)


def all_tables() -> tuple[TableSpec, ...]:
    """Every table this module defines, in definition order (stores create them at start-up)."""
    return tuple(v for v in globals().values() if isinstance(v, TableSpec))

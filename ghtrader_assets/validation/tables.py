"""The stored tables of a validation: the one-row summary and the gaps of a symbol-day."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import day_start_utc
from ghtrader_assets.schema import (
    VALIDATION_GAPS,
    VALIDATION_OUTLIER_RULES,
    VALIDATION_SUMMARY,
    VALIDATION_VIOLATION_RULES,
    TableSpec,
    conform,
    empty_frame,
)
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation.arrays import NAT_NS
from ghtrader_assets.validation.config import Threshold, ValidationConfig
from ghtrader_assets.validation.coverage import Coverage
from ghtrader_assets.validation.field_quality import KEY_NULL_FIELDS
from ghtrader_assets.validation.model import CheckOutcome, RuleResult, Sample
from ghtrader_assets.validation.rules import RULES
from ghtrader_assets.validation.verdict import LayerVerdict

#: Coverage rules skip themselves on an empty day; that is not worth listing as skipped.
_COVERAGE_RULES = ("gap", "event_cadence", "half_seconds_missing", "session_end_lag")


def gaps_frame(
    cov: Coverage, symbol: MainSymbol, day: dt.date, config: ValidationConfig
) -> pd.DataFrame:
    """The largest over-threshold gaps (``max_gaps_stored``), in time order, as
    VALIDATION_GAPS rows; ``attribution`` starts as ``unattributed``."""
    kept = cov.largest_gaps(config.max_gaps_stored)
    if not kept:
        return empty_frame(VALIDATION_GAPS)
    err = config.gap.error_above
    rows = [
        {
            "symbol": symbol.raw,
            "trading_day": day.isoformat(),
            "ts": pd.Timestamp(g.start_ns, tz="UTC"),
            "gap_end": pd.Timestamp(g.end_ns, tz="UTC"),
            "seconds": g.seconds,
            "session": g.kind,
            "threshold_seconds": g.warn_seconds if g.warn_seconds is not None else np.nan,
            "severity": Threshold(g.warn_seconds, err).severity(float(g.seconds)) or "WARN",
            "attribution": "unattributed",
        }
        for g in sorted(kept, key=lambda g: g.start_ns)
    ]
    return conform(pd.DataFrame(rows), VALIDATION_GAPS)


def _timestamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _count(rules: dict[str, RuleResult], name: str) -> int:
    r = rules[name]
    return 0 if r.skipped or math.isnan(r.value) else int(r.value)


def summary_frame(
    *,
    frame: pd.DataFrame,
    t: np.ndarray,
    symbol: MainSymbol,
    day: dt.date,
    cov: Coverage,
    rules: dict[str, RuleResult],
    checks: list[CheckOutcome],
    verdict: dict[str, LayerVerdict],
    config: ValidationConfig,
    sample: Sample | None,
    dropped: int,
    duration: float,
) -> pd.DataFrame:
    """The one-row VALIDATION_SUMMARY of a symbol-day (column meanings in the schema)."""

    def first_text(column: str) -> str:
        return str(frame[column].iloc[0]) if len(frame) and column in frame.columns else ""

    buckets = cov.bucket_counts()
    null_meta = rules["null_rate"].metadata
    row: dict[str, object] = {
        "symbol": symbol.raw,
        "trading_day": day.isoformat(),
        "ts": day_start_utc(day),
        "underlying": first_text("underlying"),
        "source": first_text("source"),
        "rows": len(frame),
        "first_tick": _timestamp(t[t != NAT_NS].min()) if (t != NAT_NS).any() else pd.NaT,
        "last_tick": _timestamp(t.max()) if (t != NAT_NS).any() else pd.NaT,
        "sessions": cov.sessions,
        "seconds_expected": cov.seconds_expected,
        "seconds_observed": cov.seconds_observed,
        "boundary_seconds_expected": cov.boundary_seconds_expected,
        "boundary_seconds_observed": cov.boundary_seconds_observed,
        "half_seconds_expected": cov.half_seconds_expected,
        "half_seconds_observed": cov.half_seconds_observed,
        "half_seconds_missing_share": cov.half_seconds_missing_share,
        "cadence_mode": cov.cadence_mode,
        "multi_tick_share": cov.multi_tick_share,
        "gap_count": len(cov.gaps),
        **{f"gaps_{k}": v for k, v in buckets.items()},
        "gaps_over_threshold": sum(1 for g in cov.gaps if g.over_threshold),
        "gap_seconds_total": sum(g.seconds for g in cov.gaps),
        "max_gap_seconds": max((g.seconds for g in cov.gaps), default=0),
        "interval_p50_ms": cov.interval_p50_ms,
        "interval_p95_ms": cov.interval_p95_ms,
        "interval_p99_ms": cov.interval_p99_ms,
        "interval_max_ms": cov.interval_max_ms,
        "in_session_ticks": cov.in_session_ticks,
        "boundary_ticks": cov.boundary_ticks,
        "out_of_session_ticks": cov.out_of_session_ticks,
        "out_of_session_seconds": cov.out_of_session_seconds,
        "missing_day": int(cov.missing_day),
        "session_end_lag_seconds": cov.session_end_lag_seconds,
        "duplicates_dropped": int(dropped),
        "duplicates_exact": _count(rules, "exact_duplicates"),
        "duplicates_conflicting": _count(rules, "conflicting_duplicates"),
        **{
            f"null_rate_{k}": float(null_meta.get(f"null_rate_{k}", np.nan))
            for k in KEY_NULL_FIELDS
        },
        "null_rate_depth": float(rules["null_rate_depth"].value),
        "max_null_run": _count(rules, "null_run"),
        **{f"violations_{r}": _count(rules, r) for r in VALIDATION_VIOLATION_RULES},
        **{f"outliers_{r}": _count(rules, r) for r in VALIDATION_OUTLIER_RULES},
        "rules_skipped": ", ".join(
            n for n in RULES if rules[n].skipped and n not in _COVERAGE_RULES
        ),
        "sampled": int(sample is not None),
        "sample_rows": int(sample.rows.size) if sample is not None else len(frame),
    }
    for layer, v in verdict.items():
        row[f"verdict_{layer}"], row[f"reason_{layer}"], row[f"hint_{layer}"] = (
            v.status,
            v.reason,
            v.hint,
        )
    row.update(
        checks_failed=sum(1 for c in checks if not c.passed),
        blocking_failures=", ".join(c.name for c in checks if c.blocking),
        check_outcomes=json.dumps(
            {
                c.name: {"passed": c.passed, "severity": c.severity, "blocking": c.blocking}
                for c in checks
            }
        ),
        config_hash=config.config_hash(),
        validation_seconds=duration,
        validated_at=pd.Timestamp.now(tz="UTC"),
    )
    return one_row_frame(row, VALIDATION_SUMMARY)


def one_row_frame(row: dict[str, object], spec: TableSpec) -> pd.DataFrame:
    """A one-row frame with exactly ``spec``'s columns and dtypes (cheaper than
    :func:`~ghtrader_assets.schema.conform` on a dict row: no object-dtype detour)."""
    data: dict[str, object] = {}
    for name, col in spec.schema.columns.items():
        if name not in row:
            raise KeyError(f"{spec.name}: value for column {name!r} is missing")
        dtype, value = str(col.dtype), row[name]
        if dtype.startswith("datetime64"):
            data[name] = pd.to_datetime([value], utc=True).as_unit("ns")
        elif dtype in ("int64", "float64"):
            data[name] = np.array([np.nan if value is None else value], dtype=dtype)
        else:  # the schema's string dtype, exactly as conform() casts it
            data[name] = pd.array([value], dtype=dtype)
    return pd.DataFrame(data)

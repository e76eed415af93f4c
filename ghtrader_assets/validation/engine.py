"""Validate one symbol-day (:func:`validate_day`) or a range of stored days in parallel.

One call measures every rule of :mod:`~ghtrader_assets.validation.rules` on a day's ticks,
applies the thresholds of :class:`~ghtrader_assets.validation.config.ValidationConfig`,
and returns the asset-check outcomes, the one-row validation summary and the gaps table.
Nothing but the ticks, the calendar and the configuration goes in, so a summary can always
be recomputed from stored ticks (after a threshold change) without the source.

Incremental by construction: each trading day is validated on its own, once, when its
partition materializes. :func:`pending_days` names the days whose stored summary is absent
or was computed with another configuration hash; only those are loaded and validated.

Sampling: above ``sample_threshold_rows`` rows the field-quality and outlier rules run on a
sample while coverage and duplicates stay exact. The sample is ``sample_rows`` rows made of
contiguous blocks of ``sample_block_rows`` rows, picked uniformly at random without
replacement by a generator seeded with ``sample_seed`` and the symbol-day (so re-running
picks the same rows), kept in time order. Blocks rather than single rows keep the
sequential rules meaningful: they compare a row with earlier rows of its own block only.
Counts then describe the sample; the metadata says ``sampled=1`` with the sample and
population sizes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import TZ, CalendarError
from ghtrader_assets.products import ProductSpec, UnknownProductError, product_spec
from ghtrader_assets.schema import (
    VALIDATION_GAPS,
    VALIDATION_OUTLIER_RULES,
    VALIDATION_SUMMARY,
    VALIDATION_VIOLATION_RULES,
    TableSpec,
    conform,
    empty_frame,
)
from ghtrader_assets.sessions import session_windows
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation.arrays import segments_of
from ghtrader_assets.validation.attribution import AttributionBudget, attribute_gaps, findings_of
from ghtrader_assets.validation.config import Threshold, ValidationConfig
from ghtrader_assets.validation.coverage import Coverage, compute_coverage
from ghtrader_assets.validation.field_quality import (
    KEY_NULL_FIELDS,
    float_columns,
    row_rules,
    schema_rules,
)
from ghtrader_assets.validation.model import (
    SAMPLE_ROWS,
    CheckOutcome,
    MetadataValue,
    RuleResult,
    ValidationInputError,
    ValidationResult,
)
from ghtrader_assets.validation.outliers import outlier_rules
from ghtrader_assets.validation.rules import CHECKS, RULES, rules_of
from ghtrader_assets.validation.verdict import LayerVerdict, layered_verdict

_NAT = np.iinfo(np.int64).min
_COVERAGE_RULES = ("gap", "event_cadence", "half_seconds_missing", "session_end_lag")


def drop_exact_duplicates(ticks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``ticks`` without rows that repeat an earlier row in every column, and how many went.

    Ingestion calls this before storing and hands the count to :func:`validate_day`
    (``duplicates_dropped=``) so the ``duplicates`` check reports it. Rows that share the
    ``(ts, id)`` key but differ in a value are kept: they are a conflict for the check to
    report, not a repeat to hide.
    """
    mask = _exact_duplicate_mask(ticks)
    n = int(mask.sum())
    if not n:
        return ticks, 0
    return ticks.loc[~mask].reset_index(drop=True), n


def _key_shared_mask(df: pd.DataFrame) -> np.ndarray | None:
    """Rows whose ``(ts, id)`` key occurs more than once (``None`` without key columns).

    Conformed frames take a numpy path (one pass when already sorted, else a lexsort),
    which is several times faster than ``DataFrame.duplicated(subset=...)``."""
    if not {"ts", "id"} <= set(df.columns):
        return None
    n = len(df)
    if n < 2:
        return np.zeros(n, dtype=bool)
    if not isinstance(df["ts"].dtype, pd.DatetimeTZDtype) or df["id"].dtype != np.int64:
        return df.duplicated(subset=["ts", "id"], keep=False).to_numpy()
    t, ids = pd.DatetimeIndex(df["ts"]).asi8, df["id"].to_numpy()
    order = None if _keys_sorted(t, ids) else np.lexsort((ids, t))
    st, si = (t, ids) if order is None else (t[order], ids[order])
    same = (st[1:] == st[:-1]) & (si[1:] == si[:-1])
    shared = np.zeros(n, dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    if order is None:
        return shared
    out = np.empty(n, dtype=bool)
    out[order] = shared
    return out


def _keys_sorted(t: np.ndarray, ids: np.ndarray) -> bool:
    """True when rows are ordered by (ts, id)."""
    if t.size < 2:
        return True
    step = t[1:] - t[:-1]
    if np.any(step < 0):
        return False
    ties = step == 0
    return not ties.any() or bool(np.all(ids[1:][ties] >= ids[:-1][ties]))


def _exact_duplicate_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows equal to an earlier row. Only rows sharing the key can be exact repeats, so the
    full-row comparison runs on those candidates alone (a clean day costs one key pass)."""
    if df.empty:
        return np.zeros(len(df), dtype=bool)
    candidates = _key_shared_mask(df)
    if candidates is None:
        return df.duplicated(keep="first").to_numpy()
    mask = np.zeros(len(df), dtype=bool)
    if candidates.any():
        mask[candidates] = df.loc[candidates].duplicated(keep="first").to_numpy()
    return mask


def _conflicting_key_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows sharing their key with another row that is not an exact copy (run after exact
    duplicates are gone)."""
    shared = _key_shared_mask(df)
    return np.zeros(len(df), dtype=bool) if shared is None else shared


# -- inputs ----------------------------------------------------------------------------------


def _check_inputs(
    ticks: object,
    symbol: object,
    trading_day: object,
    limits: object,
    duplicates_dropped: object,
) -> tuple[float, float] | None:
    where = f"{symbol} {trading_day}"
    if not isinstance(symbol, MainSymbol):
        raise ValidationInputError(f"validate_day: symbol must be a MainSymbol, got {symbol!r}")
    if isinstance(trading_day, dt.datetime) or not isinstance(trading_day, dt.date):
        raise ValidationInputError(f"{symbol}: trading_day must be a date, got {trading_day!r}")
    if not isinstance(ticks, pd.DataFrame):
        raise ValidationInputError(
            f"{where}: ticks must be a DataFrame, got {type(ticks).__name__}"
        )
    if "ts" not in ticks.columns:
        raise ValidationInputError(
            f"{where}: ticks have no 'ts' column; cannot place them in sessions"
        )
    if not isinstance(duplicates_dropped, (int, np.integer)) or duplicates_dropped < 0:
        raise ValidationInputError(f"{where}: duplicates_dropped must be an int >= 0")
    if limits is None:
        return None
    try:
        lower, upper = (float(x) for x in limits)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValidationInputError(
            f"{where}: limits must be (lower, upper), got {limits!r}"
        ) from None
    if not (math.isfinite(lower) and math.isfinite(upper) and 0 < lower < upper):
        raise ValidationInputError(
            f"{where}: limits must satisfy 0 < lower < upper, got {limits!r}"
        )
    return lower, upper


def _tick_times(ticks: pd.DataFrame, where: str) -> np.ndarray:
    ts = ticks["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        try:
            ts = pd.to_datetime(ts, utc=True)
        except (TypeError, ValueError) as exc:
            raise ValidationInputError(f"{where}: column 'ts' is not a timestamp: {exc}") from None
    return pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8


def _sorted(frame: pd.DataFrame, t: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` ordered by (ts, id); stable, so the first of equal rows stays first."""
    ids = frame["id"].to_numpy() if "id" in frame.columns else None
    if ids is None or ids.dtype.kind not in "iu":
        ids = np.zeros(t.size, dtype=np.int64)  # no usable id: order by time alone
    if _keys_sorted(t, ids):
        return frame.reset_index(drop=True), t
    order = np.lexsort((ids, t))  # NaT (int64 min) sorts first
    return frame.iloc[order].reset_index(drop=True), t[order]


# -- sampling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Row positions of the field-quality sample and where its blocks start."""

    rows: np.ndarray
    block_starts: np.ndarray
    population: int


def choose_sample(
    n: int, symbol: MainSymbol, day: dt.date, config: ValidationConfig
) -> Sample | None:
    """The block sample for a day of ``n`` rows, or ``None`` when the day is small enough."""
    if n <= config.sample_threshold_rows or config.sample_rows >= n:
        return None
    size = config.sample_block_rows
    blocks = -(-n // size)
    take = min(blocks, -(-config.sample_rows // size))
    seed = [config.sample_seed, zlib.crc32(f"{symbol.raw}|{day.isoformat()}".encode())]
    chosen = np.sort(np.random.default_rng(seed).choice(blocks, size=take, replace=False))
    rows = (chosen[:, None] * size + np.arange(size)[None, :]).ravel()
    rows = rows[rows < n]
    starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
    return Sample(rows=rows, block_starts=starts, population=n)


# -- the day ---------------------------------------------------------------------------------


def validate_day(
    ticks: pd.DataFrame,
    symbol: MainSymbol,
    trading_day: dt.date,
    config: ValidationConfig | None = None,
    *,
    limits: tuple[float, float] | None = None,
    duplicates_dropped: int = 0,
    refetch: Callable[[], pd.DataFrame] | None = None,
    attribution_budget: AttributionBudget | None = None,
) -> ValidationResult:
    """Validate one symbol-day of ticks (conformed to TICKS, as stored or as downloaded).

    ``limits``: the day's ``(lower, upper)`` limit prices when known (TqSdk ticks carry
    none; the limit-band rule is skipped without them). ``duplicates_dropped``: exact
    duplicate rows ingestion removed before storing. ``refetch``: re-downloads the day from
    the source; used only when ``config.attribution_enabled`` and the day has gaps, within
    ``attribution_budget`` (see :mod:`~ghtrader_assets.validation.attribution`).
    Raises :class:`ValidationInputError` when the input cannot be validated at all.
    """
    started = time.perf_counter()
    config = config or ValidationConfig()
    limits = _check_inputs(ticks, symbol, trading_day, limits, duplicates_dropped)
    where = f"{symbol.raw} {trading_day}"
    try:
        spec = product_spec(symbol.exchange, symbol.product)
        windows = session_windows(symbol.exchange, symbol.product, trading_day)
    except (UnknownProductError, CalendarError) as exc:
        raise ValidationInputError(f"{where}: {exc}") from None

    exact_present = _exact_duplicate_mask(ticks)
    frame = ticks.loc[~exact_present] if exact_present.any() else ticks
    frame, t = _sorted(frame, _tick_times(frame, where))
    conflicting = _conflicting_key_mask(frame)
    valid_ts = t != _NAT
    t_ok = t[valid_ts] if not valid_ts.all() else t
    cov = compute_coverage(t_ok, windows, config, symbol.exchange, symbol.product)
    in_session = _expand(cov.in_session, valid_ts)
    window_of = _expand(cov.window_of, valid_ts, fill=-1)
    out_of_session = _expand(cov.out_of_session, valid_ts)

    sample = choose_sample(len(frame), symbol, trading_day, config)
    # the first tick after a gap (>= 2 empty seconds, above its threshold or not) is not
    # judged against the ticks before the hole: what accumulated during the hole would
    # show as a price jump or a volume spike
    after_hole = np.zeros(len(frame), dtype=bool)
    holes = [g.end_ns for g in cov.gaps]
    starts = np.searchsorted(t, np.asarray(holes, dtype=np.int64), side="left")
    after_hole[starts[starts < len(frame)]] = True
    rules, fq = _field_rules(frame, in_session, window_of, after_hole, sample, config, spec, limits)
    rules.update(_duplicate_rules(frame, ticks, exact_present, conflicting, duplicates_dropped))
    rules.update(
        _coverage_rules(cov, frame, out_of_session, config, symbol.exchange, symbol.product)
    )

    severities = {name: _severity(name, r, config, cov) for name, r in rules.items()}
    gaps = _gaps_frame(cov, symbol, trading_day, config)
    extra = []
    if config.attribution_enabled and refetch is not None and len(gaps):
        gaps = attribute_gaps(gaps, refetch, config=config, budget=attribution_budget)
        extra = findings_of(gaps)
    checks = [_check_outcome(check.name, rules, severities, config, fq, sample) for check in CHECKS]
    verdict = layered_verdict({r: s for r, s in severities.items() if s}, extra)
    duration = time.perf_counter() - started
    summary = _summary(
        frame=frame,
        t=t,
        symbol=symbol,
        day=trading_day,
        cov=cov,
        rules=rules,
        checks=checks,
        verdict=verdict,
        config=config,
        sample=sample,
        dropped=duplicates_dropped,
        duration=duration,
    )
    return ValidationResult(
        symbol=symbol.raw,
        trading_day=trading_day.isoformat(),
        checks=checks,
        summary=summary,
        gaps=gaps,
        duration_seconds=duration,
        rules=rules,
        failed_rules={r: s for r, s in severities.items() if s},
    )


def _field_rules(
    frame: pd.DataFrame,
    in_session: np.ndarray,
    window_of: np.ndarray,
    after_hole: np.ndarray,
    sample: Sample | None,
    config: ValidationConfig,
    spec: ProductSpec,
    limits: tuple[float, float] | None,
) -> tuple[dict[str, RuleResult], pd.DataFrame]:
    """Schema, row, null and outlier rules on the whole day or its sample; returns the
    results and the frame they were measured on (row positions refer to it)."""
    fq = frame if sample is None else frame.iloc[sample.rows].reset_index(drop=True)
    block_starts = None if sample is None else sample.block_starts
    rules: dict[str, RuleResult] = schema_rules(fq)
    cols = float_columns(fq)
    row_results, bad = row_rules(
        cols, config, five_levels=spec.five_levels, limits=limits, segment_starts=block_starts
    )
    rules.update(row_results)
    for name in ("non_positive_price", "negative_volume"):
        bad[rules[name].rows] = True
    if sample is not None:
        in_session, window_of = in_session[sample.rows], window_of[sample.rows]
        after_hole = after_hole[sample.rows]
    # outlier statistics never compare across a session break, a gap or a sample cut
    cuts = np.union1d(np.flatnonzero(np.diff(window_of) != 0) + 1, np.flatnonzero(after_hole))
    if block_starts is not None:
        cuts = np.union1d(cuts, block_starts)
    rules.update(
        outlier_rules(
            cols,
            config,
            tick_size=spec.tick_size,
            judged=in_session & ~bad,
            segments=segments_of(len(fq), cuts),
            cumulative_segments=segments_of(len(fq), block_starts),
        )
    )
    return rules, fq


def _expand(values: np.ndarray, valid: np.ndarray, fill: object = False) -> np.ndarray:
    if valid.all():
        return values
    out = np.full(valid.size, fill, dtype=values.dtype)
    out[valid] = values
    return out


def _duplicate_rules(
    frame: pd.DataFrame,
    original: pd.DataFrame,
    exact_present: np.ndarray,
    conflicting: np.ndarray,
    dropped: int,
) -> dict[str, RuleResult]:
    present = int(exact_present.sum())
    exact = RuleResult(
        "exact_duplicates",
        float(present + dropped),
        metadata={"duplicates_dropped": int(dropped), "duplicates_present": present},
    )
    if present:
        exact.sample = _rows_sample(
            original, np.flatnonzero(exact_present), ("last_price", "volume")
        )
    conflict = RuleResult("conflicting_duplicates", float(conflicting.sum()))
    if conflicting.any():
        conflict.sample = _rows_sample(frame, np.flatnonzero(conflicting), ("last_price", "volume"))
    return {"exact_duplicates": exact, "conflicting_duplicates": conflict}


def _coverage_rules(
    cov: Coverage,
    frame: pd.DataFrame,
    out_of_session: np.ndarray,
    config: ValidationConfig,
    exchange: str,
    product: str,
) -> dict[str, RuleResult]:
    buckets = cov.bucket_counts()
    no_ticks = "no ticks inside the sessions (see completeness)"
    largest = cov.largest_gaps(SAMPLE_ROWS, over_threshold_only=False)
    gap_meta: dict[str, MetadataValue] = {
        "gap_count": len(cov.gaps),
        **{f"gaps_{k}": v for k, v in buckets.items()},
        "gap_seconds_total": sum(g.seconds for g in cov.gaps),
        "gaps_over_threshold": sum(1 for g in cov.gaps if g.over_threshold),
    }
    if largest:
        worst = largest[0]
        gap_meta.update(
            worst_gap_start=str(pd.Timestamp(worst.start_ns, tz="UTC").tz_convert(TZ)),
            worst_gap_session=worst.kind,
        )
    gap = RuleResult(
        "gap",
        float(largest[0].seconds) if largest else 0.0,
        sample=_gap_sample(largest) if largest else None,
        metadata=gap_meta,
        skipped=no_ticks if cov.missing_day else None,
    )
    expected_event = f"{exchange}.{product}" in config.event_cadence_products
    mode = RuleResult(
        "event_cadence",
        1.0 if cov.cadence_mode == "event" and not expected_event else 0.0,
        metadata={"expected_cadence": "event" if expected_event else "fixed"},
        skipped=no_ticks if cov.missing_day else None,
    )
    if mode.value:
        mode.sample = pd.DataFrame(
            {
                "cadence_mode": [cov.cadence_mode],
                "multi_tick_share": [cov.multi_tick_share],
                "interval_p50_ms": [cov.interval_p50_ms],
            }
        )
    cadence = RuleResult(
        "half_seconds_missing",
        cov.half_seconds_missing_share,
        metadata={
            "cadence_mode": cov.cadence_mode,
            "multi_tick_share": _num(cov.multi_tick_share),
            "half_seconds_expected": cov.half_seconds_expected,
            "half_seconds_observed": cov.half_seconds_observed,
            "half_seconds_in_holes": cov.half_seconds_in_holes,
        },
        sample=_minutes_sample(cov),
        skipped=no_ticks
        if cov.missing_day
        else (
            None
            if cov.cadence_mode == "fixed"
            else "event-driven cadence: empty half-seconds are normal"
        ),
    )
    oos_rows = np.flatnonzero(out_of_session)
    oos = RuleResult(
        "out_of_session",
        float(cov.out_of_session_seconds),
        metadata={
            "out_of_session_ticks": cov.out_of_session_ticks,
            "boundary_ticks": cov.boundary_ticks,
            "in_session_ticks": cov.in_session_ticks,
        },
        sample=_rows_sample(frame, oos_rows, ("last_price", "volume")) if oos_rows.size else None,
    )
    missing = RuleResult(
        "missing_day",
        1.0 if cov.missing_day else 0.0,
        metadata={
            "sessions": cov.sessions,
            "seconds_expected": cov.seconds_expected,
            "seconds_observed": cov.seconds_observed,
        },
    )
    if cov.missing_day:
        missing.sample = pd.DataFrame(
            {"rule": ["missing_day"], "sessions": [cov.sessions], "rows": [len(frame)]}
        )
    lag = RuleResult(
        "session_end_lag",
        cov.session_end_lag_seconds,
        skipped=no_ticks if cov.missing_day else None,
    )
    if cov.last_session_end_ns is not None:
        end = pd.Timestamp(cov.last_session_end_ns, tz="UTC")
        lag.metadata["last_session_end"] = str(end.tz_convert(TZ))
        if not math.isnan(cov.session_end_lag_seconds):
            last = end - pd.Timedelta(seconds=cov.session_end_lag_seconds)
            lag.sample = pd.DataFrame(
                {
                    "rule": ["session_end_lag"],
                    "last_tick": [last],
                    "session_end": [end],
                    "lag_seconds": [cov.session_end_lag_seconds],
                }
            )
    return {
        "gap": gap,
        "event_cadence": mode,
        "half_seconds_missing": cadence,
        "out_of_session": oos,
        "missing_day": missing,
        "session_end_lag": lag,
    }


def _severity(name: str, result: RuleResult, config: ValidationConfig, cov: Coverage) -> str | None:
    threshold: Threshold = config.threshold(name)
    if result.skipped or not threshold.enabled:
        return None
    if name != "gap":
        return threshold.severity(result.value)
    # gaps: the warn level depends on the product and session kind of each gap
    worst = None
    for g in cov.gaps:
        level = Threshold(g.warn_seconds, threshold.error_above).severity(float(g.seconds))
        if level == "ERROR":
            return level
        worst = level or worst
    return worst


# -- outcomes --------------------------------------------------------------------------------


def _num(value: float) -> float | int | str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(float(value), 6)


def _unit(unit: str) -> str:
    return "" if unit == "flag" else f" {unit}"


def _describe_threshold(t: Threshold) -> str:
    if not t.enabled:
        return "off"
    parts = [
        f"warn>{_num(float(t.warn_above))}" if t.warn_above is not None else "",
        f"error>{_num(float(t.error_above))}" if t.error_above is not None else "",
    ]
    return " ".join(p for p in parts if p) or "info only"


def _check_outcome(
    name: str,
    rules: dict[str, RuleResult],
    severities: dict[str, str | None],
    config: ValidationConfig,
    fq: pd.DataFrame,
    sample: Sample | None,
) -> CheckOutcome:
    check = next(c for c in CHECKS if c.name == name)
    defs = rules_of(name)
    failed = [r.name for r in defs if severities.get(r.name)]
    severity = "ERROR" if any(severities[r] == "ERROR" for r in failed) else "WARN"
    meta: dict[str, MetadataValue] = {}
    for rd in defs:
        r = rules[rd.name]
        meta[rd.name] = _num(r.value)
        meta[f"{rd.name}_threshold"] = _describe_threshold(config.threshold(rd.name))
        if r.skipped:
            meta[f"{rd.name}_skipped"] = r.skipped
        meta.update({k: _num(v) if isinstance(v, float) else v for k, v in r.metadata.items()})
    meta["failed_rules"] = ", ".join(failed) or "none"
    if name in ("field_quality", "book_integrity", "nulls", "outliers"):
        meta["sampled"] = int(sample is not None)
        if sample is not None:
            meta.update(
                sample_rows=int(sample.rows.size),
                population_rows=sample.population,
                sample_method=f"random blocks of {config.sample_block_rows} rows, seed "
                f"{config.sample_seed}+symbol-day",
            )
    if failed:
        first = RULES[failed[0]]
        shown = "; ".join(
            f"{r} = {_num(rules[r].value)}{_unit(RULES[r].unit)} ({severities[r]}, "
            f"{_describe_threshold(config.threshold(r))})"
            for r in failed
        )
        description = f"{shown}. Action: {first.hint}"
    else:
        description = check.description
    return CheckOutcome(
        name=name,
        passed=not failed,
        severity=severity,
        blocking=bool(failed) and severity == "ERROR" and check.blocking,
        description=description,
        metadata=meta,
        sample=_check_sample([rules[r] for r in failed], fq),
    )


def _rows_sample(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    shown = [c for c in ("ts", "id", *columns) if c in frame.columns]
    part = frame.iloc[rows[:SAMPLE_ROWS]][shown].reset_index(drop=True)
    return part


def _check_sample(failed: list[RuleResult], fq: pd.DataFrame) -> pd.DataFrame:
    """Up to ``SAMPLE_ROWS`` offending rows, shared round-robin among the failed rules."""
    parts: list[pd.DataFrame] = []
    for r in failed:
        if r.sample is not None:
            part = r.sample.head(SAMPLE_ROWS).copy()
        elif r.rows is not None and r.rows.size:
            part = _rows_sample(fq, r.rows, r.columns)
        else:
            continue
        if "rule" in part.columns:
            part = part.drop(columns="rule")
        part.insert(0, "rule", r.name)
        parts.append(part)
    if not parts:
        return pd.DataFrame({"rule": pd.Series([], dtype="str")})
    share = max(1, SAMPLE_ROWS // len(parts))
    ordered = [p.head(share) for p in parts] + [p.iloc[share:] for p in parts]
    return pd.concat([p for p in ordered if len(p)], ignore_index=True).head(SAMPLE_ROWS)


def _gap_sample(gaps: Iterable) -> pd.DataFrame:
    rows = [
        {
            "start": pd.Timestamp(g.start_ns, tz="UTC").tz_convert(TZ),
            "end": pd.Timestamp(g.end_ns, tz="UTC").tz_convert(TZ),
            "seconds": g.seconds,
            "session": g.kind,
        }
        for g in gaps
    ]
    return pd.DataFrame(rows)


def _minutes_sample(cov: Coverage) -> pd.DataFrame | None:
    if not cov.worst_minutes:
        return None
    return pd.DataFrame(
        {
            "minute": [pd.Timestamp(m, tz="UTC").tz_convert(TZ) for m, _ in cov.worst_minutes],
            "half_seconds_missing": [k for _, k in cov.worst_minutes],
        }
    )


# -- tables ----------------------------------------------------------------------------------


def day_start_utc(trading_day: dt.date) -> pd.Timestamp:
    """Midnight of the trading day in Shanghai, as UTC (the ``ts`` of per-day rows)."""
    return pd.Timestamp(trading_day).tz_localize(TZ).tz_convert("UTC")


def _gaps_frame(
    cov: Coverage, symbol: MainSymbol, day: dt.date, config: ValidationConfig
) -> pd.DataFrame:
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


def _summary(
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
        "first_tick": _timestamp(t[t != _NAT].min()) if (t != _NAT).any() else pd.NaT,
        "last_tick": _timestamp(t.max()) if (t != _NAT).any() else pd.NaT,
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


# -- many days -------------------------------------------------------------------------------


class ValidationRangeError(RuntimeError):
    """Some days of a range could not be validated; ``results`` holds the days that could."""

    def __init__(
        self, failures: dict[dt.date, BaseException], results: dict[dt.date, ValidationResult]
    ):
        self.failures = failures
        self.results = results
        listed = "; ".join(f"{d}: {e}" for d, e in sorted(failures.items())[:5])
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} day(s) failed validation: {listed}{more}")


def _load_and_validate(
    loader: Callable[[dt.date], pd.DataFrame],
    symbol: MainSymbol,
    day: dt.date,
    config: ValidationConfig,
    limits: tuple[float, float] | None,
) -> ValidationResult:
    """One day of :func:`validate_range` (module level so worker processes can run it)."""
    return validate_day(loader(day), symbol, day, config, limits=limits)


def validate_range(
    days: Sequence[dt.date],
    loader: Callable[[dt.date], pd.DataFrame],
    symbol: MainSymbol,
    config: ValidationConfig | None = None,
    *,
    max_workers: int = 2,
    limits: Callable[[dt.date], tuple[float, float] | None] | None = None,
    executor: Literal["thread", "process"] = "thread",
) -> dict[dt.date, ValidationResult]:
    """Validate ``days`` of ``symbol`` from stored ticks (``loader(day)``), in parallel.

    ``executor="thread"`` (default) suits loaders that wait on I/O (PGWire, object
    stores) and needs nothing picklable; validation itself is mostly pandas/pandera Python
    code that holds the GIL, so threads barely speed up CPU-bound days
    (``bench/validate.py`` prints both). ``executor="process"`` scales with cores; it needs
    a picklable ``loader`` (a module-level function or ``functools.partial``) that reads
    the day inside the worker, so only the small result travels back. Inside Dagster,
    days are partitions and the executor already runs them in parallel within its limits;
    this is for the CLI and re-validation after a threshold change. Every day is
    attempted; failures are raised together at the end (:class:`ValidationRangeError`)
    with the results of the days that succeeded.
    """
    config = config or ValidationConfig()
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if executor not in ("thread", "process"):
        raise ValueError(f"executor must be 'thread' or 'process', got {executor!r}")
    pool_type = ThreadPoolExecutor if executor == "thread" else ProcessPoolExecutor
    results: dict[dt.date, ValidationResult] = {}
    failures: dict[dt.date, BaseException] = {}
    with pool_type(max_workers=max_workers) as pool:
        futures = {
            day: pool.submit(
                _load_and_validate, loader, symbol, day, config, limits(day) if limits else None
            )
            for day in days
        }
        for day, fut in futures.items():
            try:
                results[day] = fut.result()
            except Exception as exc:  # collected and re-raised together below
                failures[day] = exc
    if failures:
        raise ValidationRangeError(failures, results)
    return results


def pending_days(
    days: Iterable[dt.date], summaries: pd.DataFrame, config: ValidationConfig | None = None
) -> list[dt.date]:
    """The days among ``days`` without a stored summary computed with ``config``'s hash.

    With 30 days validated and one new day, only the new day is pending; after a threshold
    change every day is pending again (its summary is recomputed from stored ticks).
    """
    config = config or ValidationConfig()
    done: set[str] = set()
    if len(summaries):
        missing = {"trading_day", "config_hash"} - set(summaries.columns)
        if missing:
            raise ValidationInputError(f"validation summaries lack columns {sorted(missing)}")
        current = summaries["config_hash"].astype(str) == config.config_hash()
        done = set(summaries.loc[current, "trading_day"].astype(str))
    return [d for d in days if d.isoformat() not in done]

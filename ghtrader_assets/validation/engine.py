"""Validate one symbol-day: :func:`validate_day`, the function the asset layer calls.

One call measures every rule of :mod:`~ghtrader_assets.validation.rules` on a day's ticks,
applies the thresholds of :class:`~ghtrader_assets.validation.config.ValidationConfig`,
and returns the asset-check outcomes, the one-row validation summary and the gaps table.
Nothing but the ticks, the calendar and the configuration goes in, so a summary can always
be recomputed from stored ticks (after a threshold change) without the source.

Many days (parallel, incremental) are handled in :mod:`~ghtrader_assets.validation.ranges`.

Sampling: above ``sample_threshold_rows`` rows the field-quality and outlier rules run on a
sample while coverage and duplicates stay exact. The sample is ``sample_rows`` rows made of
contiguous blocks of ``sample_block_rows`` rows, picked uniformly at random without
replacement by a generator seeded with ``sample_seed`` and the symbol-day (so re-running
picks the same rows), kept in time order. Blocks rather than single rows keep the
sequential rules meaningful: they compare a row with earlier rows of its own block only.
Counts then describe the sample; the check metadata says ``validation_sampled=true`` and
``sample_fraction`` with the sample and population sizes (the summary row: ``sampled=1``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import CalendarError
from ghtrader_assets.products import ProductSpec, UnknownProductError, product_spec
from ghtrader_assets.sessions import session_windows
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation.arrays import NAT_NS, segments_of
from ghtrader_assets.validation.attribution import AttributionBudget, attribute_gaps, findings_of
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.coverage import compute_coverage, coverage_rules
from ghtrader_assets.validation.duplicates import (
    conflicting_key_mask,
    duplicate_rules,
    exact_duplicate_mask,
    keys_sorted,
)
from ghtrader_assets.validation.field_quality import float_columns, row_rules, schema_rules
from ghtrader_assets.validation.model import (
    RuleResult,
    Sample,
    ValidationInputError,
    ValidationResult,
)
from ghtrader_assets.validation.outcomes import check_outcome, rule_severity
from ghtrader_assets.validation.outliers import outlier_rules
from ghtrader_assets.validation.rules import CHECKS
from ghtrader_assets.validation.tables import gaps_frame, summary_frame
from ghtrader_assets.validation.verdict import layered_verdict

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
    if keys_sorted(t, ids):
        return frame.reset_index(drop=True), t
    order = np.lexsort((ids, t))  # NaT (int64 min) sorts first
    return frame.iloc[order].reset_index(drop=True), t[order]


# -- sampling --------------------------------------------------------------------------------


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
    excluded: pd.DataFrame | None = None,
) -> ValidationResult:
    """Validate one symbol-day of ticks (conformed to TICKS, as stored or as downloaded).

    ``limits``: the day's ``(lower, upper)`` limit prices when known (TqSdk ticks carry
    none; the limit-band rule is skipped without them). ``duplicates_dropped``: exact
    duplicate rows ingestion removed before storing. ``refetch``: re-downloads the day from
    the source; used only when ``config.attribution_enabled`` and the day has gaps, within
    ``attribution_budget`` (see :mod:`~ghtrader_assets.validation.attribution`).
    ``excluded``: rows the source left out before storing (misdated rows of a one-day
    file), reported by the ``misdated_rows`` rule of ``out_of_session``.
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

    exact_present = exact_duplicate_mask(ticks)
    frame = ticks.loc[~exact_present] if exact_present.any() else ticks
    frame, t = _sorted(frame, _tick_times(frame, where))
    conflicting = conflicting_key_mask(frame)
    valid_ts = t != NAT_NS
    t_ok = t[valid_ts] if not valid_ts.all() else t
    volume = frame["volume"].to_numpy(dtype=np.float64) if "volume" in frame.columns else None
    if volume is not None and not valid_ts.all():
        volume = volume[valid_ts]
    cov = compute_coverage(t_ok, windows, config, symbol.exchange, symbol.product, volume)
    in_session = _expand(cov.in_session, valid_ts)
    window_of = _expand(cov.window_of, valid_ts, fill=-1)
    out_of_session = _expand(cov.out_of_session, valid_ts)
    snapshot = _expand(cov.snapshot, valid_ts) if cov.snapshot.size else None

    sample = choose_sample(len(frame), symbol, trading_day, config)
    # the first tick after a gap (>= 2 empty seconds, above its threshold or not) is not
    # judged against the ticks before the hole: what accumulated during the hole would
    # show as a price jump or a volume spike
    after_hole = np.zeros(len(frame), dtype=bool)
    holes = [g.end_ns for g in cov.gaps]
    starts = np.searchsorted(t, np.asarray(holes, dtype=np.int64), side="left")
    after_hole[starts[starts < len(frame)]] = True
    rules, fq = _field_rules(
        frame, in_session, window_of, after_hole, sample, config, spec, limits, snapshot
    )
    rules.update(duplicate_rules(frame, ticks, exact_present, conflicting, duplicates_dropped))
    rules.update(
        coverage_rules(
            cov, frame, out_of_session, config, symbol.exchange, symbol.product, excluded
        )
    )

    severities = {name: rule_severity(name, r, config, cov) for name, r in rules.items()}
    gaps = gaps_frame(cov, symbol, trading_day, config)
    extra = []
    if config.attribution_enabled and refetch is not None and len(gaps):
        gaps = attribute_gaps(gaps, refetch, config=config, budget=attribution_budget)
        extra = findings_of(gaps)
    checks = [check_outcome(check.name, rules, severities, config, fq, sample) for check in CHECKS]
    verdict = layered_verdict({r: s for r, s in severities.items() if s}, extra)
    duration = time.perf_counter() - started
    summary = summary_frame(
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
    snapshot: np.ndarray | None = None,
) -> tuple[dict[str, RuleResult], pd.DataFrame]:
    """Schema, row, null and outlier rules on the whole day or its sample; returns the
    results and the frame they were measured on (row positions refer to it)."""
    fq = frame if sample is None else frame.iloc[sample.rows].reset_index(drop=True)
    block_starts = None if sample is None else sample.block_starts
    rules: dict[str, RuleResult] = schema_rules(fq)
    cols = float_columns(fq)
    if snapshot is not None and sample is not None:
        snapshot = snapshot[sample.rows]
    row_results, bad = row_rules(
        cols,
        config,
        five_levels=spec.five_levels,
        limits=limits,
        segment_starts=block_starts,
        null_exempt=snapshot,
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

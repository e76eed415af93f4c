"""Outlier rules: price jumps, volume spikes and spread anomalies, computed from the ticks.

Only *judged* rows take part: ticks inside a session window that broke no hard value rule
(a crossed or negative row is already an error; counting it again as an outlier would make
one defect trip two checks). Statistics look backwards only, so a tick is compared with the
ticks before it, never with itself.

* **Price jump**: the change of ``last_price`` from the previous judged tick exceeds
  ``price_jump_sigma`` (k = 5) times the rolling standard deviation of the previous
  ``price_jump_window`` changes, floored at one tick size. Within one day the price level
  barely moves, so price changes are returns up to a constant; the one-tick floor stops a
  quiet stretch (all changes zero, standard deviation zero) from flagging any one-tick move.
  Changes across a session break (the opening move after lunch or the night) or across a
  gap of two or more empty seconds are not judged: the first is a real market gap, the
  second is already reported as a gap.
* **Volume spike**: the volume traded by a tick (cumulative volume minus the running max of
  earlier ticks) exceeds ``volume_spike_factor`` (10) times the rolling median of the
  previous ``volume_spike_window`` ticks, the median floored at
  ``volume_spike_min_median`` lots. The first tick after a session break or a gap (two or
  more empty seconds) is not judged: it carries the volume of the whole break or hole.
* **Spread anomaly**: ``ask1 - bid1`` exceeds ``spread_anomaly_factor`` (3) times the day's
  95th-percentile spread, floored at one tick size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ghtrader_assets.validation.arrays import Segments, prev_running_max, segment_ids
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.model import RuleResult


def outlier_rules(
    cols: dict[str, np.ndarray],
    config: ValidationConfig,
    *,
    tick_size: float,
    judged: np.ndarray,
    segments: Segments,
    cumulative_segments: Segments,
) -> dict[str, RuleResult]:
    """The three outlier rules. ``segments`` cut the price series (sessions, sample blocks);
    ``cumulative_segments`` cut only the cumulative volume (sample blocks)."""
    n = judged.size
    seg = segment_ids(n, segments)
    return {
        "price_jump": _price_jumps(cols["last_price"], config, tick_size, judged, seg),
        "volume_spike": _volume_spikes(cols["volume"], config, judged, seg, cumulative_segments),
        "spread_anomaly": _spread_anomalies(cols, config, tick_size, judged),
    }


def _rolling_previous(values: np.ndarray, window: int, min_periods: int, how: str) -> np.ndarray:
    """Rolling std/median of the ``window`` values before each position (NaN are skipped)."""
    roll = pd.Series(values).rolling(window, min_periods=min_periods)
    stat = roll.std() if how == "std" else roll.median()
    return stat.shift(1).to_numpy(dtype=np.float64, na_value=np.nan)


def _price_jumps(
    price: np.ndarray, config: ValidationConfig, tick: float, judged: np.ndarray, seg: np.ndarray
) -> RuleResult:
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(judged & np.isfinite(price) & (price > 0))
    if idx.size < 2:
        return RuleResult("price_jump", 0.0, rows=np.zeros(0, np.int64), columns=("last_price",))
    change = np.diff(price[idx])
    change[seg[idx[1:]] != seg[idx[:-1]]] = np.nan  # never across a session break or a cut
    sigma = _rolling_previous(change, config.price_jump_window, config.outlier_min_periods, "std")
    limit = config.price_jump_sigma * np.fmax(sigma, tick)
    with np.errstate(invalid="ignore"):
        jump = (np.abs(change) > limit) & ~np.isnan(sigma)
    rows = idx[1:][jump]
    meta: dict[str, float | int | str] = {}
    if rows.size:
        meta["price_jump_max_ticks"] = float(np.nanmax(np.abs(change[jump])) / tick)
    return RuleResult(
        "price_jump", float(rows.size), rows=rows, columns=("last_price",), metadata=meta
    )


def _volume_spikes(
    volume: np.ndarray,
    config: ValidationConfig,
    judged: np.ndarray,
    seg: np.ndarray,
    cumulative_segments: Segments,
) -> RuleResult:
    with np.errstate(invalid="ignore"):
        traded = volume - prev_running_max(volume, cumulative_segments)
        traded[traded < 0] = np.nan  # a decrease is a field-quality error, not a spike
    # the first tick of a segment carries what traded during the break or hole before it
    traded[np.flatnonzero(np.diff(seg, prepend=seg[:1] - 1) != 0)] = np.nan
    idx = np.flatnonzero(judged & np.isfinite(traded))
    if idx.size < 2:
        return RuleResult("volume_spike", 0.0, rows=np.zeros(0, np.int64), columns=("volume",))
    inc = traded[idx]
    median = _rolling_previous(
        inc, config.volume_spike_window, config.outlier_min_periods, "median"
    )
    limit = config.volume_spike_factor * np.fmax(median, config.volume_spike_min_median)
    with np.errstate(invalid="ignore"):
        spike = (inc > limit) & ~np.isnan(median)
    rows = idx[spike]
    meta: dict[str, float | int | str] = {}
    if rows.size:
        meta["volume_spike_max_lots"] = float(inc[spike].max())
    return RuleResult(
        "volume_spike", float(rows.size), rows=rows, columns=("volume",), metadata=meta
    )


def _spread_anomalies(
    cols: dict[str, np.ndarray], config: ValidationConfig, tick: float, judged: np.ndarray
) -> RuleResult:
    spread = cols["ask_price1"] - cols["bid_price1"]
    with np.errstate(invalid="ignore"):
        ok = judged & np.isfinite(spread) & (spread > 0)
    if not ok.any():
        return RuleResult("spread_anomaly", 0.0, rows=np.zeros(0, np.int64))
    p95 = float(np.percentile(spread[ok], 95))
    limit = config.spread_anomaly_factor * max(p95, tick)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero(ok & (spread > limit))
    meta: dict[str, float | int | str] = {"spread_p95": p95, "spread_limit": limit}
    if rows.size:
        meta["spread_max"] = float(spread[rows].max())
    return RuleResult(
        "spread_anomaly",
        float(rows.size),
        rows=rows,
        columns=("bid_price1", "ask_price1"),
        metadata=meta,
    )

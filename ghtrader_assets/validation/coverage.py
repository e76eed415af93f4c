"""Session-aware coverage of one symbol-day: seconds, half-seconds, gaps, cadence, lag.

Everything is computed exactly from the tick timestamps (coverage is never sampled) with a
handful of ``searchsorted``/``bincount`` passes per session window, so a 60k-row day costs a
few milliseconds.

Definitions (all per session window ``[start, end)`` from
:func:`ghtrader_assets.sessions.session_windows`):

* *Expected seconds*: every whole second of every window. A second is *observed* when it
  holds at least one tick.
* *Boundary seconds*: the first and the last second of each window are treated separately.
  Exchanges print the opening and closing snapshots on their own schedule (one tick, or a
  tick stamped exactly at the end), so these seconds are counted on their own
  (``boundary_seconds_*``) and excluded from cadence and gap runs; the remaining
  *interior* seconds are judged.
* *Boundary ticks*: call-auction prints shortly before an opening window (the night session
  and the first day session; ``pre_open_grace_seconds``) and closing prints just after any
  window end (``post_close_grace_seconds``) are neither in session nor out of session.
* *Cadence*: ``fixed`` when at least ``fixed_cadence_min_share`` of the interior seconds that
  have ticks have two or more (the exchange's 500 ms snapshot stream), else ``event``
  (ticks only on change). The missing share of expected half-seconds is judged on fixed days
  only; on event days an empty half-second is normal.
* *Half-seconds*: the interior's half-second slots; those inside a gap above its threshold
  or inside the session-end lag are left out of the missing share (they are reported by
  the gap and lag rules), so one hole never fails two rules.
* *Gaps*: maximal runs of at least two empty interior seconds. The run that reaches the end
  of the last window is not a gap but the *session-end lag* (close of the last window minus
  the last tick), so one hole is never reported twice.
* *Intervals*: differences between consecutive in-session ticks of the same window (a
  session break is not an interval), as percentiles in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sessions import SessionWindow
from ghtrader_assets.validation.arrays import true_runs
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.model import SAMPLE_ROWS, MetadataValue, RuleResult
from ghtrader_assets.validation.samples import rows_sample

NS = 1_000_000_000
HALF_NS = NS // 2
#: :attr:`Coverage.long_interval_volume_ratio` at or below which missing half-seconds are
#: judged a quiet market: halfway between 1 (quiet) and 2 (dropped snapshots).
QUIET_INTERVAL_RATIO = 1.5
#: Gap length buckets in whole seconds (inclusive bounds); runs of one second are not gaps.
GAP_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("2_5", 2, 5),
    ("6_15", 6, 15),
    ("16_30", 16, 30),
    ("over_30", 31, float("inf")),
)


@dataclass(frozen=True)
class Gap:
    """A run of empty seconds inside one session window (UTC ns bounds, end exclusive)."""

    start_ns: int
    end_ns: int
    seconds: int
    kind: str
    warn_seconds: float | None
    #: Cumulative volume traded across the gap (first tick after minus last tick before);
    #: NaN when unknown (no volume column, or the gap opens its window).
    volume_across: float = float("nan")
    #: True when no more volume crossed the gap than one ordinary tick carries: the market
    #: was quiet, no trades are missing (see :func:`quiet_volume`).
    quiet: bool = False

    @property
    def over_threshold(self) -> bool:
        return self.warn_seconds is not None and self.seconds > self.warn_seconds


@dataclass
class Coverage:
    """Coverage figures of one symbol-day (see module doc for definitions)."""

    sessions: int
    seconds_expected: int = 0
    seconds_observed: int = 0
    boundary_seconds_expected: int = 0
    boundary_seconds_observed: int = 0
    interior_seconds_with_ticks: int = 0
    multi_tick_seconds: int = 0
    half_seconds_expected: int = 0
    half_seconds_observed: int = 0
    #: Expected half-seconds left out of the share because they lie in a reported gap or
    #: in the session-end lag (one hole fails one rule).
    half_seconds_in_holes: int = 0
    cadence_mode: str = "none"
    gaps: list[Gap] = field(default_factory=list)
    interval_p50_ms: float = float("nan")
    interval_p95_ms: float = float("nan")
    interval_p99_ms: float = float("nan")
    interval_max_ms: float = float("nan")
    in_session_ticks: int = 0
    boundary_ticks: int = 0
    out_of_session_ticks: int = 0
    out_of_session_seconds: int = 0
    session_end_lag_seconds: float = float("nan")
    #: True when a later snapshot shows no volume traded between the last in-session tick
    #: and the close: the lag is a quiet market, not missing ticks.
    session_end_lag_quiet: bool = False
    last_session_end_ns: int | None = None
    #: Ticks outside sessions and grace whose cumulative volume did not grow (snapshots).
    off_session_snapshots: int = 0
    #: ``0.5`` normally; ``1.0`` when every tick is stamped on a whole second (CZCE), so
    #: half-seconds are judged per second: a whole-second feed cannot fill the second half.
    resolution_seconds: float = 0.5
    #: Volume one ordinary tick carries (the day's p99 of per-tick increments).
    quiet_volume: float = float("nan")
    #: More than ``quiet_market_max_share`` of the expected seconds hold a tick: a
    #: streaming day, on which no silence counts as a quiet market.
    dense: bool = False
    #: Mean volume per tick of intervals longer than the cadence over that of intervals at
    #: the cadence. About 2 when snapshots were dropped from a trading stream (the dropped
    #: tick's trades land in the next one); at or below 1 when the longer intervals are a
    #: market that did not change (exchanges publish on change). NaN when unknown.
    long_interval_volume_ratio: float = float("nan")

    @property
    def missing_halves_quiet(self) -> bool:
        """Empty half-seconds fall where the market was quiet (see the ratio)."""
        r = self.long_interval_volume_ratio
        return not math.isnan(r) and r <= QUIET_INTERVAL_RATIO

    #: Row masks over the input timestamps.
    in_session: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: Index of the window each row falls in, -1 outside every window.
    window_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    out_of_session: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: Off-session snapshots (see ``off_session_snapshots``); empty when none.
    snapshot: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: (minute start ns, missing half-seconds) of the worst minutes, for samples.
    worst_minutes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def multi_tick_share(self) -> float:
        n = self.interior_seconds_with_ticks
        return self.multi_tick_seconds / n if n else float("nan")

    @property
    def half_seconds_missing_share(self) -> float:
        """Missing share of expected interior half-seconds; NaN unless the day is fixed."""
        if self.cadence_mode != "fixed" or not self.half_seconds_expected:
            return float("nan")
        return 1.0 - self.half_seconds_observed / self.half_seconds_expected

    @property
    def missing_day(self) -> bool:
        return self.sessions > 0 and self.in_session_ticks == 0

    def bucket_counts(self) -> dict[str, int]:
        return {
            name: sum(1 for g in self.gaps if lo <= g.seconds <= hi) for name, lo, hi in GAP_BUCKETS
        }

    def largest_gaps(self, n: int, *, over_threshold_only: bool = True) -> list[Gap]:
        pool = [g for g in self.gaps if g.over_threshold or not over_threshold_only]
        return sorted(pool, key=lambda g: (-g.seconds, g.start_ns))[:n]


def _ns(ts: object) -> int:
    return int(ts.as_unit("ns").value)  # type: ignore[attr-defined]


def compute_coverage(
    t: np.ndarray,
    windows: Sequence[SessionWindow],
    config: ValidationConfig,
    exchange: str,
    product: str,
    volume: np.ndarray | None = None,
) -> Coverage:
    """Coverage of sorted UTC-ns tick times ``t`` against ``windows``.

    ``volume``: the ticks' cumulative volume, aligned with ``t``; with it, gaps and the
    session-end lag are told apart as quiet or not, and ticks outside the sessions that
    record no trade are counted as snapshots instead of out-of-session ticks."""
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        raise ValueError("compute_coverage needs tick times sorted ascending")
    ordered = sorted(windows, key=lambda w: w.start)
    cov = Coverage(sessions=len(ordered))
    if volume is not None and len(volume) != t.size:
        raise ValueError("compute_coverage: volume must align with the tick times")
    vol = None if volume is None else np.asarray(volume, dtype=np.float64)
    if vol is not None:
        cov.quiet_volume = quiet_volume(vol)
    whole = t.size > 0 and bool(np.all(t % NS == 0))
    cov.resolution_seconds = 1.0 if whole else 0.5
    in_session = np.zeros(t.size, dtype=bool)
    window_of = np.full(t.size, -1, dtype=np.int64)
    boundary = np.zeros(t.size, dtype=bool)
    intervals: list[np.ndarray] = []
    pre = int(config.pre_open_grace_seconds * NS)
    post = int(config.post_close_grace_seconds * NS)
    first_day_seen = False
    last_tick_in_session: int | None = None

    for i, w in enumerate(ordered):
        s, e = _ns(w.start), _ns(w.end)
        opening = w.kind == "night" or (w.kind == "day" and not first_day_seen)
        first_day_seen = first_day_seen or w.kind == "day"
        lo, hi = np.searchsorted(t, [s, e], side="left")
        in_session[lo:hi] = True
        window_of[lo:hi] = i
        if opening and pre:
            blo = np.searchsorted(t, s - pre, side="left")
            boundary[blo:lo] = True
        if post:
            bhi = np.searchsorted(t, e + post, side="left")
            boundary[hi:bhi] = True

        length = -(-(e - s) // NS)
        cov.seconds_expected += length
        rel = t[lo:hi] - s
        counts = np.bincount(rel // NS, minlength=length)
        cov.seconds_observed += int(np.count_nonzero(counts))
        edge = [0, length - 1] if length > 1 else [0]
        cov.boundary_seconds_expected += len(edge)
        cov.boundary_seconds_observed += int(np.count_nonzero(counts[edge]))
        if hi > lo:
            last_tick_in_session = int(t[hi - 1])
            if hi - lo > 1:
                intervals.append(np.diff(t[lo:hi]))
        if length < 3:
            continue
        interior = counts[1 : length - 1]
        cov.interior_seconds_with_ticks += int(np.count_nonzero(interior))
        cov.multi_tick_seconds += int(np.count_nonzero(interior >= 2))

        warn = config.gap_warn_seconds(exchange, product, w.kind)
        starts, ends = true_runs(interior == 0)
        is_last = i == len(ordered) - 1
        judged = np.ones(interior.size, dtype=bool)  # seconds the half-second share judges
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if is_last and b == interior.size:
                judged[a:b] = False  # the trailing run is the session-end lag
                continue
            if b - a < 2:
                continue  # one empty second is normal
            gap = Gap(s + (a + 1) * NS, s + (b + 1) * NS, b - a, w.kind, warn)
            if vol is not None:
                gap = _judge_quiet(gap, t, vol, lo, cov.quiet_volume)
            cov.gaps.append(gap)
            if gap.over_threshold:
                judged[a:b] = False  # reported as a gap already

        if whole:
            halves = np.repeat(interior > 0, 2)
        else:
            halves = np.bincount(rel // HALF_NS, minlength=2 * length)[2 : 2 * length - 2] > 0
        judged_halves = np.repeat(judged, 2)
        cov.half_seconds_expected += int(np.count_nonzero(judged_halves))
        cov.half_seconds_observed += int(np.count_nonzero(halves & judged_halves))
        cov.half_seconds_in_holes += int(judged_halves.size - np.count_nonzero(judged_halves))
        _collect_worst_minutes(cov, s, halves | ~judged_halves)

    if cov.seconds_observed > config.quiet_market_max_share * max(cov.seconds_expected, 1):
        # a dense day: the book of a streaming contract changes every second or two, so a
        # silent stretch is a provider hole even when no volume crossed it
        cov.gaps = [dataclasses.replace(g, quiet=False) for g in cov.gaps]
        cov.dense = True
    cov.in_session = in_session
    cov.window_of = window_of
    boundary &= ~in_session
    cov.out_of_session = ~(in_session | boundary)
    if vol is not None and ordered and cov.out_of_session.any():
        # only before the first open and after the last close: vendors snapshot there; a
        # row in a break between sessions is out of session even without a trade
        outside = (t < _ns(ordered[0].start)) | (t >= _ns(ordered[-1].end))
        snapshot = cov.out_of_session & outside & ~traded(vol)
        cov.snapshot = snapshot
        cov.off_session_snapshots = int(np.count_nonzero(snapshot))
        cov.out_of_session &= ~snapshot
    cov.in_session_ticks = int(np.count_nonzero(in_session))
    cov.boundary_ticks = int(np.count_nonzero(boundary))
    cov.out_of_session_ticks = int(np.count_nonzero(cov.out_of_session))
    if cov.out_of_session_ticks:
        cov.out_of_session_seconds = int(np.unique(t[cov.out_of_session] // NS).size)
    if ordered:
        cov.last_session_end_ns = _ns(ordered[-1].end)
        if last_tick_in_session is not None:
            cov.session_end_lag_seconds = (cov.last_session_end_ns - last_tick_in_session) / NS
            if vol is not None and not cov.dense:
                cov.session_end_lag_quiet = _lag_quiet(t, vol, last_tick_in_session)
    if cov.interior_seconds_with_ticks:
        fixed = cov.multi_tick_share >= config.fixed_cadence_min_share
        cov.cadence_mode = "fixed" if fixed else "event"
    if vol is not None:
        cov.long_interval_volume_ratio = _interval_volume_ratio(
            t, vol, window_of, cov.resolution_seconds
        )
    if intervals:
        ms = np.concatenate(intervals) / 1e6
        if ms.size:
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            cov.interval_p50_ms, cov.interval_p95_ms = float(p50), float(p95)
            cov.interval_p99_ms, cov.interval_max_ms = float(p99), float(ms.max())
    cov.worst_minutes = sorted(cov.worst_minutes, key=lambda m: (-m[1], m[0]))[:10]
    return cov


def traded(vol: np.ndarray) -> np.ndarray:
    """Rows whose cumulative volume exceeds every earlier row's (a trade printed).

    NaN volume counts as no trade; the first row traded when its volume is above 0."""
    filled = np.where(np.isnan(vol), -np.inf, vol)
    before = np.maximum.accumulate(np.r_[0.0, filled[:-1]]) if filled.size else filled
    return filled > before


def quiet_volume(vol: np.ndarray) -> float:
    """The volume one ordinary tick carries: the 99th percentile of the day's positive
    per-tick increments of cumulative volume (0 when nothing traded)."""
    steps = np.diff(vol)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.percentile(steps, 99)) if steps.size else 0.0


def _interval_volume_ratio(
    t: np.ndarray, vol: np.ndarray, window_of: np.ndarray, resolution: float
) -> float:
    """Mean volume per tick after intervals longer than 1.5 cadences over that after
    intervals at the cadence, within sessions (NaN without both kinds or any volume)."""
    same = (window_of[1:] == window_of[:-1]) & (window_of[1:] >= 0)
    d = np.diff(t)[same] / NS
    dv = np.diff(vol)[same]
    ok = np.isfinite(dv) & (dv >= 0)
    d, dv = d[ok], dv[ok]
    long = d >= 1.5 * resolution
    short = ~long
    if not long.any() or not short.any():
        return float("nan")
    base = float(dv[short].mean())
    return float(dv[long].mean()) / base if base > 0 else float("nan")


def _judge_quiet(gap: Gap, t: np.ndarray, vol: np.ndarray, lo: int, quiet: float) -> Gap:
    """``gap`` with the volume that crossed it and whether that was a quiet market."""
    after = int(np.searchsorted(t, gap.end_ns, side="left"))
    before = after - 1
    if before < lo or after >= t.size:
        return gap
    across = vol[after] - vol[before]
    if not np.isfinite(across):
        return gap
    return dataclasses.replace(gap, volume_across=float(across), quiet=bool(across <= quiet))


def _lag_quiet(t: np.ndarray, vol: np.ndarray, last_in_session: int) -> bool:
    """True when a later row (a closing or post-close snapshot) proves that no volume
    traded after the last in-session tick."""
    i = int(np.searchsorted(t, last_in_session, side="right")) - 1
    later = vol[i + 1 :]
    later = later[np.isfinite(later)]
    return bool(later.size) and np.isfinite(vol[i]) and bool(later.max() <= vol[i])


def _collect_worst_minutes(cov: Coverage, start_ns: int, halves: np.ndarray) -> None:
    """Keep the ten minutes of this window with the most missing half-seconds."""
    missing = np.flatnonzero(~halves)
    if not missing.size:
        return
    # half-second slot k of the interior starts at start + (k + 2) * 0.5 s
    minute_of = (missing + 2) // 120
    per_minute = np.bincount(minute_of)
    top = np.argsort(-per_minute, kind="stable")[:10]
    cov.worst_minutes.extend(
        (start_ns + int(m) * 60 * NS, int(per_minute[m])) for m in top if per_minute[m] > 0
    )


def gap_sample(gaps: Iterable) -> pd.DataFrame:
    rows = [
        {
            "start": pd.Timestamp(g.start_ns, tz="UTC").tz_convert(TZ),
            "end": pd.Timestamp(g.end_ns, tz="UTC").tz_convert(TZ),
            "seconds": g.seconds,
            "session": g.kind,
            "volume_across": g.volume_across,
            "quiet": g.quiet,
        }
        for g in gaps
    ]
    return pd.DataFrame(rows)


def minutes_sample(cov: Coverage) -> pd.DataFrame | None:
    if not cov.worst_minutes:
        return None
    return pd.DataFrame(
        {
            "minute": [pd.Timestamp(m, tz="UTC").tz_convert(TZ) for m, _ in cov.worst_minutes],
            "half_seconds_missing": [k for _, k in cov.worst_minutes],
        }
    )


def coverage_rules(
    cov: Coverage,
    frame: pd.DataFrame,
    out_of_session: np.ndarray,
    config: ValidationConfig,
    exchange: str,
    product: str,
    excluded: pd.DataFrame | None = None,
) -> dict[str, RuleResult]:
    """The coverage rules (gap, cadence, out of session, completeness) with their figures
    and samples. On a day without in-session ticks only ``missing_day`` is judged.
    ``excluded``: rows the source left out as misdated (file, line, datetime, belongs_to,
    reason), reported by ``misdated_rows``."""
    buckets = cov.bucket_counts()
    no_ticks = "no ticks inside the sessions (see completeness)"
    largest = cov.largest_gaps(SAMPLE_ROWS, over_threshold_only=False)
    gap_meta: dict[str, MetadataValue] = {
        "gap_count": len(cov.gaps),
        **{f"gaps_{k}": v for k, v in buckets.items()},
        "gap_seconds_total": sum(g.seconds for g in cov.gaps),
        "gaps_over_threshold": sum(1 for g in cov.gaps if g.over_threshold),
        "quiet_gaps_over_threshold": sum(1 for g in cov.gaps if g.over_threshold and g.quiet),
        "quiet_volume_per_tick": cov.quiet_volume,
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
        sample=gap_sample(largest) if largest else None,
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
            "multi_tick_share": cov.multi_tick_share,
            "half_seconds_expected": cov.half_seconds_expected,
            "half_seconds_observed": cov.half_seconds_observed,
            "half_seconds_in_holes": cov.half_seconds_in_holes,
            "timestamp_resolution_seconds": cov.resolution_seconds,
            "long_interval_volume_ratio": cov.long_interval_volume_ratio,
            "missing_half_seconds_quiet": int(cov.missing_halves_quiet),
        },
        sample=minutes_sample(cov),
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
            "off_session_snapshots": cov.off_session_snapshots,
            "boundary_ticks": cov.boundary_ticks,
            "in_session_ticks": cov.in_session_ticks,
        },
        sample=rows_sample(frame, oos_rows, ("last_price", "volume")) if oos_rows.size else None,
    )
    n_excluded = 0 if excluded is None else len(excluded)
    misdated = RuleResult(
        "misdated_rows",
        float(n_excluded),
        metadata={"misdated_rows_left_out": n_excluded},
        sample=excluded.reset_index(drop=True) if n_excluded else None,
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
        metadata={"session_end_lag_quiet": int(cov.session_end_lag_quiet)},
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
        "misdated_rows": misdated,
        "missing_day": missing,
        "session_end_lag": lag,
    }

"""Validation of real-data quirks: a quiet illiquid market is not a provider hole, whole-
second stamps are not a thin stream, misdated rows left out by the source are reported."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import validate_day

CU = MainSymbol("SHFE", "cu")
DAY = dt.date(2025, 3, 4)


def clean() -> pd.DataFrame:
    src = SimulatedSource(seed=5)
    return src.ticks(src.roll_entry(CU, DAY))


def sparse() -> pd.DataFrame:
    """Every 6th tick: about one tick per 3 seconds, an illiquid contract's day."""
    return clean().iloc[::6].reset_index(drop=True)


def hole(frame: pd.DataFrame, start: str, seconds: int, *, quiet: bool) -> pd.DataFrame:
    """Remove ``seconds`` of ticks from local ``start``; ``quiet``: nothing traded in it
    (later cumulative volumes lowered by what the removed ticks had traded)."""
    lo = pd.Timestamp(start, tz=TZ).tz_convert("UTC")
    hi = lo + pd.Timedelta(seconds=seconds)
    inside = (frame["ts"] >= lo) & (frame["ts"] < hi)
    out = frame.loc[~inside].reset_index(drop=True)
    if quiet:
        after = out["ts"] >= hi
        first_after = int(np.flatnonzero(after.to_numpy())[0])
        across = out.at[first_after, "volume"] - out.at[first_after - 1, "volume"]
        out.loc[after, "volume"] -= across
    return out


def gap_outcome(result):
    return next(c for c in result.checks if c.name == "gaps")


def test_quiet_gap_on_a_sparse_day_warns_and_does_not_block():
    result = validate_day(hole(sparse(), "2025-03-04 10:00:00", 90, quiet=True), CU, DAY)
    assert result.failed_rules.get("gap") == "WARN"
    assert "gaps" not in result.blocking_failures
    meta = gap_outcome(result).metadata
    assert meta["quiet_gaps_over_threshold"] >= 1
    sample = gap_outcome(result).sample
    worst = sample[sample["seconds"] >= 89].iloc[0]
    assert bool(worst["quiet"]) and worst["volume_across"] == 0


def test_gap_that_hid_trades_on_a_sparse_day_blocks():
    frame = hole(sparse(), "2025-03-04 10:00:00", 90, quiet=True)
    after = frame["ts"] >= pd.Timestamp("2025-03-04 10:01:30", tz=TZ).tz_convert("UTC")
    frame.loc[after, "volume"] += 10_000  # far more than any single tick carries
    result = validate_day(frame, CU, DAY)
    assert result.failed_rules.get("gap") == "ERROR"
    assert "gaps" in result.blocking_failures


def test_silence_on_a_dense_day_blocks_even_without_volume():
    """A streaming contract's book changes every second: 90 silent seconds are a hole."""
    result = validate_day(hole(clean(), "2025-03-04 10:00:00", 90, quiet=True), CU, DAY)
    assert result.failed_rules.get("gap") == "ERROR"


def test_whole_second_stamps_are_judged_per_second():
    """CZCE stamps whole seconds, many rows share one: the second half of every second is
    never filled, which is the feed's resolution, not a thin stream."""
    frame = clean()
    ts = pd.DatetimeIndex(frame["ts"]).floor("s")
    frame = frame.assign(ts=ts, datetime=ts.as_unit("ns").asi8)
    result = validate_day(frame, CU, DAY)
    assert "half_seconds_missing" not in result.failed_rules
    cadence = next(c for c in result.checks if c.name == "cadence")
    assert cadence.metadata["timestamp_resolution_seconds"] == 1
    # the same thinning that fails a half-second feed fails a whole-second one too
    seconds = ts.asi8 // 10**9
    keep = (seconds % 5) != 0  # every 5th second empty: 20 % missing
    thin = validate_day(frame.loc[keep].reset_index(drop=True), CU, DAY)
    assert thin.failed_rules.get("half_seconds_missing") == "ERROR"


def test_misdated_rows_left_out_are_reported_with_file_and_line():
    excluded = pd.DataFrame(
        {
            "file": ["/data/CZCE.CF709_20170414_tick.csv.gz"],
            "line": [20773],
            "datetime": ["2017-04-14 23:29:59.000000"],
            "belongs_to": ["2017-04-17"],
            "reason": ["stamped outside trading day 2017-04-14 (the file's day)"],
        }
    )
    result = validate_day(clean(), CU, DAY, excluded=excluded)
    assert result.failed_rules == {"misdated_rows": "WARN"}
    assert result.blocking_failures == []
    oos = next(c for c in result.checks if c.name == "out_of_session")
    assert oos.metadata["misdated_rows_left_out"] == 1
    assert oos.sample["line"].tolist() == [20773]
    assert "belongs_to" in oos.sample.columns


def _thinned(quiet: bool, share: float = 0.15) -> pd.DataFrame:
    """15 % of ticks missing; ``quiet``: the ticks after the longer intervals traded nothing
    (exchanges publish on change: a skipped snapshot is a market that did not move)."""
    frame = clean()
    rng = np.random.default_rng(7)
    frame = frame[rng.random(len(frame)) >= share].reset_index(drop=True)
    if quiet:
        steps = frame["volume"].diff().fillna(frame["volume"].iloc[0]).to_numpy().copy()
        long = frame["ts"].diff().dt.total_seconds().fillna(0).to_numpy() >= 0.75
        steps[long] = 0
        frame["volume"] = np.cumsum(steps)
    return frame


def test_missing_half_seconds_in_a_quiet_market_warn_only():
    quiet = validate_day(_thinned(quiet=True), CU, DAY)
    assert quiet.failed_rules.get("half_seconds_missing") == "WARN"
    cadence = next(c for c in quiet.checks if c.name == "cadence")
    assert cadence.metadata["missing_half_seconds_quiet"] == 1
    assert cadence.metadata["long_interval_volume_ratio"] <= 1.5
    # dropped snapshots of a trading market: their trades land in the next tick -> blocks
    dropped = validate_day(_thinned(quiet=False), CU, DAY)
    assert dropped.failed_rules.get("half_seconds_missing") == "ERROR"
    assert "cadence" in dropped.blocking_failures


def test_an_on_change_feed_is_not_reported_as_thinned():
    """Most seconds hold one tick (event-driven) but the longer intervals traded less: the
    exchange published on change. The same day with the trades kept (dropped snapshots)
    is reported as a thinned stream."""
    on_change = validate_day(_thinned(quiet=True, share=0.6), CU, DAY)
    cadence = next(c for c in on_change.checks if c.name == "cadence")
    assert cadence.metadata["cadence_mode"] == "event"
    assert "event_cadence" not in on_change.failed_rules
    thinned = validate_day(_thinned(quiet=False, share=0.6), CU, DAY)
    assert thinned.failed_rules.get("event_cadence") == "WARN"


def _empty_side(frame: pd.DataFrame, start: int, n: int, *, at_high: bool) -> pd.DataFrame:
    """``n`` rows from ``start`` with no ask; ``at_high``: bid and last at the day's high
    (a book locked at its upper limit), else the ask simply vanishes."""
    out = frame.copy()
    rows = out.index[start : start + n]
    out.loc[rows, "ask_price1"] = np.nan
    out.loc[rows, "ask_volume1"] = np.nan
    if at_high:
        top = float(out["highest"].iloc[start + n - 1])
        out.loc[rows, ["bid_price1", "last_price"]] = top
        out.loc[rows, "highest"] = top
    return out


def test_a_book_locked_at_its_limit_is_not_a_null_run():
    locked = validate_day(_empty_side(clean(), 5000, 300, at_high=True), CU, DAY)
    assert "null_run" not in locked.failed_rules and "null_rate" not in locked.failed_rules
    vanished = validate_day(_empty_side(clean(), 5000, 300, at_high=False), CU, DAY)
    assert vanished.failed_rules.get("null_run") == "ERROR"

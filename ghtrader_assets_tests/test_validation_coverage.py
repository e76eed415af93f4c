"""Session-aware coverage: boundaries, gaps and buckets, cadence, lag, holiday nights."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sessions import session_windows
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import ValidationConfig, validate_day
from ghtrader_assets.validation.coverage import compute_coverage

CU = MainSymbol("SHFE", "cu")
DAY = dt.date(2025, 3, 4)  # Tuesday: night 2025-03-03 21:00 - 01:00, day sessions to 15:00


def clean(symbol: MainSymbol = CU, day: dt.date = DAY) -> pd.DataFrame:
    src = SimulatedSource(seed=5)
    return src.ticks(src.roll_entry(symbol, day))


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ).tz_convert("UTC")


def drop_between(frame: pd.DataFrame, start: str, seconds: float) -> pd.DataFrame:
    lo = local(start)
    hi = lo + pd.Timedelta(seconds=seconds)
    return frame[(frame["ts"] < lo) | (frame["ts"] >= hi)].reset_index(drop=True)


def insert_at(frame: pd.DataFrame, *times: str, traded: float = 0.0) -> pd.DataFrame:
    """Add ticks at local ``times``, each a copy of the last tick before it (new id), so
    prices and cumulative fields stay put; with ``traded``, each inserted tick prints a
    trade of that many lots (its volume and every later one's grow)."""
    rows = []
    for k, text in enumerate(times):
        ts = local(text)
        before = frame[frame["ts"] <= ts]
        row = (before.iloc[[-1]] if len(before) else frame.iloc[[0]]).copy()
        if not len(before):
            row["volume"] = 0.0  # before the first tick nothing has traded yet
        row["ts"] = ts
        row["datetime"] = ts.value
        row["id"] = int(frame["id"].max()) + 1 + k
        rows.append(row)
    out = pd.concat([frame.assign(_new=0), *(r.assign(_new=1) for r in rows)], ignore_index=True)
    out = out.sort_values(["ts", "_new"], kind="stable").reset_index(drop=True)
    if traded:
        out["volume"] = out["volume"] + traded * out["_new"].cumsum()
    return out.drop(columns="_new")


def test_auction_and_closing_prints_are_boundary_ticks_not_out_of_session():
    frame = insert_at(
        clean(),
        "2025-03-03 20:59:00",  # night call auction
        "2025-03-04 08:59:00",  # before the first day session
        "2025-03-04 11:30:00",  # closing print of the morning, exactly at the end
        "2025-03-04 15:00:00.500",  # closing print of the day
    )
    result = validate_day(frame, CU, DAY)
    assert result.failed_rules == {}
    row = result.summary.iloc[0]
    assert row["boundary_ticks"] == 4 and row["out_of_session_ticks"] == 0


def test_trades_outside_grace_are_out_of_session_and_block_above_60_seconds():
    few = insert_at(clean(), "2025-03-03 20:50:00", "2025-03-04 10:20:00", traded=1)  # early; break
    result = validate_day(few, CU, DAY)
    assert result.failed_rules == {"out_of_session": "WARN"}
    assert result.summary.at[0, "out_of_session_seconds"] == 2
    stamps = [f"2025-03-04 12:00:{s:02d}" for s in range(60)] + ["2025-03-04 12:01:00"]
    many = validate_day(insert_at(clean(), *stamps, traded=1), CU, DAY)
    assert many.failed_rules == {"out_of_session": "ERROR"}
    assert many.blocking_failures == ["out_of_session"]


def test_snapshots_outside_the_sessions_are_counted_not_failed():
    """Vendor pre-open rows (18:35), post-close rows (15:20) and a tick in the break that
    record no trade are snapshots of a quiet market, not misplaced trading."""
    stamps = ["2025-03-03 18:35:00", "2025-03-04 15:20:00"]
    stamps += [f"2025-03-04 15:2{m}:{s:02d}" for m in range(1, 3) for s in range(60)]
    result = validate_day(insert_at(clean(), *stamps), CU, DAY)
    assert result.failed_rules == {}
    outcome = next(c for c in result.checks if c.name == "out_of_session")
    assert outcome.passed and outcome.metadata["off_session_snapshots"] == len(stamps)
    assert outcome.metadata["out_of_session_ticks"] == 0
    # the same rows printing a trade, or a snapshot in the lunch break, are out of session
    traded = validate_day(insert_at(clean(), *stamps, traded=1), CU, DAY)
    assert traded.failed_rules == {"out_of_session": "ERROR"}
    lunch = validate_day(insert_at(clean(), "2025-03-04 12:00:00"), CU, DAY)
    assert lunch.failed_rules == {"out_of_session": "WARN"}


def test_gaps_are_counted_in_buckets_and_the_largest_stored():
    frame = clean()
    for start, seconds in [
        ("2025-03-03 21:30:00", 3),
        ("2025-03-03 22:00:00", 10),
        ("2025-03-04 09:30:00", 20),
        ("2025-03-04 14:00:00", 40),
    ]:
        frame = drop_between(frame, start, seconds)
    result = validate_day(frame, CU, DAY)
    row = result.summary.iloc[0]
    assert (row["gaps_2_5"], row["gaps_6_15"], row["gaps_16_30"], row["gaps_over_30"]) == (
        1,
        1,
        1,
        1,
    )
    assert row["gap_count"] == 4 and row["gap_seconds_total"] == 73 and row["max_gap_seconds"] == 40
    assert row["gaps_over_threshold"] == 3  # 3 s is under the 5 s threshold
    assert result.failed_rules == {"gap": "ERROR"}
    stored = result.gaps.sort_values("seconds")
    assert stored["seconds"].tolist() == [10, 20, 40]
    assert stored["session"].tolist() == ["night", "day", "day"]
    assert stored.iloc[-1]["ts"] == local("2025-03-04 14:00:00")
    assert stored.iloc[-1]["gap_end"] == local("2025-03-04 14:00:40")
    assert row["interval_max_ms"] == 40_500.0
    meta = result.check("gaps").metadata
    assert meta["worst_gap_session"] == "day" and meta["gaps_over_30"] == 1


def test_gap_threshold_is_per_session_kind():
    frame = drop_between(clean(), "2025-03-03 22:00:00", 10)
    assert validate_day(frame, CU, DAY).failed_rules == {"gap": "WARN"}
    night_12 = ValidationConfig().with_overrides({"gap_thresholds": ":night=12"})
    assert validate_day(frame, CU, DAY, night_12).failed_rules == {}


def test_a_missing_night_session_is_one_blocking_night_gap():
    frame = clean()
    frame = frame[frame["ts"] >= local("2025-03-04 08:00")].reset_index(drop=True)
    result = validate_day(frame, CU, DAY)
    assert result.failed_rules == {"gap": "ERROR"}
    worst = result.gaps.sort_values("seconds").iloc[-1]
    assert (
        worst["session"] == "night" and worst["seconds"] == 4 * 3600 - 2
    )  # boundary seconds apart


def test_trailing_hole_is_session_end_lag_not_a_gap():
    short = drop_between(clean(), "2025-03-04 14:59:40", 60)
    result = validate_day(short, CU, DAY)
    assert result.failed_rules == {"session_end_lag": "WARN"}
    assert result.summary.at[0, "session_end_lag_seconds"] == pytest.approx(20.5)
    assert result.summary.at[0, "gap_count"] == 0
    cut = drop_between(clean(), "2025-03-04 14:00:00", 3600)
    late = validate_day(cut, CU, DAY)
    assert late.failed_rules == {"session_end_lag": "ERROR"}
    assert late.blocking_failures == ["completeness"]


def test_fixed_cadence_missing_half_seconds_warn_then_block():
    frame = clean()
    rng = np.random.default_rng(0)
    warn = validate_day(frame[rng.random(len(frame)) >= 0.05].reset_index(drop=True), CU, DAY)
    assert warn.summary.at[0, "cadence_mode"] == "fixed"
    assert warn.summary.at[0, "half_seconds_missing_share"] == pytest.approx(0.05, abs=0.01)
    assert warn.failed_rules == {"half_seconds_missing": "WARN"}
    block = validate_day(frame[rng.random(len(frame)) >= 0.15].reset_index(drop=True), CU, DAY)
    assert block.failed_rules == {"half_seconds_missing": "ERROR"}
    assert block.blocking_failures == ["cadence"]
    assert len(block.check("cadence").sample) == 10  # the worst minutes


def test_no_night_session_after_a_holiday_break():
    day = dt.date(2025, 10, 9)  # first trading day after the National Day holiday
    windows = session_windows("SHFE", "cu", day)
    assert {w.kind for w in windows} == {"day"}
    frame = clean(CU, day)
    assert validate_day(frame, CU, day).failed_rules == {}
    # trading in a night the calendar says did not happen is out of session
    evening = insert_at(frame, "2025-10-08 21:30:00", traded=1)
    assert validate_day(evening, CU, day).failed_rules == {"out_of_session": "WARN"}


def test_compute_coverage_directly_on_event_driven_ticks():
    windows = session_windows("CFFEX", "IF", dt.date(2025, 3, 5))
    start = windows[0].start.tz_convert("UTC").value
    # one tick every 3 s through the first window: event-driven, 2 s holes are gaps of 2 s
    t = np.arange(start, windows[0].end.tz_convert("UTC").value, 3 * 10**9, dtype=np.int64)
    cov = compute_coverage(t, windows, ValidationConfig(), "CFFEX", "IF")
    assert cov.cadence_mode == "event" and np.isnan(cov.half_seconds_missing_share)
    assert cov.interval_p50_ms == 3000.0 and cov.in_session_ticks == t.size
    assert cov.bucket_counts()["2_5"] > 1000
    assert cov.largest_gaps(5) == []  # 2 s holes are under the 5 s threshold
    assert cov.largest_gaps(5, over_threshold_only=False)[0].seconds == 2
    with pytest.raises(ValueError, match="sorted"):
        compute_coverage(t[::-1].copy(), windows, ValidationConfig(), "CFFEX", "IF")

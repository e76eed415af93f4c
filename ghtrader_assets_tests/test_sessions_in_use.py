"""Sessions as of the day where they matter: the simulated market and validation (expected
seconds, out-of-session ticks) follow each product's hours on that day."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import validate_day

CF = MainSymbol("CZCE", "CF")
PP = MainSymbol("DCE", "pp")


def _day(symbol: MainSymbol, day: dt.date) -> pd.DataFrame:
    src = SimulatedSource(seed=3)
    return src.ticks(src.roll_entry(symbol, day))


def _local(frame: pd.DataFrame) -> pd.Series:
    return frame["ts"].dt.tz_convert(TZ)


def test_simulator_and_validation_use_2017_czce_night_to_2330():
    day = dt.date(2017, 4, 14)
    frame = _day(CF, day)
    night = _local(frame)[_local(frame).dt.date == dt.date(2017, 4, 13)]
    assert night.min() == pd.Timestamp("2017-04-13 21:00", tz=TZ)
    assert night.max() == pd.Timestamp("2017-04-13 23:29:59.5", tz=TZ)
    result = validate_day(frame, CF, day)
    row = result.summary.iloc[0]
    # 2.5 h night + 75 + 60 + 90 min day
    assert row["seconds_expected"] == 9000 + (75 + 60 + 90) * 60
    assert row["out_of_session_ticks"] == 0 and result.blocking_failures == []
    # the same clock times in 2025 (night to 23:00) leave the last half hour out of session
    later = dt.date(2025, 3, 4)
    shifted = frame.copy()
    shift = pd.Timestamp(later) - pd.Timestamp(day)
    shifted["ts"] = shifted["ts"] + shift
    shifted["datetime"] = shifted["datetime"] + shift.value
    shifted["trading_day"] = later.isoformat()
    outside = validate_day(shifted, CF, later).summary.iloc[0]["out_of_session_ticks"]
    # 23:00:00 .. 23:29:59.5 is 3600 ticks; the first 3 s count as closing prints
    assert outside == 3600 - 6


def test_pp_had_no_night_in_2017_and_night_ticks_are_out_of_session():
    day = dt.date(2017, 4, 20)
    frame = _day(PP, day)
    assert (_local(frame).dt.hour >= 9).all() and (_local(frame).dt.date == day).all()
    row = validate_day(frame, PP, day).summary.iloc[0]
    assert row["seconds_expected"] == (75 + 60 + 90) * 60 and row["out_of_session_ticks"] == 0
    # a night (as pp has traded since 2019) on that day is out of session
    night = _day(PP, dt.date(2025, 3, 4))
    night = night[_local(night).dt.hour >= 21].copy()
    shift = pd.Timestamp(day) - pd.Timestamp(dt.date(2025, 3, 4))
    night["ts"] = night["ts"] + shift
    night["datetime"] = night["datetime"] + shift.value
    night["trading_day"] = day.isoformat()
    mixed = pd.concat([night, frame], ignore_index=True)
    mixed["id"] = range(len(mixed))
    row = validate_day(mixed, PP, day).summary.iloc[0]
    assert row["out_of_session_ticks"] >= len(night) - 600  # bar the pre-open grace


def test_simulator_covers_every_listed_product_on_its_tick_grid():
    from ghtrader_assets.products import PRODUCTS
    from ghtrader_assets.sessions import day_sessions, in_session_mask

    day = dt.date(2025, 3, 4)
    src = SimulatedSource(seed=1, cadence_ms=30_000)
    simulated = 0
    for (exchange, product), spec in PRODUCTS.items():
        sessions = day_sessions(exchange, product, day)
        if sessions.status != "open":  # delisted codes (CZCE LR, old codes) and later listings
            continue
        symbol = MainSymbol(exchange, product)
        frame = src.ticks(src.roll_entry(symbol, day))
        assert len(frame) > 0, symbol
        assert in_session_mask(frame["ts"], sessions.windows).all(), symbol
        steps = frame["last_price"] / spec.tick_size
        assert (abs(steps - steps.round()) < 1e-6).all(), symbol
        assert frame["bid_price2"].notna().all() == spec.five_levels, symbol
        simulated += 1
    assert simulated >= 80

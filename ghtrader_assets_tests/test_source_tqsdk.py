"""TqSdkSource, its retry machinery and the skip ledger, against the FakeTqApi (no network)."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import pickle
import random
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tqsdk.exceptions import TqTimeoutError

from ghtrader_assets import calendar, sessions
from ghtrader_assets.calendar import TZ
from ghtrader_assets.schema import (
    BOOK_COLUMNS,
    ROLL_SCHEDULE,
    SKIP_LEDGER,
    TICKS,
    TableSpec,
    conform,
)
from ghtrader_assets.sources.base import (
    NoDataError,
    RollEntry,
    SourceError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from ghtrader_assets.sources.base import TickSource as TickSourceBase
from ghtrader_assets.sources.retry import (
    CircuitBreaker,
    CircuitOpenError,
    MaintenanceError,
    RetryExhaustedError,
    RetryPolicy,
)
from ghtrader_assets.sources.skip_ledger import DaySkippedError, SkipLedger, SkipReason
from ghtrader_assets.sources.tqsdk import (
    AuthenticationError,
    MissingCredentialsError,
    SourceThreadError,
    TqSdkSource,
    schedule_hash,
)
from ghtrader_assets.stores.base import TickStore, WriteStats
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets_tests.fake_tqapi import (
    FakeClock,
    FakeMarket,
    local_times,
    make_ticks,
    threads_run,
)

USER, PASSWORD = "trader@example.com", "s3cret-Pa55"
CU = MainSymbol("SHFE", "cu")
NOW = dt.datetime(2025, 11, 3, 10, 0, tzinfo=TZ)  # a Monday morning
MON = dt.date(2025, 3, 10)  # Monday; Friday 2025-03-07's night session belongs to it
ROLL_DAY = dt.date(2025, 3, 12)  # cu switches from cu2504 to cu2505
FAST = RetryPolicy(max_attempts=4, base_delay=2.0, multiplier=3.0, jitter=0.0, budget_seconds=1e6)


@pytest.fixture(autouse=True)
def cache_root(tmp_path, monkeypatch):
    """Every source's tqsdk cache under the test's temporary directory, and tqsdk's own
    default (``~/.tqsdk/data_series_1``) redirected there too, for bare fake calls."""
    import tqsdk.data_series

    root = tmp_path / "tqcache"
    monkeypatch.setenv("GHTRADER_TQ_CACHE_DIR", str(root))
    monkeypatch.setattr(tqsdk.data_series, "CACHE_DIR", str(tmp_path / "tqsdk-default"))
    return root


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def market(clock: FakeClock) -> FakeMarket:
    m = FakeMarket(clock, accounts={USER: PASSWORD})
    m.set_rolls("KQ.m@SHFE.cu", {dt.date(2024, 1, 2): "SHFE.cu2504", ROLL_DAY: "SHFE.cu2505"})
    return m


def source(
    market: FakeMarket,
    clock: FakeClock,
    *,
    policy: RetryPolicy = FAST,
    breaker: CircuitBreaker | None = None,
    password: str = PASSWORD,
    **kwargs: object,
) -> TqSdkSource:
    return TqSdkSource(
        USER,
        password,
        api_factory=market.api_factory,
        retry_policy=policy,
        breaker=breaker or CircuitBreaker("test", failure_threshold=100, clock=clock.now),
        clock=clock.now,
        sleep=clock.sleep,
        rng=random.Random(7),
        **{"roll_fetcher": market.roll_fetcher, **kwargs},  # type: ignore[arg-type]
    )


def at(day: dt.date, hhmmss: str) -> str:
    return f"{day.isoformat()} {hhmmss}"


def load(market: FakeMarket, contract: str, times: Sequence[str], **kwargs: object) -> None:
    market.add_contract(contract, make_ticks(contract, times, **kwargs))  # type: ignore[arg-type]


# -- roll schedule ------------------------------------------------------------------------------


def test_roll_entry_follows_the_main_contract_table_fetched_once_with_a_timeout(market, clock):
    with source(market, clock) as src:
        before = src.roll_entry(CU, calendar.previous_trading_day(ROLL_DAY))
        on = src.roll_entry(CU, ROLL_DAY)
    assert before == RollEntry(CU, calendar.previous_trading_day(ROLL_DAY), "SHFE.cu2504", "tqsdk")
    assert on.underlying == "SHFE.cu2505"
    assert [t for _, t in market.roll_fetches] == [src.settings.roll_table_timeout]
    assert market.instances == []  # the roll schedule needs no login


def test_roll_entry_for_the_current_day_falls_back_to_the_main_quote(market, clock):
    market.cont_lag_days = 1  # TqSdk's table has no row for today yet
    today = calendar.trading_day_of(clock.now())
    with source(market, clock) as src:
        entry = src.roll_entry(CU, today)
    assert entry.underlying == market.underlying_on(CU.raw, today) == "SHFE.cu2505"
    assert "get_quote" in market.calls


def test_day_before_listing_is_skipped_with_a_reason(market, clock):
    with source(market, clock) as src, pytest.raises(DaySkippedError) as info:
        src.roll_entry(CU, dt.date(2023, 12, 29))
    assert info.value.reason == SkipReason.NOT_LISTED.value
    assert isinstance(info.value, NoDataError)


def test_future_day_has_no_roll(market, clock):
    with source(market, clock) as src, pytest.raises(NoDataError, match="after the current"):
        src.roll_entry(CU, dt.date(2025, 11, 20))


def test_roll_schedule_frame_and_stable_hash(market, clock):
    days = calendar.trading_days(dt.date(2025, 3, 10), dt.date(2025, 3, 14))
    with source(market, clock) as src:
        df = src.roll_schedule(CU, days)
    ROLL_SCHEDULE.schema.validate(df)
    assert df["trading_day"].tolist() == [d.isoformat() for d in days]
    assert df["underlying"].tolist() == [market.underlying_on(CU.raw, d) for d in days]
    assert df["schedule_hash"].nunique() == 1 and df["schedule_hash"].iloc[0] == schedule_hash(df)
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert schedule_hash(shuffled) == schedule_hash(df)
    changed = df.copy()
    changed.loc[0, "underlying"] = "SHFE.cu2506"
    assert schedule_hash(changed) != schedule_hash(df)


def test_unknown_main_symbol_fails_fast(market, clock):
    bogus = MainSymbol("SHFE", "zz")
    with source(market, clock) as src, pytest.raises(UnknownSymbolError, match="KQ.m@SHFE.zz"):
        src.roll_entry(bogus, MON)
    assert clock.sleeps == []
    assert len(market.roll_fetches) == 1


def test_unknown_underlying_fails_fast(market, clock):
    entry = RollEntry(CU, MON, "SHFE.cu9912", "tqsdk")
    with source(market, clock) as src, pytest.raises(UnknownSymbolError, match="SHFE.cu9912"):
        src.ticks(entry)
    assert clock.sleeps == []


# -- trimming to sessions -----------------------------------------------------------------------

FRIDAY = calendar.previous_trading_day(MON)
SATURDAY = FRIDAY + dt.timedelta(days=1)
CU_TICKS: list[tuple[str, bool]] = [  # (Beijing time, kept for Monday's cu sessions)
    (at(FRIDAY, "20:50:00"), False),  # too early even for the auction
    (at(FRIDAY, "20:59:00"), True),  # opening call-auction print: the official open
    (at(FRIDAY, "21:00:00.500"), True),
    (at(FRIDAY, "23:59:59.500"), True),
    (at(SATURDAY, "00:30:00"), True),  # after midnight on Saturday: still Monday
    (at(SATURDAY, "01:00:00"), True),  # closing print as the night ends ("25:00:00")
    (at(SATURDAY, "01:30:00"), False),
    (at(MON, "09:00:01"), True),
    (at(MON, "10:20:00"), False),  # morning break
    (at(MON, "14:59:59.500"), True),
    (at(MON, "15:00:00"), True),  # closing print: the day's final cumulative volume
    (at(MON, "15:00:10"), False),
    (at(MON, "15:10:00"), False),
]


def test_friday_night_and_saturday_ticks_belong_to_monday(market, clock):
    before_window = at(calendar.previous_trading_day(FRIDAY), "22:00:00")  # Thursday night
    load(market, "SHFE.cu2504", [before_window] + [t for t, _ in CU_TICKS], start_id=500)
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    expected = [pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S") for t, inside in CU_TICKS if inside]
    assert local_times(frame["ts"]) == expected
    TICKS.schema.validate(frame)
    assert set(frame["trading_day"]) == {MON.isoformat()}
    assert set(frame["symbol"]) == {CU.raw} and set(frame["underlying"]) == {"SHFE.cu2504"}
    assert set(frame["source"]) == {"tqsdk"}
    assert (frame["datetime"].to_numpy() == pd.DatetimeIndex(frame["ts"]).asi8).all()
    assert frame["id"].is_monotonic_increasing and frame["id"].min() > 500  # TqSdk ids kept
    assert stats.raw_rows == len(CU_TICKS)  # the Thursday tick is outside the request ...
    assert stats.before_window_rows == 1  # ... but tqsdk returned it first: dropped, counted
    assert stats.outside_session_rows == sum(not inside for _, inside in CU_TICKS)
    assert market.tick_requests == [
        (
            "SHFE.cu2504",
            dt.datetime.combine(FRIDAY, dt.time(18)),
            dt.datetime.combine(MON, dt.time(16)),
        )
    ]


def test_gold_night_runs_to_0230_on_saturday(market, clock):
    au = MainSymbol("SHFE", "au")
    market.set_rolls(au.raw, {dt.date(2024, 1, 2): "SHFE.au2504"})
    load(
        market,
        "SHFE.au2504",
        [at(SATURDAY, "02:00:00"), at(SATURDAY, "02:30:00"), at(SATURDAY, "02:30:05")],
    )
    with source(market, clock) as src:
        frame = src.ticks(src.roll_entry(au, MON))
    # 02:30:00 is the night's closing print; 5 s later is past the close.
    assert local_times(frame["ts"]) == [at(SATURDAY, "02:00:00"), at(SATURDAY, "02:30:00")]


def test_no_night_session_after_a_holiday(market, clock):
    day = dt.date(2025, 10, 9)  # first trading day after National Day
    assert sessions.follows_holiday_break(day)
    evening = calendar.previous_trading_day(day)
    times = [
        at(evening, "21:30:00"),
        at(evening + dt.timedelta(days=1), "00:30:00"),
        at(day, "09:30:00"),
    ]
    load(market, "SHFE.cu2505", times)
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, day))
    assert local_times(frame["ts"]) == [at(day, "09:30:00")]
    assert stats.outside_session_rows == 2
    assert all(kind == "day" for _, _, kind in stats.windows)


def test_dated_sessions_win_over_tqsdk_trading_time(market, clock):
    """TqSdk's trading_time is today's hours; the day's own hours come from the session
    history, and no contract lookup is made for them."""
    market.trading_time["SHFE.cu"]["night"] = [["21:00:00", "23:00:00"]]
    load(market, "SHFE.cu2504", [at(FRIDAY, "22:00:00"), at(FRIDAY, "23:30:00")])
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert local_times(frame["ts"]) == [at(FRIDAY, "22:00:00"), at(FRIDAY, "23:30:00")]
    assert "query_symbol_info" not in market.calls


def test_2017_hours_trim_a_2017_day(market, clock):
    """CZCE nights ended at 23:30 in 2017 (23:00 today): a 23:15 tick of 2017 is in session."""
    cf = MainSymbol("CZCE", "CF")
    day = dt.date(2017, 4, 14)
    market.set_rolls(cf.raw, {dt.date(2017, 1, 3): "CZCE.CF709"})
    evening = calendar.previous_trading_day(day)
    load(market, "CZCE.CF709", [at(evening, "23:15:00"), at(evening, "23:45:00")])
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(cf, day))
    assert local_times(frame["ts"]) == [at(evening, "23:15:00")]
    assert stats.outside_session_rows == 1


def test_a_product_without_session_history_is_refused_at_load_not_run_on_trading_time(
    market, clock, monkeypatch
):
    """Review finding: the documented fallback to TqSdk's ``trading_time`` for a product the
    session history lacks could never be reached (the listing check raised first), and
    today's hours would misjudge historical days anyway. Such a product is now refused
    when the universe is parsed (the definitions load), naming the package to upgrade,
    and the source never asks TqSdk for trading hours."""
    from ghtrader_assets import products
    from ghtrader_assets.symbols import SymbolError, parse_universe

    real = sessions.timeline().events
    monkeypatch.setattr(sessions.timeline(), "events", {k: v for k, v in real.items() if k != "CU"})
    with pytest.raises(SymbolError, match=r"SHFE.cu has product facts but no session history"):
        parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m")
    with pytest.raises(products.UnknownProductError, match="pip install -U cnfutures-session"):
        products.spec_for(CU)
    monkeypatch.setattr(sessions.timeline(), "events", real)
    load(market, "SHFE.cu2504", [at(FRIDAY, "22:00:00")])
    with source(market, clock) as src:
        src.ticks_with_stats(src.roll_entry(CU, MON))
    assert "query_symbol_info" not in market.calls


# -- true L5 ------------------------------------------------------------------------------------


def test_level1_only_rows_are_dropped_and_counted_on_shfe(market, clock):
    times = [at(MON, f"09:00:{s:02d}") for s in range(10)]
    load(market, "SHFE.cu2504", times, l1_only=[1, 4, 5])
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert local_times(frame["ts"]) == [t for i, t in enumerate(times) if i not in (1, 4, 5)]
    assert stats.l1_only_rows == 3 and stats.rows == 7 and stats.depth_columns
    assert frame[list(BOOK_COLUMNS)].notna().all().all()


def test_a_missing_level_arrives_as_volume_zero_and_is_stored_as_nan(market, clock):
    """tqsdk sends a missing book level as volume 0.0 with price NaN (the server's "-")."""
    times = [at(MON, "09:00:01"), at(MON, "09:00:02")]
    ticks = make_ticks("SHFE.cu2504", times)
    ticks.loc[1, ["ask_price4", "ask_volume4", "ask_price5", "ask_volume5"]] = np.nan
    market.add_contract("SHFE.cu2504", ticks)
    api = market.api_factory(USER, PASSWORD)
    raw = api.get_tick_data_series(
        "SHFE.cu2504", dt.datetime(2025, 3, 7, 18), dt.datetime(2025, 3, 10, 16)
    )
    api.close()
    assert raw.loc[1, "ask_volume5"] == 0.0 and np.isnan(raw.loc[1, "ask_price5"])
    with source(market, clock) as src:
        frame = src.ticks(src.roll_entry(CU, MON))
    assert len(frame) == 2  # thin book, still five-level: kept
    assert frame.loc[1, ["ask_price5", "ask_volume5", "ask_volume4"]].isna().all()
    assert frame.loc[1, "ask_volume3"] == 33.0 and frame.loc[0, "ask_volume5"] == 55.0


def test_a_shfe_day_without_any_depth_is_skipped(market, clock):
    times = [at(MON, f"09:00:{s:02d}") for s in range(4)]
    load(market, "SHFE.cu2504", times, l1_only=range(4))
    with source(market, clock) as src, pytest.raises(DaySkippedError) as info:
        src.ticks(src.roll_entry(CU, MON))
    assert info.value.reason == "no_l5"


def test_level1_exchange_keeps_its_rows(market, clock):
    meal = MainSymbol("DCE", "m")
    market.set_rolls(meal.raw, {dt.date(2024, 1, 2): "DCE.m2505"})
    load(market, "DCE.m2505", [at(MON, "09:00:01"), at(MON, "09:00:02")], price=3000.0, tick=1.0)
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(meal, MON))
    assert stats.rows == 2 and not stats.five_levels and stats.l1_only_rows == 0
    assert frame["bid_price2"].isna().all() and frame["bid_price1"].notna().all()


def test_ine_without_depth_columns_keeps_rows_and_says_so(market, clock, caplog):
    # tqsdk 3.10's tick series stores five levels for SHFE only, so INE frames lack them.
    sc = MainSymbol("INE", "sc")
    market.set_rolls(sc.raw, {dt.date(2024, 1, 2): "INE.sc2505"})
    load(market, "INE.sc2505", [at(MON, "09:00:01"), at(MON, "09:00:02")], price=500.0, tick=0.1)
    with caplog.at_level(logging.WARNING), source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(sc, MON))
    assert stats.rows == 2 and stats.five_levels and not stats.depth_columns
    assert "no level 2-5 columns" in caplog.text


@pytest.mark.parametrize("optimized", [False, True])
def test_an_empty_answer_for_a_day_with_sessions_is_retried_never_stored(market, clock, optimized):
    """Under ``python -O`` tqsdk's failed download (a bare ``assert``) returns an empty frame;
    a day with sessions must not be stored empty: retry, then fail naming the day."""
    market.python_optimize = optimized
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", "download", times=1)
    with source(market, clock) as src:
        assert len(src.ticks(src.roll_entry(CU, MON))) == 1  # the retry got the day
    assert clock.sleeps == [FAST.base_delay]
    market.fail_next("get_tick_data_series", "download", times=10)
    with source(market, clock) as src, pytest.raises(RetryExhaustedError) as info:
        src.ticks(src.roll_entry(CU, MON))
    text = str(info.value)
    if optimized:
        assert "returned no ticks for KQ.m@SHFE.cu 2025-03-10" in text
    else:
        assert "AssertionError" in text and "SHFE.cu2504" in text


def test_a_window_holding_only_a_stale_earlier_tick_is_not_a_day(market, clock):
    """tqsdk answers an empty window with the last tick before it: that is no data."""
    load(market, "SHFE.cu2504", [at(calendar.previous_trading_day(FRIDAY), "14:00:00")])
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, jitter=0.0)
    with source(market, clock, policy=policy) as src, pytest.raises(RetryExhaustedError) as info:
        src.ticks(src.roll_entry(CU, MON))
    assert "returned no ticks" in str(info.value) and "SHFE.cu2504" in str(info.value)


# -- retries, maintenance, circuit breaker ------------------------------------------------------


@pytest.mark.parametrize("kind", ["timeout", "download", "http"])
def test_transient_errors_are_retried_with_exponential_backoff(market, clock, kind):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", kind, times=2)
    with source(market, clock) as src:
        frame = src.ticks(src.roll_entry(CU, MON))
    assert len(frame) == 1
    assert clock.sleeps == [FAST.base_delay, FAST.base_delay * FAST.multiplier]
    # Each retry ran on a fresh TqApi (the failed one's abandoned request is cancelled by
    # closing it), and every one of them was closed.
    assert len(market.instances) == 3
    assert all(info.closed for info in market.instances)


def test_backoff_jitter_stays_within_bounds(market, clock):
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, multiplier=2.0, max_delay=5.0, jitter=0.5)
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", "timeout", times=5)
    with source(market, clock, policy=policy) as src:
        src.ticks(src.roll_entry(CU, MON))
    caps = [min(policy.max_delay, policy.base_delay * policy.multiplier**k) for k in range(5)]
    assert len(clock.sleeps) == 5
    assert all(c * (1 - policy.jitter) <= s <= c for s, c in zip(clock.sleeps, caps, strict=True))
    assert clock.sleeps != caps  # jitter actually moved them


def test_retries_stop_after_max_attempts(market, clock):
    market.fail_next("get_tick_data_series", "timeout", times=10)
    with source(market, clock) as src, pytest.raises(RetryExhaustedError) as info:
        src.ticks(src.roll_entry(CU, MON))
    assert len(clock.sleeps) == FAST.max_attempts - 1
    assert "TqTimeoutError" in str(info.value) and isinstance(info.value, SourceUnavailableError)


def test_retries_stop_at_the_time_budget(market, clock):
    policy = RetryPolicy(
        max_attempts=10, base_delay=2.0, multiplier=2.0, jitter=0.0, budget_seconds=3.0
    )
    market.fail_next("get_tick_data_series", "timeout", times=10)
    with (
        source(market, clock, policy=policy) as src,
        pytest.raises(RetryExhaustedError, match="budget"),
    ):
        src.ticks(src.roll_entry(CU, MON))
    assert clock.sleeps == [2.0]  # the next delay (4 s) would pass the 3 s budget


def test_maintenance_error_waits_long_and_reconnects(market, clock):
    """As in tqsdk, maintenance is announced only while constructing TqApi: a disconnect
    mid-call is a timeout (after 30 s); the reconnect meets the maintenance text."""
    policy = RetryPolicy(jitter=0.0, base_delay=1.0, maintenance_wait=1800.0)
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", "disconnect")
    market.fail_next("__init__", "maintenance")
    with source(market, clock, policy=policy) as src:
        frame = src.ticks(src.roll_entry(CU, MON))
    assert len(frame) == 1
    # the first login meets maintenance (long wait); the download is cut (retried soon)
    assert clock.sleeps == [policy.maintenance_wait, policy.base_delay]
    assert len(market.instances) == 3 and all(i.closed for i in market.instances)
    assert all(i.loop_closed for i in market.instances)  # the failed construction's too


def test_the_fake_raises_maintenance_only_at_construction(market):
    with pytest.raises(ValueError, match="only while constructing"):
        market.fail_next("get_tick_data_series", "maintenance")


def test_inside_the_daily_window_calls_wait_until_it_ends(market):
    start = dt.datetime(2025, 11, 3, 19, 10, tzinfo=TZ)
    clock = FakeClock(start)
    market.clock = clock
    policy = RetryPolicy(maintenance_grace=30.0)
    with source(market, clock, policy=policy) as src:
        src.roll_entry(CU, MON)
    window_end = dt.datetime.combine(start.date(), policy.maintenance_window[1], tzinfo=TZ)
    assert clock.sleeps == [(window_end - start).total_seconds() + policy.maintenance_grace]
    assert len(market.roll_fetches) == 1 and market.calls == []  # nothing during the window


def test_maintenance_that_does_not_end_gives_up(market, clock):
    policy = RetryPolicy(maintenance_wait=600.0, max_maintenance_waits=2)
    market.fail_next("__init__", "maintenance", times=5)
    with source(market, clock, policy=policy) as src, pytest.raises(MaintenanceError):
        src.ticks(src.roll_entry(CU, MON))
    assert clock.sleeps == [600.0, 600.0]


def test_circuit_breaker_opens_fails_fast_and_recovers(market, clock):
    breaker = CircuitBreaker(
        "tqsdk-test", failure_threshold=3, cooldown_seconds=100.0, clock=clock.now
    )
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, jitter=0.0)
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    with source(market, clock, policy=policy, breaker=breaker) as src:
        entry = src.roll_entry(CU, MON)
        market.fail_next("get_tick_data_series", "timeout", times=3)
        with pytest.raises(RetryExhaustedError):
            src.ticks(entry)
        assert breaker.state == "open"
        calls = len(market.calls)
        with pytest.raises(CircuitOpenError, match="3 consecutive failures") as info:
            src.ticks(entry)
        assert "TqTimeoutError" in str(info.value)
        assert len(market.calls) == calls  # failed fast, TqSdk not called
        clock.advance(100.0)
        assert breaker.state == "half-open"
        market.fail_next("get_tick_data_series", "timeout")  # the trial fails: open again
        with pytest.raises(CircuitOpenError):
            src.ticks(entry)
        assert breaker.state == "open"
        clock.advance(100.0)
        assert len(src.ticks(entry)) == 1  # the next trial succeeds and closes the circuit
        assert breaker.state == "closed" and breaker.consecutive_failures == 0


def test_connection_timeout_while_constructing_is_retried(market, clock):
    market.fail_next("__init__", "connect_timeout")
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    with source(market, clock) as src:
        assert len(src.ticks(src.roll_entry(CU, MON))) == 1
    assert len(market.instances) == 2 and all(i.closed for i in market.instances)
    assert clock.sleeps == [FAST.base_delay]


def test_unexpected_errors_are_not_retried(market, clock):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", "bug")
    with source(market, clock) as src, pytest.raises(SourceError, match="unexpected error"):
        src.ticks(src.roll_entry(CU, MON))
    assert clock.sleeps == []


# -- account safety -----------------------------------------------------------------------------


def test_one_tqapi_per_worker_thread_all_closed(market, clock):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01"), at(MON, "09:00:02")])

    together = threading.Barrier(4, timeout=10)  # all four alive at once: distinct threads

    def work(_: int) -> int:
        with source(market, clock) as src:
            rows = len(src.ticks(src.roll_entry(CU, MON)))
            together.wait()
            return rows

    assert threads_run(4, work) == [2, 2, 2, 2]
    assert len(market.instances) == 4
    assert len({i.thread for i in market.instances}) == 4
    assert all(i.closed and i.closed_by == i.thread for i in market.instances)
    assert all(i.threads == {i.thread} for i in market.instances)
    assert market.cross_thread_calls == 0


def test_a_source_refuses_use_from_a_second_thread(market, clock):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    src = source(market, clock)
    entry = src.roll_entry(CU, MON)
    src.ticks(entry)
    with pytest.raises(SourceThreadError, match="not thread-safe"):
        threads_run(1, lambda _: src.ticks(entry))
    src.close()
    assert market.instances[0].closed and market.cross_thread_calls == 0


def test_close_runs_on_the_error_path(market, clock):
    with pytest.raises(UnknownSymbolError), source(market, clock) as src:
        src.roll_entry(CU, MON)
        src.ticks(RollEntry(CU, MON, "SHFE.cu9912", "tqsdk"))
    assert [i.closed for i in market.instances] == [True]
    with pytest.raises(SourceError, match="closed"):
        src.roll_entry(CU, MON)


def test_rejected_account_fails_fast_without_leaking_the_password(market, clock, caplog):
    wrong = "Wr0ng-Secret-9"
    caplog.set_level(logging.DEBUG)
    with source(market, clock, password=wrong) as src, pytest.raises(AuthenticationError) as info:
        src.ticks(src.roll_entry(CU, MON))
    err = info.value
    assert "用户权限认证失败" in str(err) and "GHTRADER_TQ_PASSWORD" in str(err)
    assert err.__cause__ is None and err.__suppress_context__
    for text in (str(err), repr(err), caplog.text, repr(src)):
        assert wrong not in text
    assert clock.sleeps == [] and market.instances[0].closed


def test_provider_text_echoing_the_password_is_redacted(market, clock, caplog):
    caplog.set_level(logging.DEBUG)
    echo = TqTimeoutError(f"login {USER}/{PASSWORD} timed out")
    market.fail_next("roll_table", error=echo, times=2)
    policy = RetryPolicy(max_attempts=2, jitter=0.0)
    with source(market, clock, policy=policy) as src, pytest.raises(RetryExhaustedError) as info:
        src.roll_entry(CU, MON)
    assert PASSWORD not in str(info.value) and "***" in str(info.value)
    assert PASSWORD not in caplog.text


def test_account_without_pro_permission_fails_fast(clock):
    market = FakeMarket(clock, accounts={USER: PASSWORD}, pro=False)
    market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504"})
    with source(market, clock) as src, pytest.raises(AuthenticationError, match="TqSdk Pro"):
        src.ticks(src.roll_entry(CU, MON))
    assert clock.sleeps == []


def test_missing_credentials_name_the_variables_to_set(market):
    with pytest.raises(MissingCredentialsError, match="GHTRADER_TQ_USER, GHTRADER_TQ_PASSWORD"):
        TqSdkSource("", "")
    with pytest.raises(MissingCredentialsError, match="missing: GHTRADER_TQ_PASSWORD$"):
        TqSdkSource.from_env({"GHTRADER_TQ_USER": USER})
    src = TqSdkSource.from_env(
        {"GHTRADER_TQ_USER": USER, "GHTRADER_TQ_PASSWORD": PASSWORD}, api_factory=market.api_factory
    )
    assert market.instances == []  # nothing connects before first use
    assert PASSWORD not in repr(src)
    src.close()


def test_source_cannot_be_pickled(market, clock):
    with source(market, clock) as src, pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(src)


# -- skip ledger --------------------------------------------------------------------------------


class MemoryStore(TickStore):
    """The smallest TickStore: partitions in a dict (for the ledger round trip)."""

    kind = "memory"

    def __init__(self) -> None:
        self.parts: dict[tuple[str, str, str], pd.DataFrame] = {}

    def write_partition(
        self, spec: TableSpec, symbol: str, trading_day: str, df: pd.DataFrame
    ) -> WriteStats:
        frame = conform(df, spec)
        if (
            len(frame)
            and not ((frame["symbol"] == symbol) & (frame["trading_day"] == trading_day)).all()
        ):
            raise ValueError(f"{spec.name}: rows outside partition {symbol} {trading_day}")
        self.parts[(spec.name, symbol, trading_day)] = frame
        return WriteStats(spec.name, symbol, trading_day, len(frame), 0, 0.0, "memory")

    def read_partition(self, spec: TableSpec, symbol: str, trading_day: str) -> pd.DataFrame:
        got = self.parts.get((spec.name, symbol, trading_day))
        return got.copy() if got is not None else conform(pd.DataFrame(columns=spec.columns), spec)

    def read_table(self, spec, symbols=None, start_day=None, end_day=None) -> pd.DataFrame:
        frames = [
            f
            for (name, sym, day), f in self.parts.items()
            if name == spec.name
            and (symbols is None or sym in symbols)
            and (start_day is None or day >= start_day)
            and (end_day is None or day <= end_day)
        ]
        return pd.concat(frames, ignore_index=True) if frames else self.read_partition(spec, "", "")

    def partitions(self, spec, symbol):
        return sorted(d for (n, s, d) in self.parts if n == spec.name and s == symbol)

    def coverage(self, symbols):
        raise NotImplementedError

    def latest(self, symbols):
        raise NotImplementedError


@pytest.fixture(params=["memory", "embedded"])
def store(request, tmp_path) -> TickStore:
    if request.param == "memory":
        return MemoryStore()
    from ghtrader_assets.stores.embedded import EmbeddedStore

    return EmbeddedStore(tmp_path / "store")


def test_skip_ledger_round_trip(store, market, clock):
    ledger = SkipLedger(store, clock=clock.now)
    with source(market, clock) as src, pytest.raises(DaySkippedError) as info:
        src.roll_entry(CU, dt.date(2023, 12, 29))
    first = ledger.record_error(info.value, source="tqsdk")
    clock.advance(60)
    again = ledger.record_error(info.value, source="tqsdk")
    ledger.record(CU, "2023-12-29", SkipReason.NO_L5, "no depth", source="tqsdk")
    ledger.record(CU, MON, "no_sessions", "no hours", source="tqsdk")

    rows = ledger.entries([CU])
    SKIP_LEDGER.schema.validate(rows)
    assert rows[["trading_day", "reason"]].values.tolist() == [
        ["2023-12-29", "no_l5"],
        ["2023-12-29", "not_listed"],
        [MON.isoformat(), "no_sessions"],
    ]
    listed = rows[rows["reason"] == "not_listed"].iloc[0]
    assert (first.attempts, again.attempts, int(listed["attempts"])) == (1, 2, 2)
    assert listed["first_at"] == first.first_at and listed["last_at"] > listed["first_at"]
    assert info.value.detail in listed["message"]
    assert ledger.skipped_days(CU) == ["2023-12-29", MON.isoformat()]
    assert len(ledger.entries([CU], start_day=MON, end_day=MON)) == 1

    assert ledger.clear(CU, "2023-12-29", SkipReason.NO_L5) == 1
    assert ledger.entries([CU])["reason"].tolist() == ["not_listed", "no_sessions"]
    assert ledger.clear(CU, "2023-12-29") == 1 and ledger.clear(CU, "2023-12-29") == 0
    assert ledger.skipped_days(CU) == [MON.isoformat()]


def test_skip_ledger_rejects_bad_input(store, clock):
    ledger = SkipLedger(store, clock=clock.now)
    with pytest.raises(ValueError, match="snake_case"):
        ledger.record(CU, MON, "Not Listed!", "x", source="tqsdk")
    with pytest.raises(ValueError, match="not a main continuous symbol"):
        ledger.record("SHFE.cu2504", MON, "no_l5", "x", source="tqsdk")
    with pytest.raises(ValueError, match="ISO date"):
        ledger.record(CU, "2025-13-01", "no_l5", "x", source="tqsdk")
    assert ledger.entries().empty


def test_ledger_ts_is_the_trading_days_local_midnight(store, clock):
    ledger = SkipLedger(store, clock=clock.now)
    ledger.record(CU, MON, "no_l5", "x", source="tqsdk")
    ts = ledger.entries()["ts"].iloc[0]
    assert ts.tz_convert(TZ) == pd.Timestamp(dt.datetime.combine(MON, dt.time()), tz=TZ)
    assert np.issubdtype(ledger.entries()["attempts"].dtype, np.integer)


# -- the fake stays faithful --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "get_tick_data_series",
        "query_his_cont_quotes",
        "get_quote",
        "query_quotes",
        "query_symbol_info",
        "wait_update",
        "close",
    ],
)
def test_fake_methods_have_tqapis_signatures(method):
    from tqsdk import TqApi

    from ghtrader_assets_tests.fake_tqapi import FakeTqApi

    real = inspect.signature(getattr(TqApi, method)).parameters
    fake = inspect.signature(getattr(FakeTqApi, method)).parameters
    assert [(p.name, p.default) for p in fake.values()] == [
        (p.name, p.default) for p in real.values()
    ]


def test_fake_tick_frame_has_tqsdks_columns_and_dtypes(market, clock):
    from tqsdk.data_series import DataSeries

    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    api = market.api_factory(USER, PASSWORD)
    df = api.get_tick_data_series(
        "SHFE.cu2504", dt.datetime(2025, 3, 7, 18), dt.datetime(2025, 3, 10, 16)
    )
    api.close()
    data_cols = DataSeries._get_data_cols("SHFE.cu2504", 0)
    assert list(df.columns) == ["id", "datetime", *data_cols, "symbol", "duration"]
    assert df["id"].dtype == "int64" and df["datetime"].dtype == "int64"
    assert all(df[c].dtype == "float64" for c in data_cols)


# -- tqsdk over a long backfill (issue 14) ----------------------------------------------------


def _overlap(a: tuple[str, float, float, float], b: tuple[str, float, float, float]) -> bool:
    """Whether two downloads held their lock at the same time."""
    return a[2] < b[3] and b[2] < a[3]


def test_the_fake_serialises_one_contract_in_a_shared_cache_and_blocks_the_thread(market, clock):
    """tqsdk's per-contract file lock: two bare downloads of one contract run one at a time."""
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.download_seconds = 0.3
    start, end = dt.datetime(2025, 3, 7, 18), dt.datetime(2025, 3, 10, 16)

    def work(_: int) -> int:
        api = market.api_factory(USER, PASSWORD)
        try:
            return len(api.get_tick_data_series("SHFE.cu2504", start, end))
        finally:
            api.close()

    assert threads_run(2, work) == [1, 1]
    first, second = sorted(market.lock_waits, key=lambda w: w[2])
    assert not _overlap(first, second)
    assert second[2] - second[1] >= 0.25  # the second waited, blocked, for the first


def test_parallel_sources_download_one_contract_at_the_same_time(market, clock, cache_root):
    """Each source caches into its own directory: no shared lock, real parallelism even
    when every worker downloads the same underlying (consecutive days of one symbol)."""
    load(market, "SHFE.cu2504", [at(MON, "09:00:01"), at(FRIDAY, "21:00:01")])
    market.download_seconds = 0.4
    together = threading.Barrier(3, timeout=20)
    dirs: list[str] = []

    def work(i: int) -> int:
        with source(market, clock) as src:
            entry = src.roll_entry(CU, MON)
            together.wait()
            rows = len(src.ticks(entry))
            dirs.append(str(src.cache.path))
            return rows

    assert threads_run(3, work) == [2, 2, 2]
    waits = market.lock_waits
    assert len(waits) == 3 and all(_overlap(a, b) for a in waits for b in waits if a is not b)
    assert len(set(dirs)) == 3 and all(d.startswith(str(cache_root)) for d in dirs)


def test_a_lock_held_in_tqsdks_default_cache_does_not_block_our_download(market, clock, tmp_path):
    from filelock import FileLock

    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    default = tmp_path / "tqsdk-default"
    default.mkdir(parents=True, exist_ok=True)
    holder = FileLock(str(default / ".SHFE.cu2504.0.lock"))
    got = threading.Event()
    release = threading.Event()

    def hold() -> None:  # another process's tqsdk downloading the same contract
        with holder:
            got.set()
            release.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    got.wait(5)
    try:
        with source(market, clock) as src:
            assert len(src.ticks(src.roll_entry(CU, MON))) == 1
    finally:
        release.set()
        other.join()


def test_the_fakes_stall_with_live_quotes_outlives_tqsdks_own_deadline(market, clock):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.library_deadline = 0.05  # stands for tqsdk's 30 s, restarted on every update
    market.stall_downloads(quote_every=0.01)  # ... and a quote arrives every 10 ms
    api = market.api_factory(USER, PASSWORD)
    worker = threading.Thread(
        target=api.get_tick_data_series,
        args=("SHFE.cu2504", dt.datetime(2025, 3, 7, 18), dt.datetime(2025, 3, 10, 16)),
        daemon=True,
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # ten library deadlines later: still waiting
    market.stalled = False
    worker.join(5)
    assert not worker.is_alive()
    api.close()
    market.stall_downloads(quote_every=None)  # no updates at all: tqsdk's deadline works
    api = market.api_factory(USER, PASSWORD)
    with pytest.raises(TqTimeoutError, match="获取数据"):
        api.get_tick_data_series(
            "SHFE.cu2504", dt.datetime(2025, 3, 7, 18), dt.datetime(2025, 3, 10, 16)
        )
    api.close()


def test_a_stalled_download_ends_at_our_wall_clock_deadline_and_is_retried(market, clock):
    from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.library_deadline = 0.2
    market.stall_downloads(quote_every=0.01)
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, jitter=0.0)
    settings = TqSdkSettings(call_timeout=0.25)
    started = time.monotonic()
    with (
        source(market, clock, policy=policy, settings=settings) as src,
        pytest.raises(RetryExhaustedError) as info,
    ):
        src.ticks(src.roll_entry(CU, MON))
    elapsed = time.monotonic() - started
    assert "no answer within 0.25 s of wall-clock time" in str(info.value)
    assert "restarts on every quote update" in str(info.value)
    assert 0.4 <= elapsed < 5.0  # two attempts of 0.25 s, not forever
    assert clock.sleeps == [1.0]  # retried once, on a fresh TqApi
    assert len(market.instances) == 2 and all(i.closed for i in market.instances)


def _week_of_ticks(market: FakeMarket, days: list[dt.date], per_day: int = 3) -> None:
    times = [at(d, f"09:00:{s:02d}") for d in days for s in range(1, per_day + 1)]
    load(market, "SHFE.cu2504", times)


def test_the_tqapi_is_recycled_after_a_budget_of_days_so_memory_stays_bounded(market, clock):
    from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

    days = calendar.trading_days(dt.date(2025, 3, 3), dt.date(2025, 3, 11))  # 7 days
    _week_of_ticks(market, days)
    settings = TqSdkSettings.from_env({"GHTRADER_TQ_RECYCLE_DAYS": "3"})
    with source(market, clock, settings=settings) as src:
        rows = [len(src.ticks(src.roll_entry(CU, d))) for d in days]
        assert src.api_generations == 3  # 3 + 3 + 1 days
    assert rows == [3] * 7
    assert [i.downloads for i in market.instances] == [3, 3, 1]
    assert all(i.closed and i.retained_rows == 0 for i in market.instances)


def test_the_tqapi_is_recycled_after_a_budget_of_rows(market, clock):
    from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

    days = calendar.trading_days(dt.date(2025, 3, 3), dt.date(2025, 3, 6))
    _week_of_ticks(market, days, per_day=4)
    settings = TqSdkSettings.from_env({"GHTRADER_TQ_RECYCLE_ROWS": "6"})
    with source(market, clock, settings=settings) as src:
        for d in days:
            src.ticks(src.roll_entry(CU, d))
    # each download brings 4 day rows + the stray earlier tick; 2 downloads pass 6 rows
    assert [i.downloads for i in market.instances] == [2, 2]


def test_the_tick_cache_is_emptied_after_each_download_and_removed_on_close(
    market, clock, cache_root
):
    from ghtrader_assets.sources.tqsdk_cache import BYTES_PER_TICK_FIVE_LEVELS, cache_bytes_per_tick

    days = calendar.trading_days(dt.date(2025, 3, 3), dt.date(2025, 3, 5))
    _week_of_ticks(market, days)
    stale = cache_root / f"{socket.gethostname()}-999999999-1"  # a dead process's leftovers
    stale.mkdir(parents=True)
    (stale / "SHFE.cu2504.0.1.2").write_bytes(b"x" * 232)
    with source(market, clock) as src:
        for d in days:
            src.ticks(src.roll_entry(CU, d))
            assert src.cache.size_bytes() == 0  # nothing kept between downloads
        assert src.cache.path.is_dir() and not stale.exists()
    assert not src.cache.path.exists()
    assert cache_bytes_per_tick("SHFE.cu2504") == BYTES_PER_TICK_FIVE_LEVELS == 232
    assert cache_bytes_per_tick("DCE.m2505") == 104
    # what tqsdk wrote while downloading: 232 bytes per SHFE tick (3 a day, plus the stray
    # earlier tick from the second day on)
    assert market.cache_bytes_written == 232 * (3 * len(days) + len(days) - 1)


def test_the_fakes_cont_quotes_are_stale_within_a_process_and_carry_today_forward(market, clock):
    today = calendar.trading_day_of(clock.now())
    market.cont_lag_days = 1  # the server has not published today yet
    market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504", today: "SHFE.cu2512"})
    api = market.api_factory(USER, PASSWORD)
    first = api.query_his_cont_quotes(CU.raw, n=3)
    assert first["date"].iloc[-1].date() == today
    assert first[CU.raw].iloc[-1] == "SHFE.cu2504"  # carried forward, not the real main
    market.cont_lag_days = 0  # the server publishes today ...
    again = api.query_his_cont_quotes(CU.raw, n=3)
    assert again[CU.raw].iloc[-1] == "SHFE.cu2504"  # ... the process never sees it
    api.close()


def test_the_latest_unpublished_day_is_confirmed_by_the_live_main_quote(market, clock, caplog):
    today = calendar.trading_day_of(clock.now())
    market.cont_lag_days = 1
    market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504", today: "SHFE.cu2512"})
    with source(market, clock) as src:
        assert src.roll_entry(CU, today).underlying == "SHFE.cu2512"
        yesterday = calendar.previous_trading_day(today)
        assert src.roll_entry(CU, yesterday).underlying == "SHFE.cu2504"  # published
    assert "carries SHFE.cu2504 forward" in caplog.text


def test_an_unpublished_past_day_is_refused_when_the_main_has_moved_since(market, clock):
    today = calendar.trading_day_of(clock.now())
    yesterday = calendar.previous_trading_day(today)
    market.cont_lag_days = 2
    market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504", yesterday: "SHFE.cu2512"})
    with source(market, clock) as src, pytest.raises(NoDataError, match="unconfirmed"):
        src.roll_entry(CU, yesterday)
    market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504"})  # no switch after all
    with source(market, clock) as src:
        assert src.roll_entry(CU, yesterday).underlying == "SHFE.cu2504"


def test_the_roll_table_is_fetched_again_once_older_than_its_ttl(market, clock):
    from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

    day = calendar.previous_trading_day(calendar.trading_day_of(clock.now()))
    settings = TqSdkSettings.from_env({"GHTRADER_TQ_ROLL_TABLE_TTL": "600"})
    with source(market, clock, settings=settings) as src:
        assert src.roll_entry(CU, day).underlying == "SHFE.cu2505"
        market.set_rolls(CU.raw, {dt.date(2024, 1, 2): "SHFE.cu2504", day: "SHFE.cu2512"})
        clock.advance(300)
        assert src.roll_entry(CU, day).underlying == "SHFE.cu2505"  # within the TTL
        clock.advance(301)
        assert src.roll_entry(CU, day).underlying == "SHFE.cu2512"  # revised: picked up
    assert len(market.roll_fetches) == 2


def test_historical_contracts_never_wait_for_a_quote(market, clock):
    """An expired contract's quote never gets a market-data timestamp (30 s per lookup);
    trading hours come from the session history, which needs no lookup at all."""
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.no_md_timestamp.add("SHFE.cu2504")
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert len(frame) == 1
    assert "get_quote" not in market.calls
    assert clock.sleeps == [] and clock.now() == NOW  # no 30 s lookups


@pytest.mark.parametrize(
    ("kind", "retried"),
    [("auth_unavailable", True), ("name_service", True), ("auth", False)],
)
def test_login_failures_are_classified_by_their_real_texts(market, clock, kind, retried):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("__init__", kind)
    with source(market, clock) as src:
        entry = src.roll_entry(CU, MON)
        if retried:  # the auth server's 503, the name service's 502: Shinny's side, transient
            assert len(src.ticks(entry)) == 1
            assert clock.sleeps == [FAST.base_delay]
        else:
            with pytest.raises(AuthenticationError, match="rejected the account"):
                src.ticks(entry)
            assert clock.sleeps == []
    assert all(i.loop_closed for i in market.instances)


def test_an_account_without_the_market_data_grant_is_told_so(market, clock):
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.md_grant = False
    with source(market, clock) as src, pytest.raises(AuthenticationError) as info:
        src.ticks(src.roll_entry(CU, MON))
    assert "market-data grant" in str(info.value) and "您的账户不支持查看" in str(info.value)
    assert clock.sleeps == []


def test_a_failed_construction_leaves_tqsdks_loop_open_and_ours_closes_it(market):
    from ghtrader_assets_tests.fake_tqapi import FakeTqApi

    market.fail_next("__init__", "connect_timeout", times=2)
    with pytest.raises(TqTimeoutError):
        FakeTqApi(auth=f"{USER},{PASSWORD}", _market=market)  # as tqsdk: loop left open
    with pytest.raises(TqTimeoutError):
        market.api_factory(USER, PASSWORD)  # through construct(), like default_api_factory
    assert [i.loop_closed for i in market.instances] == [False, True]


def test_tqsdk_settings_are_validated_with_the_variable_named():
    from ghtrader_assets.config import Settings, SettingsError
    from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

    with pytest.raises(SettingsError, match="GHTRADER_TQ_CALL_TIMEOUT"):
        TqSdkSettings.from_env({"GHTRADER_TQ_CALL_TIMEOUT": "soon"})
    with pytest.raises(SettingsError, match="GHTRADER_TQ_RECYCLE_DAYS"):
        Settings.from_env({"GHTRADER_SOURCE": "tqsdk", "GHTRADER_TQ_RECYCLE_DAYS": "0"})
    got = TqSdkSettings.from_env(
        {"GHTRADER_TQ_CACHE_DIR": "/data/tq", "GHTRADER_TQ_RECYCLE_ROWS": "5"}
    )
    assert got.cache_dir == Path("/data/tq") and got.recycle_rows == 5


class _NoTicks(TickSourceBase):
    name = "stub"

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        return RollEntry(symbol, trading_day, "SHFE.cu2504", self.name)

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        return pd.DataFrame()


@pytest.mark.parametrize(("lock", "parallel"), [("shared", False), ("per_source", True)])
def test_the_benchmarks_latency_model_holds_tqsdks_per_contract_lock(tmp_path, lock, parallel):
    """bench/backfill.py's model: a shared cache serialises one underlying's downloads, a
    cache per source does not."""
    from ghtrader_assets.sources.latency import LatencySource

    sources = [
        LatencySource(_NoTicks(), 0.3, lock=lock, lock_dir=tmp_path / "shared") for _ in range(2)
    ]
    together = threading.Barrier(2, timeout=10)

    def work(i: int) -> None:
        together.wait()
        sources[i].ticks(RollEntry(CU, MON, "SHFE.cu2504", "stub"))

    threads_run(2, work)
    a, b = (s.downloads[0] for s in sources)
    assert _overlap(a, b) == parallel
    for s in sources:
        s.close()


def test_tqsdks_own_cache_code_follows_the_active_source_directory(tmp_path):
    """The real DataSeries helpers resolve CACHE_DIR per thread: the active source's
    directory inside ``active()``, tqsdk's default outside it and in other threads."""
    from tqsdk.data_series import DataSeries

    from ghtrader_assets.sources.tqsdk_cache import CacheDir

    cache = CacheDir(tmp_path / "root")
    with cache.active() as path:
        DataSeries._ensure_cache_dir()
        lock = DataSeries._get_lock_path("SHFE.cu2504", 0)
        (path / "SHFE.cu2504.0.10.12").write_bytes(b"\0" * 2 * 232)
        assert DataSeries._get_rangeset_id("SHFE.cu2504", 0) == [(10, 12)]
        elsewhere = threads_run(1, lambda _: DataSeries._get_lock_path("SHFE.cu2504", 0))[0]
    assert lock == str(path / ".SHFE.cu2504.0.lock")
    assert elsewhere == str(tmp_path / "tqsdk-default" / ".SHFE.cu2504.0.lock")
    assert DataSeries._get_lock_path("SHFE.cu2504", 0) == elsewhere
    assert cache.clear("SHFE.cu2504") == 2 * 232 and cache.size_bytes() == 0
    cache.remove()
    assert not path.exists()


def test_a_disconnect_at_the_start_of_maintenance_waits_for_the_window_to_end(market):
    """tqsdk does not say "maintenance" mid-call: the cut connection is a timeout noticed
    30 s later. Noticed inside the daily window, it is treated as maintenance."""
    start = dt.datetime(2025, 11, 3, 18, 59, 50, tzinfo=TZ)
    clock = FakeClock(start)
    market.clock = clock
    load(market, "SHFE.cu2504", [at(MON, "09:00:01")])
    market.fail_next("get_tick_data_series", "disconnect")
    policy = RetryPolicy(jitter=0.0, maintenance_grace=30.0)
    with source(market, clock, policy=policy) as src:
        entry = src.roll_entry(CU, MON)
        assert len(src.ticks(entry)) == 1
    noticed = start + dt.timedelta(seconds=30)  # 19:00:20
    window_end = dt.datetime.combine(start.date(), dt.time(19, 30), tzinfo=TZ)
    assert clock.sleeps == [(window_end - noticed).total_seconds() + 30.0]
    assert len(market.instances) == 2 and all(i.closed for i in market.instances)


def test_the_roll_table_http_fetch_always_carries_a_timeout(monkeypatch):
    import requests

    from ghtrader_assets.sources.tqsdk_roll_table import http_fetch

    seen: dict[str, object] = {}

    class Response:
        def raise_for_status(self) -> None:
            return None

        def json(self) -> dict[str, list[list[str]]]:
            return {"SHFE.cu": [["20250102", "SHFE.cu2502"]]}

    def get(url: str, **kwargs: object) -> Response:
        seen.update(kwargs, url=url)
        return Response()

    monkeypatch.setattr(requests, "get", get)
    assert http_fetch("https://example.invalid/t.json", 7.5) == {
        "SHFE.cu": [["20250102", "SHFE.cu2502"]]
    }
    assert seen["timeout"] == 7.5 and seen["url"] == "https://example.invalid/t.json"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "non-empty JSON object"),
        ({"SHFE.cu": "SHFE.cu2502"}, "'SHFE.cu' is not a list"),
        ({"SHFE.cu": [["2025-01-02", "SHFE.cu2502"]]}, "'SHFE.cu' row 0"),
        ({"SHFE.cu": []}, "no rows"),
    ],
)
def test_a_malformed_roll_table_is_named(raw, message):
    from ghtrader_assets.sources.base import MalformedInputError
    from ghtrader_assets.sources.tqsdk_roll_table import RollTable

    with pytest.raises(MalformedInputError, match=message) as info:
        RollTable.parse(raw, url="https://example.invalid/t.json", fetched_at=NOW)
    assert "https://example.invalid/t.json" in str(info.value)


def test_the_roll_table_forward_fills_sparse_rows_like_tqsdk():
    from ghtrader_assets.sources.tqsdk_roll_table import RollTable

    raw = {"SHFE.cu": [["20250310", "SHFE.cu2505"], ["20250102", "SHFE.cu2502"]]}
    table = RollTable.parse(raw, url="u", fetched_at=NOW)
    assert table.answer("KQ.m@SHFE.cu", dt.date(2025, 1, 1)).contract == ""
    assert table.answer("KQ.m@SHFE.cu", dt.date(2025, 3, 7)).contract == "SHFE.cu2502"
    mar12 = table.answer("KQ.m@SHFE.cu", dt.date(2025, 3, 12))
    assert (mar12.contract, mar12.confirmed) == ("SHFE.cu2505", False)  # after the last row
    assert table.published_through == dt.date(2025, 3, 10)

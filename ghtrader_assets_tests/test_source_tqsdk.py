"""TqSdkSource, its retry machinery and the skip ledger, against the FakeTqApi (no network)."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import pickle
import random
import threading
from collections.abc import Sequence

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
    parse_trading_time,
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
    assert stats.raw_rows == len(CU_TICKS)  # the Thursday tick is outside the request
    assert stats.outside_session_rows == sum(not inside for _, inside in CU_TICKS)
    assert stats.sessions_from == "tqsdk"
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


def test_tqsdk_trading_time_wins_over_the_static_table(market, clock, caplog):
    market.trading_time["SHFE.cu"]["night"] = [["21:00:00", "23:00:00"]]
    load(market, "SHFE.cu2504", [at(FRIDAY, "22:00:00"), at(FRIDAY, "23:30:00")])
    with caplog.at_level(logging.WARNING), source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert local_times(frame["ts"]) == [at(FRIDAY, "22:00:00")]
    assert stats.sessions_from == "tqsdk"
    assert "differs from the static session table" in caplog.text


def test_static_sessions_when_tqsdk_has_no_trading_time(market, clock):
    market.trading_time["SHFE.cu"] = {"day": [], "night": []}
    load(market, "SHFE.cu2504", [at(FRIDAY, "23:30:00"), at(SATURDAY, "01:30:00")])
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert local_times(frame["ts"]) == [at(FRIDAY, "23:30:00")]
    assert stats.sessions_from == "static"


def test_trading_time_parsing_handles_ends_past_midnight():
    layout = parse_trading_time(
        {"day": [["09:00:00", "10:15:00"]], "night": [["21:00:00", "26:30:00"]]}, "SHFE.au2504"
    )
    assert layout is not None
    assert layout.night == ((dt.timedelta(hours=21), dt.timedelta(hours=26, minutes=30)),)
    assert parse_trading_time({"day": [["09:00", "x"]], "night": []}, "X") is None
    assert parse_trading_time({"day": [], "night": []}, "X") is None


# -- true L5 ------------------------------------------------------------------------------------


def test_level1_only_rows_are_dropped_and_counted_on_shfe(market, clock):
    times = [at(MON, f"09:00:{s:02d}") for s in range(10)]
    load(market, "SHFE.cu2504", times, l1_only=[1, 4, 5])
    with source(market, clock) as src:
        frame, stats = src.ticks_with_stats(src.roll_entry(CU, MON))
    assert local_times(frame["ts"]) == [t for i, t in enumerate(times) if i not in (1, 4, 5)]
    assert stats.l1_only_rows == 3 and stats.rows == 7 and stats.depth_columns
    assert frame[list(BOOK_COLUMNS)].notna().all().all()


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
def test_an_empty_answer_for_a_day_with_sessions_is_retried_never_stored(
    market, clock, optimized
):
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
    ["get_tick_data_series", "query_his_cont_quotes", "get_quote", "query_quotes", "close"],
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

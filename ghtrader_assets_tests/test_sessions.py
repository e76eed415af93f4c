"""Session windows per product and trading day (as of the day), and the in-session mask."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import TZ, CalendarError, is_trading_day, trading_days
from ghtrader_assets.products import (
    PRODUCTS,
    ProductSpec,
    UnknownProductError,
    product_spec,
)
from ghtrader_assets.sessions import (
    SessionWindow,
    day_sessions,
    expected_seconds,
    has_night_session,
    in_session_mask,
    is_listed,
    listing_date,
    night_suspended,
    not_listed_reason,
    session_windows,
    timeline,
    trim_mask,
)

D = dt.date


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def _night(windows: list[SessionWindow]) -> list[SessionWindow]:
    return [w for w in windows if w.kind == "night"]


# --- products -------------------------------------------------------------------------------


def test_unknown_product_names_the_nearest_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        product_spec("SHFE", "cuu")
    assert isinstance(info.value, UnknownProductError)
    assert "SHFE.cuu" in str(info.value) and "SHFE.cu" in str(info.value)
    with pytest.raises(UnknownProductError):
        session_windows("DCE", "zz", D(2025, 1, 6))


# --- windows --------------------------------------------------------------------------------


def test_cu_tuesday_windows() -> None:
    windows = session_windows("SHFE", "cu", D(2025, 1, 7))
    assert [(w.start, w.end, w.kind) for w in windows] == [
        (_local("2025-01-06 21:00"), _local("2025-01-07 01:00"), "night"),
        (_local("2025-01-07 09:00"), _local("2025-01-07 10:15"), "day"),
        (_local("2025-01-07 10:30"), _local("2025-01-07 11:30"), "day"),
        (_local("2025-01-07 13:30"), _local("2025-01-07 15:00"), "day"),
    ]
    # 4 h night + 75 + 60 + 90 min day
    assert expected_seconds(windows) == 4 * 3600 + (75 + 60 + 90) * 60
    assert all(w.start.tzinfo is not None and str(w.start.tz) == "Asia/Shanghai" for w in windows)


def test_monday_has_friday_night_ending_saturday() -> None:
    (cu,) = _night(session_windows("SHFE", "cu", D(2025, 1, 6)))
    assert (cu.start, cu.end) == (_local("2025-01-03 21:00"), _local("2025-01-04 01:00"))
    (au,) = _night(session_windows("SHFE", "au", D(2025, 1, 6)))
    assert au.end == _local("2025-01-04 02:30")
    (sc,) = _night(session_windows("INE", "sc", D(2025, 1, 6)))
    assert sc.end == _local("2025-01-04 02:30")
    (m,) = _night(session_windows("DCE", "m", D(2025, 1, 6)))
    assert (m.start, m.end) == (_local("2025-01-03 21:00"), _local("2025-01-03 23:00"))


@pytest.mark.parametrize(
    "day",
    [
        D(2026, 2, 24),  # first day after Spring Festival 2026
        D(2025, 10, 9),  # first day after National Day 2025
        D(2025, 6, 3),  # after Dragon Boat Monday 2025-06-02 (Friday 05-30 had no night)
    ],
)
def test_no_night_after_holiday_break(day: dt.date) -> None:
    for exchange, product in [("SHFE", "cu"), ("SHFE", "au"), ("DCE", "m"), ("CZCE", "SR")]:
        windows = session_windows(exchange, product, day)
        assert _night(windows) == []
        assert [w.start.date() for w in windows] == [day] * 3
    # the next day has its night again (evening of the first day after the break)
    following = trading_days(day + dt.timedelta(days=1), day + dt.timedelta(days=7))[0]
    (night,) = _night(session_windows("SHFE", "cu", following))
    assert night.start == pd.Timestamp(dt.datetime.combine(day, dt.time(21)), tz=TZ)


def test_2020_night_suspension() -> None:
    for exchange, product in [("SHFE", "cu"), ("INE", "sc"), ("DCE", "i"), ("CZCE", "MA")]:
        for day in (D(2020, 2, 4), D(2020, 3, 2), D(2020, 4, 30)):
            assert _night(session_windows(exchange, product, day)) == [], (exchange, day)
        (night,) = _night(session_windows(exchange, product, D(2020, 5, 7)))
        assert night.start == _local("2020-05-06 21:00")
        # before the suspension nights ran normally
        assert _night(session_windows(exchange, product, D(2020, 1, 21)))
    ds = day_sessions("SHFE", "cu", D(2020, 3, 2))
    assert ds.hours == "day-0900-1500" and ds.hours_since == D(2020, 2, 4)


def test_day_only_products() -> None:
    if_windows = session_windows("CFFEX", "IF", D(2025, 1, 7))
    assert [(w.start, w.end) for w in if_windows] == [
        (_local("2025-01-07 09:30"), _local("2025-01-07 11:30")),
        (_local("2025-01-07 13:00"), _local("2025-01-07 15:00")),
    ]
    si_windows = session_windows("GFEX", "si", D(2025, 1, 7))
    assert [(w.start, w.end) for w in si_windows] == [
        (_local("2025-01-07 09:00"), _local("2025-01-07 10:15")),
        (_local("2025-01-07 10:30"), _local("2025-01-07 11:30")),
        (_local("2025-01-07 13:30"), _local("2025-01-07 15:00")),
    ]
    # CFFEX has no 10:15 break
    assert in_session_mask(pd.DatetimeIndex([_local("2025-01-07 10:20")]), if_windows).all()
    assert not in_session_mask(pd.DatetimeIndex([_local("2025-01-07 10:20")]), si_windows).any()


def test_non_trading_day_rejected() -> None:
    with pytest.raises(CalendarError, match="2025-10-01 is not a trading day"):
        session_windows("SHFE", "cu", D(2025, 10, 1))


@pytest.mark.parametrize("day", [D(2013, 9, 3), D(2017, 4, 20), D(2020, 3, 4), D(2025, 3, 4)])
def test_every_product_has_disjoint_sorted_windows(day: dt.date) -> None:
    for spec in PRODUCTS.values():
        assert isinstance(spec, ProductSpec)
        ds = day_sessions(spec.exchange, spec.product, day)
        windows = list(ds.windows)
        assert (ds.status == "open") == bool(windows), ds.reason
        assert (ds.night is not None) == ds.hours.startswith("night-"), ds.reason
        for a, b in zip(windows, windows[1:], strict=False):
            assert a.start < a.end <= b.start


# --- mask -----------------------------------------------------------------------------------


def test_in_session_mask_boundaries() -> None:
    windows = session_windows("SHFE", "au", D(2025, 1, 6))
    one_ns = pd.Timedelta(1, "ns")
    probes = {
        _local("2025-01-03 21:00") - one_ns: False,
        _local("2025-01-03 21:00"): True,  # start inclusive
        _local("2025-01-04 02:30") - one_ns: True,
        _local("2025-01-04 02:30"): False,  # end exclusive
        _local("2025-01-06 10:15"): False,
        _local("2025-01-06 10:30"): True,
        _local("2025-01-06 14:59:59.5"): True,
        _local("2025-01-06 15:00"): False,
    }
    ts = pd.Series(list(probes), dtype="datetime64[ns, Asia/Shanghai]").dt.tz_convert("UTC")
    assert in_session_mask(ts, windows).tolist() == list(probes.values())
    naive = pd.DatetimeIndex([t.tz_localize(None) for t in probes])  # naive = local time
    assert in_session_mask(naive, windows).tolist() == list(probes.values())


def test_in_session_mask_matches_brute_force() -> None:
    windows = session_windows("SHFE", "cu", D(2025, 1, 6))
    rng = np.random.default_rng(3)
    lo = _local("2025-01-03 18:00").value
    hi = _local("2025-01-06 16:00").value
    ts = pd.DatetimeIndex(pd.to_datetime(rng.integers(lo, hi, 5000), utc=True))
    expected = [any(w.start <= t < w.end for w in windows) for t in ts]
    assert in_session_mask(ts, windows).tolist() == expected


def test_in_session_mask_edge_inputs() -> None:
    windows = session_windows("SHFE", "cu", D(2025, 1, 6))
    with_nat = pd.Series(pd.to_datetime(["2025-01-06 09:30", None])).dt.tz_localize(TZ)
    assert in_session_mask(with_nat, windows).tolist() == [True, False]
    assert in_session_mask(with_nat, []).tolist() == [False, False]
    overlapping = [windows[1], dataclasses.replace(windows[1], kind="night")]
    with pytest.raises(ValueError, match="overlap"):
        in_session_mask(with_nat, overlapping)


def test_boundary_mask_keeps_auction_and_closing_prints_only() -> None:
    import datetime as dt

    import pandas as pd

    from ghtrader_assets.sessions import boundary_mask, in_session_mask, session_windows

    monday = dt.date(2025, 3, 10)
    windows = session_windows("SHFE", "cu", monday)
    local = [
        "2025-03-07 20:54:59",  # before the auction window
        "2025-03-07 20:59:00",  # night call auction
        "2025-03-07 21:00:00",  # in session (not a boundary tick)
        "2025-03-08 01:00:00",  # night closing print
        "2025-03-08 01:00:03",  # past the 3 s grace
        "2025-03-10 10:15:01",  # closing print of the first morning session
        "2025-03-10 10:29:59",  # not an opening session: the break is just empty
        "2025-03-10 15:00:02",
    ]
    ts = pd.DatetimeIndex(local).tz_localize("Asia/Shanghai")
    got = boundary_mask(ts, windows)
    assert got.tolist() == [False, True, False, True, False, True, False, True]
    assert not (got & in_session_mask(ts, windows)).any()


# --- sessions as of the day (cnfutures-session-timeline) -----------------------------------


def _spans(windows: list[SessionWindow]) -> list[tuple[str, str, str]]:
    return [(f"{w.start:%Y-%m-%d %H:%M}", f"{w.end:%Y-%m-%d %H:%M}", w.kind) for w in windows]


def test_2017_hours_of_the_real_data_products() -> None:
    # CZCE night sessions ended at 23:30 until 2019-12
    assert _spans(_night(session_windows("CZCE", "CF", D(2017, 4, 14)))) == [
        ("2017-04-13 21:00", "2017-04-13 23:30", "night")
    ]
    assert _spans(_night(session_windows("CZCE", "CF", D(2025, 3, 4))))[0][1].endswith("23:00")
    # DCE pp had no night session before 2019-04-01
    pp = session_windows("DCE", "pp", D(2017, 4, 20))
    assert _night(pp) == [] and len(pp) == 3
    assert _night(session_windows("DCE", "pp", D(2019, 4, 2)))
    # SHFE sn: night to 01:00
    assert _spans(_night(session_windows("SHFE", "sn", D(2017, 4, 20)))) == [
        ("2017-04-19 21:00", "2017-04-20 01:00", "night")
    ]
    # CFFEX IF: 09:30-11:30 / 13:00-15:00 since 2016; 09:15-15:15 before
    assert _spans(session_windows("CFFEX", "IF", D(2017, 4, 20))) == [
        ("2017-04-20 09:30", "2017-04-20 11:30", "day"),
        ("2017-04-20 13:00", "2017-04-20 15:00", "day"),
    ]
    assert _spans(session_windows("CFFEX", "IF", D(2015, 6, 2))) == [
        ("2015-06-02 09:15", "2015-06-02 11:30", "day"),
        ("2015-06-02 13:00", "2015-06-02 15:15", "day"),
    ]
    # SHFE rb: night to 01:00 until 2016-05, 23:00 after
    assert _night(session_windows("SHFE", "rb", D(2016, 4, 7)))[0].end == _local("2016-04-07 01:00")
    assert _night(session_windows("SHFE", "rb", D(2016, 5, 5)))[0].end == _local("2016-05-04 23:00")


def test_listing_date_and_days_before_it() -> None:
    assert listing_date("SHFE", "ao") == D(2023, 6, 19)
    before = day_sessions("SHFE", "ao", D(2023, 6, 16))
    assert before.status == "not_listed" and before.windows == ()
    assert "not listed yet" in before.reason and "2023-06-19" in before.reason
    assert not is_listed("SHFE", "ao", D(2023, 6, 16))
    assert "2023-06-19" in (not_listed_reason("SHFE", "ao", "2023-06-16") or "")
    # the listing day trades the day session only; the next day has its night
    first = day_sessions("SHFE", "ao", D(2023, 6, 19))
    assert first.status == "open" and first.night is None and "listing day" in first.reason
    assert day_sessions("SHFE", "ao", D(2023, 6, 20)).night is not None
    assert not_listed_reason("SHFE", "ao", D(2023, 6, 19)) is None


def test_delisted_and_suspended_products_have_no_sessions() -> None:
    lr = day_sessions("CZCE", "LR", D(2025, 3, 3))
    assert lr.status == "delisted" and lr.windows == ()
    assert not is_listed("CZCE", "LR", D(2025, 3, 3))
    assert is_listed("CZCE", "LR", D(2024, 3, 4))
    # SHFE fu: old contract delisted 2018-06-27, the new one listed 2018-07-16
    assert day_sessions("SHFE", "fu", D(2018, 7, 2)).status == "delisted"
    assert day_sessions("SHFE", "fu", D(2018, 7, 17)).night is not None


def test_extra_closure_and_holidays_agree_with_our_calendar() -> None:
    # Spring Festival eve 2024: the timeline lists it as an extra closure, our calendar too
    with pytest.raises(CalendarError):
        session_windows("SHFE", "cu", D(2024, 2, 9))
    assert day_sessions("SHFE", "cu", D(2024, 2, 19)).night is None
    tl = timeline()
    for day in trading_days(D(2015, 1, 1), D(2026, 12, 31))[::7]:
        for exchange, product in [("SHFE", "cu"), ("DCE", "m"), ("CZCE", "SR"), ("CFFEX", "IF")]:
            want = tl.resolve(day, product.upper()).periods
            got = session_windows(exchange, product, day)
            assert [(w.start.time(), w.end.time()) for w in got] == [
                (p.start, p.end) for p in want
            ], (exchange, product, day)


def test_years_past_the_timeline_calendar_use_the_latest_hours() -> None:
    # 2027 is beyond chinese_calendar: latest hours, our calendar's holiday rule
    ds = day_sessions("SHFE", "cu", D(2027, 3, 2))
    assert ds.source == "our calendar" and ds.night is not None
    assert ds.night.end == _local("2027-03-02 01:00")
    # 2027-01-01 is a holiday in the override file: 2027-01-04 has no night
    assert day_sessions("SHFE", "cu", D(2027, 1, 4)).night is None


def test_trim_mask_keeps_sessions_and_boundary_prints_as_of_the_day() -> None:
    ts = pd.DatetimeIndex(
        [
            "2017-04-13 21:00:01",
            "2017-04-13 23:15",
            "2017-04-13 23:30:01",
            "2017-04-14 08:59",
            "2017-04-14 09:00:01",
            "2017-04-14 15:00:05",
        ]
    ).tz_localize(TZ)
    assert trim_mask(ts, "CZCE", "CF", D(2017, 4, 14)).tolist() == [
        True,
        True,
        True,
        True,
        True,
        False,
    ]
    assert trim_mask(ts, "CZCE", "CF", D(2017, 4, 14), keep_boundary=False).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    # before listing nothing is kept
    assert not trim_mask(ts, "SHFE", "ao", D(2017, 4, 14)).any()


def test_night_suspended_covers_every_reason_a_night_is_missing() -> None:
    assert night_suspended("DCE", "pp", D(2017, 4, 20))  # no night hours then
    assert night_suspended("SHFE", "cu", D(2020, 3, 2))  # 2020 suspension
    assert not night_suspended("SHFE", "cu", D(2020, 5, 7))
    assert has_night_session("CZCE", "CF", D(2017, 4, 14))


def test_our_trading_days_agree_with_the_session_source_on_every_weekday() -> None:
    # 2009..2026: every weekday our calendar trades, the timeline has sessions, and back
    tl = timeline()
    day, disagree = D(2009, 1, 19), []
    while day <= D(2026, 12, 31):
        if day.weekday() < 5:
            theirs = bool(tl.resolve(day, "CU").periods)
            if is_trading_day(day) != theirs:
                disagree.append(day)
        day += dt.timedelta(days=1)
    assert disagree == []

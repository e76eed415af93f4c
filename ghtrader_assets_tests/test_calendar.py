"""Trading calendar: holidays, day arithmetic, tick -> trading day mapping, override file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chinese_calendar.constants import holidays as state_holidays
from chinese_calendar.constants import workdays as state_workdays
from exchange_calendars.exchange_calendar_xshg import XSHGExchangeCalendar

from ghtrader_assets import calendar as cal
from ghtrader_assets.calendar import (
    TZ,
    CalendarError,
    HolidayOverride,
    build_non_trading_weekdays,
    is_trading_day,
    last_completed_trading_day,
    load_overrides,
    next_trading_day,
    non_trading_weekdays,
    previous_trading_day,
    trading_day_of,
    trading_days,
    trading_days_of,
)

D = dt.date


def _span(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# --- holidays -------------------------------------------------------------------------------


def test_national_day_2025_closes_oct_1_to_8() -> None:
    # Official 2025 schedule: closed Wed 2025-10-01 .. Wed 2025-10-08, reopen Thu 10-09.
    expected = [d for d in _span(D(2025, 10, 1), D(2025, 10, 8)) if d.weekday() < 5]
    assert non_trading_weekdays(D(2025, 9, 29), D(2025, 10, 10)) == expected
    assert not any(is_trading_day(d) for d in _span(D(2025, 10, 1), D(2025, 10, 8)))
    assert is_trading_day(D(2025, 9, 30)) and is_trading_day(D(2025, 10, 9))


def test_spring_festival_2026_and_makeup_saturday_do_not_trade() -> None:
    # 2026: closed Mon 02-16 .. Mon 02-23; Sat 02-14 is a state make-up workday, not a
    # trading day (exchanges never trade at weekends).
    assert D(2026, 2, 14) in state_workdays  # premise: the package marks it a workday
    assert not is_trading_day(D(2026, 2, 14))
    closed = [d for d in _span(D(2026, 2, 16), D(2026, 2, 23)) if d.weekday() < 5]
    assert non_trading_weekdays(D(2026, 2, 9), D(2026, 2, 27)) == closed
    assert is_trading_day(D(2026, 2, 13)) and is_trading_day(D(2026, 2, 24))
    assert next_trading_day(D(2026, 2, 13)) == D(2026, 2, 24)
    assert previous_trading_day(D(2026, 2, 24)) == D(2026, 2, 13)


def test_union_of_both_packages_and_override() -> None:
    # Every weekday holiday of either package is closed, in the years both cover.
    for d in state_holidays:
        if d.year >= 2015 and d.weekday() < 5:
            assert not is_trading_day(d), d
    for ts in pd.DatetimeIndex(XSHGExchangeCalendar.precomputed_holidays()):
        if ts.year >= 2015 and ts.weekday() < 5:
            assert not is_trading_day(ts.date()), ts
    # 2024-02-09 (Spring Festival eve) was an exchange closure but a state workday.
    assert D(2024, 2, 9) not in state_holidays
    assert not is_trading_day(D(2024, 2, 9))
    assert any(o.date == D(2024, 2, 9) and o.action == "add_holiday" for o in load_overrides())


def test_weekends_never_trade_and_string_dates_accepted() -> None:
    assert not is_trading_day(D(2025, 1, 4)) and not is_trading_day("2025-01-05")
    assert is_trading_day("2025-01-06")
    with pytest.raises(CalendarError, match="2025-13-01"):
        is_trading_day("2025-13-01")
    with pytest.raises(CalendarError, match="trading_day_of"):
        is_trading_day(dt.datetime(2025, 1, 6, 10))  # type: ignore[arg-type]


def test_trading_days_inclusive_and_consistent() -> None:
    start, end = D(2024, 12, 30), D(2026, 3, 6)
    days = trading_days(start, end)
    assert days == [d for d in _span(start, end) if is_trading_day(d)]
    assert days[0] == start and days[-1] == end  # both endpoints trade and are included
    weekdays = [d for d in _span(start, end) if d.weekday() < 5]
    assert sorted(days + non_trading_weekdays(start, end)) == weekdays
    assert trading_days(end, start) == []


def test_next_previous_strict() -> None:
    assert next_trading_day(D(2025, 1, 3)) == D(2025, 1, 6)  # Fri -> Mon
    assert previous_trading_day(D(2025, 1, 6)) == D(2025, 1, 3)
    assert next_trading_day(D(2025, 1, 6)) == D(2025, 1, 7)
    assert next_trading_day(D(2025, 9, 30)) == D(2025, 10, 9)
    assert previous_trading_day(D(2025, 10, 5)) == D(2025, 9, 30)


# --- tick -> trading day --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2025-01-03 14:59:59", D(2025, 1, 3)),  # Friday day session
        ("2025-01-03 17:59:59.999", D(2025, 1, 3)),
        ("2025-01-03 18:00:00", D(2025, 1, 6)),  # cutoff: Friday evening -> Monday
        ("2025-01-03 21:00:00", D(2025, 1, 6)),
        ("2025-01-04 00:30:00", D(2025, 1, 6)),  # Saturday after midnight -> Monday
        ("2025-01-04 02:29:59", D(2025, 1, 6)),
        ("2025-01-06 21:00:00", D(2025, 1, 7)),  # Monday night -> Tuesday
        ("2025-01-07 01:00:00", D(2025, 1, 7)),
        ("2025-09-30 21:00:00", D(2025, 10, 9)),  # holiday eve (no session, still mapped)
        ("2026-02-13 22:00:00", D(2026, 2, 24)),
    ],
)
def test_trading_day_of(local: str, expected: dt.date) -> None:
    naive = pd.Timestamp(local)
    assert trading_day_of(naive) == expected
    aware_utc = naive.tz_localize(TZ).tz_convert("UTC")
    assert trading_day_of(aware_utc) == expected
    assert trading_day_of(aware_utc.to_pydatetime()) == expected
    assert trading_days_of(pd.DatetimeIndex([aware_utc])).tolist() == [expected.isoformat()]


def test_trading_day_of_rejects_nat() -> None:
    with pytest.raises(CalendarError, match="NaT"):
        trading_day_of(pd.NaT)  # type: ignore[arg-type]
    with pytest.raises(CalendarError, match=r"positions \[1\]"):
        trading_days_of(pd.Series(pd.to_datetime(["2025-01-06 10:00", None])))


def test_vectorised_agrees_with_scalar() -> None:
    rng = np.random.default_rng(7)
    base = pd.Timestamp("2024-12-20", tz="UTC").value
    span = pd.Timedelta(days=440).value
    utc = pd.Series(pd.to_datetime(base + rng.integers(0, span, 3000), utc=True))
    got = trading_days_of(utc)
    assert got.dtype == object and len(got) == len(utc)
    assert got.tolist() == [trading_day_of(t).isoformat() for t in utc]
    # naive local input gives the same labels as the aware input it came from
    naive = pd.DatetimeIndex(utc.dt.tz_convert(TZ).dt.tz_localize(None))
    assert trading_days_of(naive).tolist() == got.tolist()
    assert trading_days_of(pd.DatetimeIndex([])).tolist() == []


# --- completed day --------------------------------------------------------------------------


def test_last_completed_trading_day() -> None:
    assert last_completed_trading_day(dt.datetime(2025, 1, 6, 15, 29)) == D(2025, 1, 3)
    assert last_completed_trading_day(dt.datetime(2025, 1, 6, 15, 30)) == D(2025, 1, 6)
    assert last_completed_trading_day(dt.datetime(2025, 1, 4, 12, 0)) == D(2025, 1, 3)
    assert last_completed_trading_day(dt.datetime(2025, 10, 3, 16, 0)) == D(2025, 9, 30)
    aware = pd.Timestamp("2025-01-06 07:31", tz="UTC")  # 15:31 Shanghai
    assert last_completed_trading_day(aware) == D(2025, 1, 6)
    assert last_completed_trading_day(aware, close=dt.time(16, 0)) == D(2025, 1, 3)


# --- override file and fallback -------------------------------------------------------------


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ovr.csv"
    path.write_text(body, encoding="utf-8")
    return path


def test_override_file_parses_and_applies(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "date,action,note\n2027-02-08,add_holiday,spring\n\n2025-10-08,remove_holiday,x\n",
    )
    rows = load_overrides(path)
    assert rows == (
        HolidayOverride(D(2027, 2, 8), "add_holiday", "spring"),
        HolidayOverride(D(2025, 10, 8), "remove_holiday", "x"),
    )
    days = build_non_trading_weekdays([D(2025, 10, 7), D(2025, 10, 8), D(2025, 10, 11)], rows)
    # weekend input is dropped, the removal wins, the addition appears
    assert days == frozenset({D(2025, 10, 7), D(2027, 2, 8)})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("day,action,note\n", "line 1: header"),
        ("date,action,note\n2025-02-30,add_holiday,\n", "line 2, column date"),
        ("date,action,note\n2025-10-01,close,\n", "line 2, column action"),
        ("date,action,note\n2025-10-04,add_holiday,\n", "weekend"),
        ("date,action,note\n2025-10-01,add_holiday,\n2025-10-01,remove_holiday,\n", "line 2"),
        ("date,action,note\n2025-10-01\n", "line 2: expected 3 columns"),
    ],
)
def test_override_file_errors_name_the_place(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(CalendarError, match=message) as info:
        load_overrides(path)
    assert str(path) in str(info.value)


def test_uncovered_year_falls_back_to_weekdays(monkeypatch: pytest.MonkeyPatch) -> None:
    year = cal.covered_years()[1] + 1
    cal._warn_uncovered.cache_clear()
    # Record the module logger's calls directly: other libraries in the suite (tqsdk) patch
    # logging globally, which makes caplog's root handler unreliable here.
    messages: list[str] = []
    monkeypatch.setattr(cal.logger, "warning", lambda msg, *args: messages.append(msg % args))
    overridden = {o.date for o in cal.load_overrides() if o.action == "add_holiday"}
    jan = trading_days(D(year, 1, 1), D(year, 1, 31))
    expected = [
        d for d in _span(D(year, 1, 1), D(year, 1, 31)) if d.weekday() < 5 and d not in overridden
    ]
    assert jan == expected  # weekdays, less only the override file's rows
    assert all(is_trading_day(d) for d in expected)
    warnings = [m for m in messages if str(year) in m]
    assert len(warnings) == 1  # once per year, not once per call

"""Session windows per product and trading day, exchange events, and the in-session mask."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import TZ, CalendarError, trading_days
from ghtrader_assets.products import (
    PRODUCTS,
    ProductSpec,
    UnknownProductError,
    product_spec,
    spec_for,
)
from ghtrader_assets.sessions import (
    EXCHANGE_EVENTS,
    ExchangeEvent,
    SessionWindow,
    expected_seconds,
    in_session_mask,
    session_windows,
)
from ghtrader_assets.symbols import MainSymbol

D = dt.date


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def _night(windows: list[SessionWindow]) -> list[SessionWindow]:
    return [w for w in windows if w.kind == "night"]


# --- products -------------------------------------------------------------------------------


def test_product_facts() -> None:
    for (exchange, product), spec in PRODUCTS.items():
        assert (spec.exchange, spec.product) == (exchange, product)
        assert spec.five_levels == (exchange in ("SHFE", "INE"))
    assert product_spec("SHFE", "au").night_session == (dt.time(21), dt.time(2, 30))
    assert product_spec("SHFE", "rb").night_session == (dt.time(21), dt.time(23))
    assert product_spec("GFEX", "si").night_session is None
    assert spec_for(MainSymbol("INE", "sc")) is product_spec("INE", "sc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        product_spec("SHFE", "cu").tick_size = 1.0  # type: ignore[misc]


def test_unknown_product_lists_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        product_spec("SHFE", "xx")
    assert isinstance(info.value, UnknownProductError)
    assert "SHFE.xx" in str(info.value) and "SHFE.cu" in str(info.value)
    with pytest.raises(UnknownProductError):
        session_windows("DCE", "zz", D(2025, 1, 6))


def test_bad_product_spec_rejected() -> None:
    good = product_spec("SHFE", "cu")
    with pytest.raises(ValueError, match="day session"):
        dataclasses.replace(good, day_sessions=((dt.time(10), dt.time(9)),))


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
    assert {e.exchange for e in EXCHANGE_EVENTS if e.start.year == 2020} >= {
        "SHFE",
        "INE",
        "DCE",
        "CZCE",
    }


def test_event_scope() -> None:
    event = ExchangeEvent("SHFE", D(2025, 1, 1), D(2025, 1, 31), products=frozenset({"au"}))
    assert event.applies("SHFE", "au", D(2025, 1, 6))
    assert not event.applies("SHFE", "cu", D(2025, 1, 6))
    assert not event.applies("INE", "au", D(2025, 1, 6))
    assert not event.applies("SHFE", "au", D(2025, 2, 3))


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


def test_every_product_has_disjoint_sorted_windows() -> None:
    for spec in PRODUCTS.values():
        assert isinstance(spec, ProductSpec)
        windows = session_windows(spec.exchange, spec.product, D(2025, 3, 4))
        assert (spec.night_session is not None) == bool(_night(windows))
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

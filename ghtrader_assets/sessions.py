"""Session windows of one product on one trading day, and a fast in-session test for ticks.

Trading day D consists of the night session that opens on the evening of the previous
trading day (Friday evening for a Monday) and D's own day sessions. Two things remove the
night session:

* a holiday break: exchanges hold no night session on the evening before a holiday, so D has
  no night when a non-trading weekday lies between ``previous_trading_day(D)`` and D (first
  day after Spring Festival, National Day, or a one-day holiday). A plain weekend is not a
  break: Monday has Friday's night session.
* an exchange event from :data:`EXCHANGE_EVENTS` (e.g. the 2020 suspension of night trading).

Windows are tz-aware Asia/Shanghai, start inclusive, end exclusive. The opening call
auction prints (20:59 / 08:59) fall outside the windows by design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import TZ, CalendarError, is_trading_day, previous_trading_day
from ghtrader_assets.products import product_spec

WindowKind = Literal["day", "night"]


@dataclass(frozen=True)
class SessionWindow:
    """One continuous trading window ``[start, end)`` in Asia/Shanghai time."""

    start: pd.Timestamp
    end: pd.Timestamp
    kind: WindowKind

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


@dataclass(frozen=True)
class ExchangeEvent:
    """A deviation from the normal hours of ``exchange`` for trading days ``start..end``
    (inclusive). ``products`` limits it to some products; ``None`` means all of them."""

    exchange: str
    start: dt.date
    end: dt.date
    kind: Literal["night_suspended"] = "night_suspended"
    note: str = ""
    products: frozenset[str] | None = None

    def applies(self, exchange: str, product: str, trading_day: dt.date) -> bool:
        return (
            self.exchange == exchange
            and self.start <= trading_day <= self.end
            and (self.products is None or product in self.products)
        )


_COVID_2020 = (
    "COVID-19: the CSRC suspended futures night trading from the evening of 2020-02-03 "
    "(SHFE/INE/DCE/CZCE notices of 2020-02-02); SHFE notice of 2020-04-24 and the DCE/CZCE "
    "notices restored it from the evening of 2020-05-06 (Wed), i.e. trading day 2020-05-07 "
    "has a night session again. Trading days 2020-02-03..2020-05-06 have none."
)

EXCHANGE_EVENTS: list[ExchangeEvent] = [
    ExchangeEvent(ex, dt.date(2020, 2, 3), dt.date(2020, 5, 6), "night_suspended", _COVID_2020)
    for ex in ("SHFE", "INE", "DCE", "CZCE")
]


def _at(day: dt.date, t: dt.time) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, t), tz=TZ)


def night_suspended(exchange: str, product: str, trading_day: dt.date) -> bool:
    """True when an exchange event removes ``trading_day``'s night session."""
    return any(
        e.kind == "night_suspended" and e.applies(exchange, product, trading_day)
        for e in EXCHANGE_EVENTS
    )


def follows_holiday_break(trading_day: dt.date) -> bool:
    """True when a non-trading weekday lies between the previous trading day and this one."""
    prev = previous_trading_day(trading_day)
    gap = (trading_day - prev).days
    return any((prev + dt.timedelta(days=i)).weekday() < 5 for i in range(1, gap))


def session_windows(exchange: str, product: str, trading_day: dt.date) -> list[SessionWindow]:
    """The windows in which ``exchange.product`` trades for ``trading_day``, sorted.

    Raises :class:`~ghtrader_assets.products.UnknownProductError` for a product without
    facts and :class:`~ghtrader_assets.calendar.CalendarError` for a non-trading day.
    """
    spec = product_spec(exchange, product)
    if isinstance(trading_day, dt.datetime) or not isinstance(trading_day, dt.date):
        raise CalendarError(f"trading_day must be a date, got {trading_day!r}")
    if not is_trading_day(trading_day):
        raise CalendarError(f"{trading_day} is not a trading day; it has no sessions")
    windows: list[SessionWindow] = []
    if (
        spec.night_session is not None
        and not follows_holiday_break(trading_day)
        and not night_suspended(exchange, product, trading_day)
    ):
        evening = previous_trading_day(trading_day)
        start_t, end_t = spec.night_session
        end_day = evening + dt.timedelta(days=1) if end_t < start_t else evening
        windows.append(SessionWindow(_at(evening, start_t), _at(end_day, end_t), "night"))
    windows.extend(
        SessionWindow(_at(trading_day, s), _at(trading_day, e), "day") for s, e in spec.day_sessions
    )
    return sorted(windows, key=lambda w: w.start)


def expected_seconds(windows: Sequence[SessionWindow]) -> int:
    """Total trading seconds in ``windows``."""
    return sum(w.seconds for w in windows)


def _utc_ns(ts: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(ts)
    idx = idx.tz_localize(TZ) if idx.tz is None else idx
    return idx.tz_convert("UTC").as_unit("ns").asi8


def window_bounds(windows: Sequence[SessionWindow]) -> np.ndarray:
    """Flattened ``[start0, end0, start1, end1, ...]`` in UTC ns; checks windows don't overlap."""
    ordered = sorted(windows, key=lambda w: w.start)
    bounds = np.array(
        [x.as_unit("ns").value for w in ordered for x in (w.start, w.end)], dtype=np.int64
    )
    if bounds.size and not np.all(np.diff(bounds) >= 0):
        raise ValueError(f"session windows overlap or are reversed: {ordered}")
    return bounds


def in_session_mask(
    ts: pd.Series | pd.DatetimeIndex | np.ndarray, windows: Sequence[SessionWindow]
) -> np.ndarray:
    """Boolean array: which timestamps fall inside a window (start inclusive, end exclusive).

    Naive timestamps are Asia/Shanghai local; NaT is never in session. One ``searchsorted``
    over the window bounds: a position after an odd number of bounds is inside a window.
    """
    values = _utc_ns(ts)
    bounds = window_bounds(windows)
    if bounds.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(bounds, values, side="right")
    return (pos % 2 == 1) & (values != np.iinfo(np.int64).min)


#: Exchanges print the opening call auction up to 5 minutes before an opening session
#: (20:59 for the night, 08:59 for the day) and closing prints just after a session end.
PRE_OPEN_GRACE_SECONDS = 300.0
POST_CLOSE_GRACE_SECONDS = 3.0


def boundary_mask(
    ts: pd.Series | pd.DatetimeIndex | np.ndarray,
    windows: Sequence[SessionWindow],
    *,
    pre_open_seconds: float = PRE_OPEN_GRACE_SECONDS,
    post_close_seconds: float = POST_CLOSE_GRACE_SECONDS,
) -> np.ndarray:
    """Boolean array: which timestamps are auction or closing prints next to a session.

    Before an *opening* session (a night session, or the first day session of the trading
    day) up to ``pre_open_seconds``; after any session end up to ``post_close_seconds``.
    Sources keep these ticks (the official open and the day's final cumulative volume live
    there) and validation counts them as boundary ticks, not out-of-session ones.
    """
    values = _utc_ns(ts)
    out = np.zeros(values.shape, dtype=bool)
    pre, post = int(pre_open_seconds * 1e9), int(post_close_seconds * 1e9)
    first_day_seen = False
    for w in sorted(windows, key=lambda w: w.start):
        start, end = _utc_ns(pd.DatetimeIndex([w.start, w.end]))
        opening = w.kind == "night" or not first_day_seen
        first_day_seen = first_day_seen or w.kind == "day"
        if opening and pre:
            out |= (values >= start - pre) & (values < start)
        if post:
            out |= (values >= end) & (values < end + post)
    return out & ~in_session_mask(ts, windows)

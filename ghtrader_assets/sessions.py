"""Session windows of one product on one trading day, as they were **on that day**.

Source of truth: ``cnfutures-session-timeline`` (the dated session history of every Chinese
futures product: listing dates, each change of hours, night sessions opened, shortened and
suspended in 2020, delistings, holiday trims and extra exchange closures such as
2024-02-09). :func:`day_sessions` asks it and turns its answer into tz-aware windows.

What this module adds, because the timeline lacks it:

* **Our trading calendar stays in charge of which days trade** (:mod:`ghtrader_assets.calendar`:
  two holiday packages plus the override file). A day our calendar does not trade has no
  sessions (:class:`~ghtrader_assets.calendar.CalendarError`), and a night session is also
  removed when our calendar sees a holiday break before the day (:func:`follows_holiday_break`),
  so a holiday added to the override file takes the night away too.
* **Years the timeline's calendar does not cover yet** (it stops at the last year of
  ``chinese_calendar``): the product's latest standard hours on or before the day, with the
  night removed after a holiday break by our calendar.
* **Clock times**: the night session opens on the evening of the previous trading day (Friday
  evening for a Monday) and may end after midnight; windows are Asia/Shanghai, start
  inclusive, end exclusive. The opening call auction (20:59 / 08:59) and closing prints fall
  outside the windows by design; :func:`boundary_mask` recognises them.
* **Product codes in TqSdk's case** (``SHFE.cu``, ``CZCE.SR``); the timeline uses upper case.

A day before a product's listing, or while it is delisted, has no sessions and is not work:
:func:`not_listed_reason` says why, for the automation, coverage and the skip ledger.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from chinese_calendar.constants import Holiday
from cnfutures_session_timeline import (
    SESSION_PERIODS,
    ExtraClosure,
    SessionEvent,
    SessionTimeline,
    SessionTrim,
)

from ghtrader_assets.calendar import (
    TZ,
    CalendarError,
    _as_date,
    is_trading_day,
    previous_trading_day,
)
from ghtrader_assets.products import ProductSpec, product_spec

WindowKind = Literal["day", "night"]
DayStatus = Literal["open", "closed", "not_listed", "delisted"]
TIMELINE = "cnfutures-session-timeline"
_NIGHT_START = dt.time(21)


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
class DaySessions:
    """What one product trades on one trading day, and why.

    ``status``: ``open`` (has windows), ``closed`` (an exchange closure), ``not_listed``
    (before its listing date), ``delisted`` (trading ended or suspended). ``hours`` is the
    timeline's standard session name in force (e.g. ``night-2100-2330``) and ``hours_since``
    the trading day it took effect; ``trims`` say what removed sessions that day.
    """

    exchange: str
    product: str
    trading_day: dt.date
    windows: tuple[SessionWindow, ...]
    status: DayStatus
    hours: str
    hours_since: dt.date | None
    trims: tuple[str, ...] = ()
    source: str = TIMELINE

    @property
    def night(self) -> SessionWindow | None:
        return next((w for w in self.windows if w.kind == "night"), None)

    @property
    def reason(self) -> str:
        """One line a user can read: why the day has these sessions (or none)."""
        name = f"{self.exchange}.{self.product} {self.trading_day}"
        if self.status == "not_listed":
            return f"{name}: not listed yet (listed {self.hours_since}, {self.source})"
        if self.status == "delisted":
            return f"{name}: not trading since {self.hours_since} ({self.source})"
        trims = f"; {', '.join(self.trims)}" if self.trims else ""
        return f"{name}: hours {self.hours} since {self.hours_since}{trims} ({self.source})"


@functools.cache
def timeline() -> SessionTimeline:
    """The packaged session timeline, loaded once per process."""
    return SessionTimeline.load()


def timeline_products() -> list[tuple[str, str]]:
    """``(exchange, PRODUCT)`` of every product the timeline knows (its upper-case codes)."""
    return sorted((events[0].exchange, code) for code, events in timeline().events.items())


def has_session_history(spec: ProductSpec) -> bool:
    """True when the installed timeline has dated sessions for ``spec``'s product."""
    events = timeline().events.get(spec.product.upper())
    return bool(events) and events[0].exchange == spec.exchange


def _events(spec: ProductSpec) -> tuple[SessionEvent, ...]:
    events = timeline().events.get(spec.product.upper())
    if not events or events[0].exchange != spec.exchange:
        raise CalendarError(f"{TIMELINE} has no session history for {spec.key}")
    return events


def listing_date(exchange: str, product: str) -> dt.date:
    """The first trading day of ``exchange.product`` according to the timeline."""
    return _events(product_spec(exchange, product))[0].effective_trade_date


def _event_on(events: Sequence[SessionEvent], day: dt.date) -> SessionEvent | None:
    current = None
    for event in events:
        if event.effective_trade_date > day:
            break
        current = event
    return current


def not_listed_reason(exchange: str, product: str, trading_day: dt.date | str) -> str | None:
    """Why ``exchange.product`` has nothing to trade on ``trading_day``, or ``None`` when it
    is listed and trading then. Cheap (no calendar lookups): automation and coverage call it
    for every symbol-day."""
    spec = product_spec(exchange, product)
    day = _as_date(trading_day, "trading_day")
    events = _events(spec)
    event = _event_on(events, day)
    if event is None:
        return f"{spec.key} was not listed yet on {day} (listed {events[0].effective_trade_date})"
    if not SESSION_PERIODS[event.session]:
        return (
            f"{spec.key} did not trade on {day} ({event.reason} from {event.effective_trade_date})"
        )
    return None


def is_listed(exchange: str, product: str, trading_day: dt.date | str) -> bool:
    """True when the product is listed and trading on ``trading_day``."""
    return not_listed_reason(exchange, product, trading_day) is None


def listed_days(exchange: str, product: str, days: Sequence[dt.date]) -> list[dt.date]:
    """The days of ``days`` on which ``exchange.product`` is listed and trading: the work a
    backfill, the automation or a coverage count should consider."""
    return [d for d in days if not_listed_reason(exchange, product, d) is None]


def _at(day: dt.date, t: dt.time) -> pd.Timestamp:
    # Asia/Shanghai has had no DST since 1991, so attaching the zone is exact (and twice as
    # fast as localizing)
    return pd.Timestamp(dt.datetime.combine(day, t, tzinfo=TZ))


def follows_holiday_break(trading_day: dt.date) -> bool:
    """True when a non-trading weekday lies between the previous trading day and this one."""
    prev = previous_trading_day(trading_day)
    gap = (trading_day - prev).days
    return any((prev + dt.timedelta(days=i)).weekday() < 5 for i in range(1, gap))


def _resolve(spec: ProductSpec, event: SessionEvent, day: dt.date):
    """Periods and trims from the timeline; the event's standard hours where its calendar
    does not reach (``resolve`` refuses years ``chinese_calendar`` does not cover)."""
    try:
        resolved = timeline().resolve(day, spec.product.upper())
    except ValueError:
        return SESSION_PERIODS[event.session], (), "our calendar"
    return resolved.periods, tuple(_describe(t) for t in resolved.trims), TIMELINE


def _describe(trim: SessionTrim) -> str:
    """The timeline's trim in English (its own ``repr`` is Chinese)."""
    cause = trim.cause
    if cause == "listing_day":
        what = "listing day"
    elif isinstance(cause, Holiday):
        what = f"{cause.value} holiday"
    elif isinstance(cause, ExtraClosure):
        what = f"exchange closure {cause.day} ({cause.reason})"
    else:
        what = str(cause)
    return f"closed: {what}" if trim.action == "close" else f"no night session: {what}"


@functools.lru_cache(maxsize=65536)
def day_sessions(exchange: str, product: str, trading_day: dt.date) -> DaySessions:
    """The sessions ``exchange.product`` trades for ``trading_day`` (see the module docstring).

    Raises :class:`~ghtrader_assets.products.UnknownProductError` for a product without
    facts and :class:`~ghtrader_assets.calendar.CalendarError` for a day our calendar does
    not trade.
    """
    spec = product_spec(exchange, product)
    if isinstance(trading_day, dt.datetime) or not isinstance(trading_day, dt.date):
        raise CalendarError(f"trading_day must be a date, got {trading_day!r}")
    if not is_trading_day(trading_day):
        raise CalendarError(f"{trading_day} is not a trading day; it has no sessions")
    events = _events(spec)
    event = _event_on(events, trading_day)
    base = {"exchange": exchange, "product": product, "trading_day": trading_day}
    if event is None:
        since = events[0].effective_trade_date
        return DaySessions(**base, windows=(), status="not_listed", hours="", hours_since=since)
    if not SESSION_PERIODS[event.session]:
        return DaySessions(
            **base,
            windows=(),
            status="delisted",
            hours=event.session,
            hours_since=event.effective_trade_date,
            trims=(event.reason,),
        )
    periods, trims, source = _resolve(spec, event, trading_day)
    if periods and periods[0].start == _NIGHT_START and follows_holiday_break(trading_day):
        periods = periods[1:]
        if not trims:
            trims = ("no night session after a holiday break (our calendar)",)
    windows: list[SessionWindow] = []
    for period in periods:
        if period.start == _NIGHT_START:
            evening = previous_trading_day(trading_day)
            end_day = evening + dt.timedelta(days=1) if period.end < period.start else evening
            windows.append(
                SessionWindow(_at(evening, period.start), _at(end_day, period.end), "night")
            )
        else:
            windows.append(
                SessionWindow(_at(trading_day, period.start), _at(trading_day, period.end), "day")
            )
    windows.sort(key=lambda w: w.start)
    return DaySessions(
        **base,
        windows=tuple(windows),
        status="open" if windows else "closed",
        hours=event.session,
        hours_since=event.effective_trade_date,
        trims=trims,
        source=source,
    )


def session_windows(exchange: str, product: str, trading_day: dt.date) -> list[SessionWindow]:
    """The windows in which ``exchange.product`` trades for ``trading_day``, sorted; empty
    before its listing, while delisted, or on an exchange closure.

    Raises :class:`~ghtrader_assets.products.UnknownProductError` for a product without
    facts and :class:`~ghtrader_assets.calendar.CalendarError` for a non-trading day.
    """
    return list(day_sessions(exchange, product, trading_day).windows)


def has_night_session(exchange: str, product: str, trading_day: dt.date) -> bool:
    """True when ``trading_day`` opens with a night session on the previous evening."""
    return day_sessions(exchange, product, trading_day).night is not None


def night_suspended(exchange: str, product: str, trading_day: dt.date) -> bool:
    """True when ``trading_day`` has no night session for a reason other than an ordinary
    holiday break: the product had no night hours then (e.g. DCE.pp before 2019-04), night
    trading was suspended (2020), it is the listing day, an extra closure, or it was not
    listed. Sources that take today's hours from the provider (TqSdk ``trading_time``) use
    ``follows_holiday_break(day) or night_suspended(...)`` to drop the night as of the day.
    """
    return not has_night_session(exchange, product, trading_day)


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


def trim_mask(
    ts: pd.Series | pd.DatetimeIndex | np.ndarray,
    exchange: str,
    product: str,
    trading_day: dt.date,
    *,
    keep_boundary: bool = True,
) -> np.ndarray:
    """Which timestamps a source keeps for ``exchange.product`` on ``trading_day``: inside
    the day's sessions as of that day, plus (``keep_boundary``) the call-auction and closing
    prints next to them (:func:`boundary_mask`). All False when the day has no sessions."""
    windows = session_windows(exchange, product, trading_day)
    mask = in_session_mask(ts, windows)
    return mask | boundary_mask(ts, windows) if keep_boundary else mask

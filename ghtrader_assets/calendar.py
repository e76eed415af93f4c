"""Chinese futures trading calendar: which dates trade, and which trading day a tick belongs to.

A trading day is a weekday that is not a Chinese exchange holiday. Sources of holidays:

* ``chinese_calendar`` (State Council holiday schedule, years 2004..its last year) and
  ``exchange_calendars``' XSHG precomputed holiday list (Shanghai Stock Exchange, 1991..its
  last year). Chinese futures exchanges close on exactly the same weekdays as the stock
  exchanges; both packages agree on every weekday from 2007 to 2026 except 2024-02-09
  (Spring Festival eve, a state workday on which every exchange still closed), which only
  XSHG has. The holiday set is therefore the **union** of both packages' weekday holidays:
  an exchange never trades on a state holiday, and the exchange-specific closures come from
  XSHG. Both are maintained upstream; upgrading either extends the covered years.
* ``ghtrader_assets/data/holidays_override.csv`` (``date,action,note``; ``action`` is
  ``add_holiday`` or ``remove_holiday``) for days the packages lack or get wrong; applied
  last, so it always wins. Future holidays announced before the packages catch up go here.

Outside the covered years (:func:`covered_years`) the rule is: **every weekday trades**
unless the override file says otherwise, and a warning is logged once per such year. Holiday
dates depend on the lunar calendar and yearly State Council decisions, so guessing them
would only hide the gap.

Trading day of a tick (the TqSdk rule): local Asia/Shanghai time from 18:00 onward belongs
to the next calendar day, and a calendar day that does not trade rolls forward to the next
trading day. So Friday 21:00 and Saturday 00:30 both belong to Monday, and Monday 21:00 to
Tuesday.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
#: Local time from which ticks belong to the next trading day (night session start is 21:00).
NIGHT_CUTOFF = dt.time(18, 0)
#: Local time after which a trading day's data is considered complete.
DEFAULT_CLOSE = dt.time(15, 30)
OVERRIDE_FILENAME = "holidays_override.csv"
OVERRIDE_COLUMNS = ("date", "action", "note")
OverrideAction = Literal["add_holiday", "remove_holiday"]
_ACTIONS: tuple[str, ...] = ("add_holiday", "remove_holiday")
# Shift that turns "local time >= 18:00" into "next calendar day" by flooring to the day.
_CUTOFF_SHIFT = pd.Timedelta(hours=24 - NIGHT_CUTOFF.hour)

DateLike = dt.date | str


class CalendarError(ValueError):
    """Bad calendar input: an unparseable date or a malformed override file."""


@dataclass(frozen=True)
class HolidayOverride:
    """One row of the override file: force ``date`` to be a holiday or a trading day."""

    date: dt.date
    action: OverrideAction
    note: str = ""


def _as_date(d: DateLike, what: str = "date") -> dt.date:
    """Accept a ``date`` or an ISO ``YYYY-MM-DD`` string (a partition key)."""
    if isinstance(d, dt.datetime):
        raise CalendarError(
            f"{what}: got a datetime {d!r}; pass a date, or use trading_day_of() for a timestamp"
        )
    if isinstance(d, dt.date):
        return d
    if isinstance(d, str):
        try:
            return dt.date.fromisoformat(d.strip())
        except ValueError:
            raise CalendarError(f"{what}: {d!r} is not an ISO date (YYYY-MM-DD)") from None
    raise CalendarError(f"{what}: expected a date or an ISO date string, got {type(d).__name__}")


def override_path() -> Path:
    """Path of the packaged override file."""
    return Path(str(resources.files("ghtrader_assets") / "data" / OVERRIDE_FILENAME))


def load_overrides(path: Path | None = None) -> tuple[HolidayOverride, ...]:
    """Read and validate an override CSV (the packaged one by default).

    Errors name the file, line and column. Weekend rows are rejected (weekends never trade,
    so such a row is a mistake), and a date may appear only once.
    """
    path = override_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(f"cannot read holiday override file {path}: {exc}") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != OVERRIDE_COLUMNS:
        raise CalendarError(
            f"{path}, line 1: header must be {','.join(OVERRIDE_COLUMNS)}, got {header!r}"
        )
    out: list[HolidayOverride] = []
    seen: dict[dt.date, int] = {}
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) not in (2, 3):
            raise CalendarError(f"{path}, line {lineno}: expected 3 columns, got {len(row)}")
        raw_date, action = row[0].strip(), row[1].strip()
        note = row[2].strip() if len(row) == 3 else ""
        try:
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise CalendarError(
                f"{path}, line {lineno}, column date: {raw_date!r} is not an ISO date"
            ) from None
        if action not in _ACTIONS:
            raise CalendarError(
                f"{path}, line {lineno}, column action: {action!r} is not one of {_ACTIONS}"
            )
        if day.weekday() >= 5:
            raise CalendarError(
                f"{path}, line {lineno}, column date: {day} is a weekend day; weekends never "
                "trade, only weekdays can be overridden"
            )
        if day in seen:
            raise CalendarError(
                f"{path}, line {lineno}, column date: {day} already appears on line {seen[day]}"
            )
        seen[day] = lineno
        out.append(HolidayOverride(day, action, note))  # type: ignore[arg-type]
    return tuple(out)


def _package_holidays() -> tuple[set[dt.date], tuple[int, int]]:
    """Weekday holidays from both packages, and the year range they cover together."""
    from chinese_calendar.constants import holidays as state_holidays
    from exchange_calendars.exchange_calendar_xshg import XSHGExchangeCalendar

    xshg = {ts.date() for ts in pd.DatetimeIndex(XSHGExchangeCalendar.precomputed_holidays())}
    state = set(state_holidays)
    days = {d for d in state | xshg if d.weekday() < 5}
    years = [d.year for d in state] + [d.year for d in xshg]
    return days, (min(years), max(years))


def build_non_trading_weekdays(
    package_days: Iterable[dt.date], overrides: Iterable[HolidayOverride]
) -> frozenset[dt.date]:
    """Apply overrides on top of the packages' weekday holidays (overrides win)."""
    days = {d for d in package_days if d.weekday() < 5}
    for o in overrides:
        if o.action == "add_holiday":
            days.add(o.date)
        else:
            days.discard(o.date)
    return frozenset(days)


@functools.lru_cache(maxsize=1)
def _calendar_data() -> tuple[frozenset[dt.date], tuple[int, int]]:
    package_days, years = _package_holidays()
    return build_non_trading_weekdays(package_days, load_overrides()), years


def _holidays() -> frozenset[dt.date]:
    return _calendar_data()[0]


@functools.lru_cache(maxsize=1)
def _sorted_holidays() -> np.ndarray:
    return np.array(sorted(_holidays()), dtype="datetime64[D]")


@functools.lru_cache(maxsize=1)
def _busdaycal() -> np.busdaycalendar:
    return np.busdaycalendar(weekmask="1111100", holidays=_sorted_holidays())


def covered_years() -> tuple[int, int]:
    """First and last year for which the holiday packages have data (inclusive)."""
    return _calendar_data()[1]


@functools.cache
def _warn_uncovered(year: int) -> None:
    lo, hi = covered_years()
    logger.warning(
        "no exchange holiday data for %d (chinese_calendar/exchange_calendars cover %d..%d): "
        "treating every weekday of %d as a trading day except rows in %s; upgrade the "
        "packages or add the holidays to the override file",
        year,
        lo,
        hi,
        year,
        OVERRIDE_FILENAME,
    )


def _check_year(year: int) -> None:
    lo, hi = covered_years()
    if not lo <= year <= hi:
        _warn_uncovered(year)


def clear_cache() -> None:
    """Forget the cached holiday set (after editing the override file in a live process)."""
    _calendar_data.cache_clear()
    _sorted_holidays.cache_clear()
    _busdaycal.cache_clear()
    _warn_uncovered.cache_clear()


def is_trading_day(d: DateLike) -> bool:
    """True when ``d`` is a weekday and not an exchange holiday."""
    day = _as_date(d)
    _check_year(day.year)
    return day.weekday() < 5 and day not in _holidays()


def trading_days(start: DateLike, end: DateLike) -> list[dt.date]:
    """Trading days from ``start`` to ``end``, both inclusive, ascending."""
    lo, hi = _as_date(start, "start"), _as_date(end, "end")
    if hi < lo:
        return []
    for year in range(lo.year, hi.year + 1):
        _check_year(year)
    one = np.timedelta64(1, "D")
    days = np.arange(np.datetime64(lo, "D"), np.datetime64(hi, "D") + one, dtype="datetime64[D]")
    return days[np.is_busday(days, busdaycal=_busdaycal())].astype(object).tolist()


def non_trading_weekdays(start: DateLike, end: DateLike) -> list[dt.date]:
    """Weekdays from ``start`` to ``end`` (inclusive) that do not trade: holidays.

    These are the Dagster partition exclusions besides weekends. Years outside
    :func:`covered_years` contribute only override-file rows (no warning: listing is not
    deciding).
    """
    lo, hi = _as_date(start, "start"), _as_date(end, "end")
    return sorted(d for d in _holidays() if lo <= d <= hi)


def next_trading_day(d: DateLike) -> dt.date:
    """The first trading day strictly after ``d``."""
    day = _as_date(d) + dt.timedelta(days=1)
    while not is_trading_day(day):
        day += dt.timedelta(days=1)
    return day


def previous_trading_day(d: DateLike) -> dt.date:
    """The last trading day strictly before ``d``."""
    day = _as_date(d) - dt.timedelta(days=1)
    while not is_trading_day(day):
        day -= dt.timedelta(days=1)
    return day


def _local_naive(ts: pd.Timestamp | dt.datetime | str, what: str = "ts") -> pd.Timestamp:
    """A naive Asia/Shanghai wall-clock timestamp (naive input is already local)."""
    try:
        t = pd.Timestamp(ts)
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"{what}: cannot read {ts!r} as a timestamp ({exc})") from None
    if t is pd.NaT:
        raise CalendarError(f"{what}: got NaT, a missing timestamp has no trading day")
    if t.tzinfo is not None:
        t = t.tz_convert(TZ).tz_localize(None)
    return t


def trading_day_of(ts: pd.Timestamp | dt.datetime | str) -> dt.date:
    """Trading day a tick at ``ts`` belongs to (naive = Asia/Shanghai local time).

    From 18:00 local the tick belongs to the next calendar day; a non-trading day rolls
    forward. Friday night and Saturday early morning therefore map to Monday.
    """
    day = (_local_naive(ts) + _CUTOFF_SHIFT).date()
    return day if is_trading_day(day) else next_trading_day(day)


def trading_days_of(ts: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Vectorised :func:`trading_day_of`: ISO ``YYYY-MM-DD`` strings, positionally aligned.

    Accepts tz-aware (converted to Asia/Shanghai) or naive (taken as local) timestamps and
    returns an object array of ``str``, ready to assign to a ``trading_day`` column.
    """
    idx = pd.DatetimeIndex(ts)
    if idx.hasnans:
        bad = np.flatnonzero(idx.isna())[:5].tolist()
        raise CalendarError(f"ts: NaT at positions {bad}; a missing timestamp has no trading day")
    if len(idx) == 0:
        return np.array([], dtype=object)
    if idx.tz is not None:
        idx = idx.tz_convert(TZ).tz_localize(None)
    days = (idx + _CUTOFF_SHIFT).values.astype("datetime64[D]")
    uniq, inverse = np.unique(days, return_inverse=True)
    first, last = uniq[0].item(), uniq[-1].item()
    for year in range(first.year, last.year + 1):
        _check_year(year)
    rolled = np.busday_offset(uniq, 0, roll="forward", busdaycal=_busdaycal())
    labels = np.asarray(np.datetime_as_string(rolled, unit="D").tolist(), dtype=object)
    return labels[inverse.reshape(-1)]


def day_start_utc(d: DateLike) -> pd.Timestamp:
    """Midnight of trading day ``d`` in Shanghai, as UTC: the designated ``ts`` of every
    per-day row (roll schedule, summaries, manifests, ledgers, metrics)."""
    return pd.Timestamp(_as_date(d)).tz_localize(TZ).tz_convert("UTC")


def last_completed_trading_day(
    now: pd.Timestamp | dt.datetime, close: dt.time = DEFAULT_CLOSE
) -> dt.date:
    """The latest trading day whose close (local ``close`` time) is at or before ``now``.

    Naive ``now`` is Asia/Shanghai local time; aware ``now`` is converted.
    """
    local = _local_naive(now, "now")
    today = local.date()
    if is_trading_day(today) and local.time() >= close:
        return today
    return previous_trading_day(today)

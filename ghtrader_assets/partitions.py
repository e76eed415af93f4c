"""Dagster partitions keyed by trading day (``YYYY-MM-DD``), available from each day's close.

Wanted: one partition per trading day D (no weekend or holiday keys), and D becomes the
latest partition at D's close (15:30 Asia/Shanghai by default), so automation can
materialise it that afternoon; before the close the latest key is the previous trading day.

Why not ``DailyPartitionsDefinition(hour_offset=15, minute_offset=30, end_offset=1,
exclusions=...)``: with ``end_offset > 0`` Dagster 1.13 steps *forward* over excluded windows
when it computes the last partition (dagster-io/dagster#33551, fix proposed in #33560), so on
a holiday afternoon, or on Monday before the close (Sunday's window is current), the first
trading day *after* the break is already listed as a partition, days early.

What we do instead (``end_offset=0``, so that code path is never taken): a cron with two
ticks per weekday, ``MM 0,HH * * 1-5`` for close ``HH:MM``. Windows run from tick to tick:
``[D 00:MM, D HH:MM)`` is labelled D and ends exactly at the close; the evening window
``[D HH:MM, next 00:MM)`` would also be labelled D, and is removed by the cron exclusion
``MM HH * * *``. Weekends have no ticks; holidays are excluded by their 00:MM datetimes.
Consequences others must know: a partition's Dagster time window is ``[00:MM, close)`` of
its day (it does not contain the night session; use :mod:`ghtrader_assets.sessions` for
data bounds), and schedules should use :func:`close_cron`, not the partitions' own cron.

Holiday exclusions cover every known holiday from the start date on (all years the holiday
packages know, plus override rows), not "today + N years": the list then changes only when
the packages or the override file change, so the definition's identity (Dagster hashes its
repr) is stable from day to day. Years the packages do not know have no holiday
exclusions, matching :mod:`ghtrader_assets.calendar`'s fallback.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from ghtrader_assets.calendar import (
    DEFAULT_CLOSE,
    TZ,
    CalendarError,
    is_trading_day,
    non_trading_weekdays,
)
from ghtrader_assets.config import DEFAULT_START_DATE

if TYPE_CHECKING:  # dagster is imported where partitions are built: the CLI's reads skip it
    from dagster import TimeWindowPartitionsDefinition

PARTITION_FMT = "%Y-%m-%d"
START_DATE_ENV = "GHTRADER_START_DATE"
CLOSE_TIME_ENV = "GHTRADER_CLOSE_TIME"


class PartitionsConfigError(ValueError):
    """A start date or close time that cannot define the partitions."""


def _parse_start(value: str, origin: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise PartitionsConfigError(
            f"{origin}={value!r} is not an ISO date (expected YYYY-MM-DD, e.g. 2025-01-02)"
        ) from None


def _parse_close(value: str, origin: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError:
        raise PartitionsConfigError(
            f"{origin}={value!r} is not a time of day (expected HH:MM, e.g. 15:30)"
        ) from None


def _check_close(close: dt.time, origin: str) -> dt.time:
    if close.second or close.microsecond or close.tzinfo is not None or close.hour == 0:
        raise PartitionsConfigError(
            f"{origin}={close.isoformat()}: the close must be a whole minute between 01:00 "
            "and 23:59 local time"
        )
    return close


def resolve_start_date(start_date: str | None = None) -> dt.date:
    """``start_date``, else ``$GHTRADER_START_DATE``, else :data:`DEFAULT_START_DATE`."""
    if start_date is not None:
        return _parse_start(start_date, "start_date")
    env = os.environ.get(START_DATE_ENV, "").strip()
    if env:
        return _parse_start(env, START_DATE_ENV)
    return _parse_start(DEFAULT_START_DATE, "DEFAULT_START_DATE")


def resolve_close(close: dt.time | str | None = None) -> dt.time:
    """``close``, else ``$GHTRADER_CLOSE_TIME``, else 15:30."""
    if isinstance(close, dt.time):
        return _check_close(close, "close")
    if isinstance(close, str):
        return _check_close(_parse_close(close, "close"), "close")
    env = os.environ.get(CLOSE_TIME_ENV, "").strip()
    if env:
        return _check_close(_parse_close(env, CLOSE_TIME_ENV), CLOSE_TIME_ENV)
    return DEFAULT_CLOSE


def partition_cron(close: dt.time = DEFAULT_CLOSE) -> str:
    """The partitions' cron: ticks at 00:MM and at the close, on weekdays."""
    return f"{close.minute} 0,{close.hour} * * 1-5"


def close_cron(close: dt.time = DEFAULT_CLOSE) -> str:
    """Cron for schedules/automation: the close of every weekday (holidays have no key)."""
    return f"{close.minute} {close.hour} * * 1-5"


def trading_day_partitions(
    start_date: str | None = None, close: dt.time | str | None = None
) -> TimeWindowPartitionsDefinition:
    """Daily partitions keyed by trading day, timezone Asia/Shanghai, fmt ``%Y-%m-%d``.

    ``start_date`` defaults to ``$GHTRADER_START_DATE`` then 2025-01-02; a non-trading
    start simply begins at the next trading day. Key D is the last key from D's close
    (``close``, default ``$GHTRADER_CLOSE_TIME`` then 15:30) until the next trading day's.
    """
    start = resolve_start_date(start_date)
    close_t = resolve_close(close)
    opening = dt.time(0, close_t.minute)
    holidays = non_trading_weekdays(start, dt.date.max)
    from dagster import TimeWindowPartitionsDefinition

    return TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(start, dt.time()),
        timezone=str(TZ),
        fmt=PARTITION_FMT,
        cron_schedule=partition_cron(close_t),
        end_offset=0,
        exclusions=[
            f"{close_t.minute} {close_t.hour} * * *",
            *(dt.datetime.combine(d, opening) for d in holidays),
        ],
    )


def partition_key(day: dt.date) -> str:
    """The partition key of a trading day; raises for a non-trading day."""
    if not is_trading_day(day):
        raise CalendarError(f"{day} is not a trading day, so it has no partition")
    return day.strftime(PARTITION_FMT)


def partition_day(key: str) -> dt.date:
    """The trading day of a partition key; the error names a malformed or non-trading key."""
    try:
        day = dt.datetime.strptime(key, PARTITION_FMT).date()
    except (TypeError, ValueError):
        raise CalendarError(f"partition key {key!r} is not a YYYY-MM-DD date") from None
    if not is_trading_day(day):
        raise CalendarError(f"partition key {key!r} is not a trading day")
    return day

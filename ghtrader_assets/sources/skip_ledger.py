"""A ledger of days a source skipped on purpose, and the error that reports such a skip.

A day can be absent from the tick store for two very different reasons: something went
wrong (it should be retried) or there is nothing to store (the main symbol was not listed
yet, the provider's calendar has no such trading day, a five-level exchange delivered no
row with depth). Sources report the second kind by raising :class:`DaySkippedError` with a
reason code; the asset layer records it here, so coverage reports can say "skipped: not
listed" instead of "missing", and a later successful run can :meth:`SkipLedger.clear` it.

Rows live in the store's :data:`~ghtrader_assets.schema.SKIP_LEDGER` table, one partition
per (symbol, trading day), one row per reason. Recording the same reason again bumps
``attempts`` and ``last_at``. A record is a read-modify-write of one small partition; Dagster
runs at most one step per symbol-day partition at a time, which is what makes that safe.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from ghtrader_assets.calendar import day_start_utc
from ghtrader_assets.schema import SKIP_LEDGER, conform
from ghtrader_assets.sources.base import NoDataError
from ghtrader_assets.sources.retry import Clock, system_clock
from ghtrader_assets.stores.base import TickStore, read_for_replace
from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_main_symbol

logger = logging.getLogger(__name__)

_REASON_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class SkipReason(StrEnum):
    """Reason codes sources use; the ledger accepts any ``snake_case`` code."""

    #: The main symbol had no underlying contract on that day (listed later).
    NOT_LISTED = "not_listed"
    #: The provider's calendar has no such trading day (or ours and theirs disagree).
    NOT_A_TRADING_DAY = "not_a_trading_day"
    #: A five-level exchange delivered ticks, but none carried book levels 2-5.
    NO_L5 = "no_l5"
    #: No session windows could be determined for the product on that day.
    NO_SESSIONS = "no_sessions"
    #: The provider stayed unavailable past the retry limits (recorded by the asset layer).
    SOURCE_UNAVAILABLE = "source_unavailable"

    def __str__(self) -> str:
        return self.value


class DaySkippedError(NoDataError):
    """The source skipped ``symbol`` on ``trading_day`` for ``reason``; not a failure to retry.

    A :class:`~ghtrader_assets.sources.base.NoDataError`, so code that already treats "no data
    for this day" specially keeps working; ``reason`` says why, for the ledger.
    """

    def __init__(
        self, symbol: MainSymbol | str, trading_day: dt.date, reason: SkipReason | str, detail: str
    ) -> None:
        self.symbol = symbol.raw if isinstance(symbol, MainSymbol) else str(symbol)
        self.trading_day = trading_day
        self.reason = _reason_code(reason)
        self.detail = detail
        super().__init__(
            f"{self.symbol} {trading_day.isoformat()} skipped ({self.reason}): {detail}"
        )


@dataclass(frozen=True)
class SkipRecord:
    """One ledger row."""

    symbol: str
    trading_day: str
    reason: str
    message: str
    source: str
    attempts: int
    first_at: pd.Timestamp
    last_at: pd.Timestamp


def _reason_code(reason: SkipReason | str) -> str:
    code = reason.value if isinstance(reason, SkipReason) else str(reason)
    if not _REASON_RE.match(code):
        raise ValueError(
            f"skip reason {code!r} is not a snake_case code (lowercase letters, digits and _, "
            "starting with a letter, at most 64 characters)"
        )
    return code


def _symbol_raw(symbol: MainSymbol | str) -> str:
    if isinstance(symbol, MainSymbol):
        return symbol.raw
    try:
        return parse_main_symbol(symbol).raw
    except SymbolError as exc:
        raise ValueError(f"skip ledger: {exc}") from None


def _day_iso(day: dt.date | str) -> str:
    if isinstance(day, dt.datetime):
        raise ValueError(f"skip ledger: trading_day must be a date, got the datetime {day!r}")
    if isinstance(day, dt.date):
        return day.isoformat()
    try:
        return dt.date.fromisoformat(str(day).strip()).isoformat()
    except ValueError:
        raise ValueError(f"skip ledger: trading_day {day!r} is not an ISO date") from None


class SkipLedger:
    """Records, lists and clears skipped days in a :class:`TickStore`."""

    def __init__(self, store: TickStore, clock: Clock = system_clock) -> None:
        self.store = store
        self._clock = clock

    def record(
        self,
        symbol: MainSymbol | str,
        trading_day: dt.date | str,
        reason: SkipReason | str,
        message: str,
        *,
        source: str,
    ) -> SkipRecord:
        """Record (or bump) that ``symbol`` skipped ``trading_day`` for ``reason``."""
        sym, day, code = _symbol_raw(symbol), _day_iso(trading_day), _reason_code(reason)
        if not source:
            raise ValueError("skip ledger: source must name the source that skipped the day")
        now = pd.Timestamp(self._clock()).tz_convert("UTC")
        existing = read_for_replace(self.store, SKIP_LEDGER, sym, day)
        same = existing["reason"].astype(str) == code
        if same.any():
            prior = existing.loc[same].iloc[0]
            attempts, first_at = int(prior["attempts"]) + 1, pd.Timestamp(prior["first_at"])
        else:
            attempts, first_at = 1, now
        row = pd.DataFrame(
            {
                "symbol": [sym],
                "trading_day": [day],
                "ts": [day_start_utc(day)],
                "source": [source],
                "reason": [code],
                "message": [message],
                "attempts": [attempts],
                "first_at": [first_at],
                "last_at": [now],
            }
        )
        kept = existing.loc[~same]
        frames = [conform(f, SKIP_LEDGER) for f in (kept, row) if len(f)]
        self.store.write_partition(SKIP_LEDGER, sym, day, pd.concat(frames, ignore_index=True))
        logger.info(
            "skip ledger: %s %s skipped (%s, attempt %d): %s", sym, day, code, attempts, message
        )
        return SkipRecord(sym, day, code, message, source, attempts, first_at, now)

    def record_error(self, error: DaySkippedError, *, source: str) -> SkipRecord:
        """Record the skip a source reported by raising :class:`DaySkippedError`."""
        return self.record(
            error.symbol, error.trading_day, error.reason, error.detail, source=source
        )

    def clear(
        self,
        symbol: MainSymbol | str,
        trading_day: dt.date | str,
        reason: SkipReason | str | None = None,
    ) -> int:
        """Remove the day's records (only ``reason``'s if given), e.g. after a successful
        re-run; returns how many rows were removed."""
        sym, day = _symbol_raw(symbol), _day_iso(trading_day)
        existing = read_for_replace(self.store, SKIP_LEDGER, sym, day)
        if existing.empty:
            return 0
        drop = (
            existing["reason"].astype(str) == _reason_code(reason)
            if reason is not None
            else pd.Series(True, index=existing.index)
        )
        if not drop.any():
            return 0
        self.store.write_partition(
            SKIP_LEDGER, sym, day, existing.loc[~drop].reset_index(drop=True)
        )
        return int(drop.sum())

    def entries(
        self,
        symbols: Sequence[MainSymbol | str] | None = None,
        start_day: dt.date | str | None = None,
        end_day: dt.date | str | None = None,
    ) -> pd.DataFrame:
        """Ledger rows for ``symbols`` between the inclusive day bounds, sorted by symbol and day."""
        df = self.store.read_table(
            SKIP_LEDGER,
            symbols=[_symbol_raw(s) for s in symbols] if symbols is not None else None,
            start_day=_day_iso(start_day) if start_day is not None else None,
            end_day=_day_iso(end_day) if end_day is not None else None,
        )
        return df.sort_values(["symbol", "trading_day", "reason"], kind="stable").reset_index(
            drop=True
        )

    def skipped_days(self, symbol: MainSymbol | str) -> list[str]:
        """Sorted trading days (ISO) with at least one skip record for ``symbol``."""
        df = self.entries([symbol])
        return sorted(set(df["trading_day"].astype(str)))

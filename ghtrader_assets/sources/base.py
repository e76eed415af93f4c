"""The source interface every tick provider implements.

A source answers two questions for one main symbol and one trading day: which real contract
was main (the roll schedule) and what ticks that contract printed during the day's sessions.
Frames come back already conformed to :data:`ghtrader_assets.schema.TICKS` (columns, order,
dtypes; ``symbol`` is the main symbol, ``trading_day`` the ISO date, ``source`` the source's
name), so downstream code never sees provider-specific layouts.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd

from ghtrader_assets.symbols import MainSymbol


class SourceError(RuntimeError):
    """Base class for every error a source raises on purpose."""


class UnknownSymbolError(SourceError):
    """The source does not know this symbol or contract."""


class MalformedInputError(SourceError):
    """Input data is malformed; the message names the file, line and column where known."""


class SourceUnavailableError(SourceError):
    """The provider cannot be reached or refuses service (network, maintenance, auth)."""


class NoDataError(SourceError):
    """The provider has no data for this symbol-day (e.g. no file for the day)."""


@dataclass(frozen=True)
class RollEntry:
    """Which underlying contract is main for ``symbol`` on ``trading_day``."""

    symbol: MainSymbol
    trading_day: dt.date
    underlying: str
    source: str


class TickSource(ABC):
    """One provider of roll schedules and ticks. Implementations must be picklable-free:
    they are created inside the step process that uses them (TqApi is not thread-safe)."""

    #: Label stored with every row and manifest: ``simulated``, ``csv`` or ``tqsdk``.
    name: str

    @abstractmethod
    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        """The underlying contract that is main for ``symbol`` on ``trading_day``."""

    @abstractmethod
    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        """Ticks of ``entry.underlying`` during ``entry.trading_day``'s sessions, conformed
        to the TICKS schema and sorted by (ts, id). An empty frame means the provider had no
        ticks; raise :class:`NoDataError` only when the day itself is unavailable."""

    def left_out(self, entry: RollEntry) -> pd.DataFrame | None:
        """Rows the last :meth:`ticks` call for ``entry`` read but left out on purpose (e.g.
        misdated rows of a one-day file), with where they came from and why; validation
        reports them. ``None`` when nothing was left out."""
        return None

    def close(self) -> None:
        """Release connections. Sources are context managers so every path closes them."""
        return None

    def __enter__(self) -> TickSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

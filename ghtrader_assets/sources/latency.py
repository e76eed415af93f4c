"""A source wrapper that adds a fixed delay per download, to stand in for TqSdk.

TqSdk takes 5-30 s per symbol-day; benchmarks of parallel backfills need that shape
without an account. Everything else is delegated unchanged (the rows stay labelled with
the inner source's name, e.g. ``simulated``).
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd

from ghtrader_assets.sources.base import RollEntry, TickSource
from ghtrader_assets.symbols import MainSymbol


class LatencySource(TickSource):
    """Delegates to ``inner`` and sleeps ``seconds`` before each day's ticks."""

    def __init__(self, inner: TickSource, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds}")
        self.inner = inner
        self.seconds = seconds
        self.name = inner.name

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        return self.inner.roll_entry(symbol, trading_day)

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        time.sleep(self.seconds)
        return self.inner.ticks(entry)

    def close(self) -> None:
        self.inner.close()

"""A source wrapper that adds TqSdk's download shape (delay and per-contract lock) to another.

TqSdk takes 5-30 s per symbol-day, and its ``DataSeries`` holds a file lock per contract in
its cache directory for the whole download (``data_series.py:79-80``), so two workers that
download the same contract from one cache directory run one after the other. Benchmarks of
parallel backfills need that shape without an account. Everything else is delegated
unchanged (the rows stay labelled with the inner source's name, e.g. ``simulated``).

``lock`` says which cache directories the modelled downloads share:

* ``"none"``: no lock, a plain delay (what the simulated benchmark measured before);
* ``"shared"``: tqsdk's default, one cache for every worker of the host
  (``~/.tqsdk/data_series_1``): downloads of one underlying are serialised across workers;
* ``"per_source"``: what :class:`~ghtrader_assets.sources.tqsdk.TqSdkSource` does, one
  private cache directory per source: nothing is shared, nothing waits.

The default comes from ``GHTRADER_SOURCE_LATENCY_LOCK`` (``none`` when unset), so
``bench/backfill.py`` can choose it for the worker processes it starts.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from filelock import FileLock

from ghtrader_assets.sources.base import RollEntry, TickSource
from ghtrader_assets.symbols import MainSymbol

LOCK_MODES = ("none", "shared", "per_source")
ENV_LOCK = "GHTRADER_SOURCE_LATENCY_LOCK"
ENV_LOCK_DIR = "GHTRADER_SOURCE_LATENCY_LOCK_DIR"


def lock_mode_from_env() -> str:
    """``GHTRADER_SOURCE_LATENCY_LOCK``, checked (an unknown value names the variable)."""
    mode = os.environ.get(ENV_LOCK, "").strip().lower() or "none"
    if mode not in LOCK_MODES:
        raise ValueError(f"{ENV_LOCK}={mode!r}: expected one of {', '.join(LOCK_MODES)}")
    return mode


class LatencySource(TickSource):
    """Delegates to ``inner`` and takes ``seconds`` per day's download, under the lock
    tqsdk would hold for that download's contract (see the module docstring)."""

    def __init__(
        self,
        inner: TickSource,
        seconds: float,
        lock: str | None = None,
        lock_dir: Path | None = None,
    ) -> None:
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds}")
        self.inner = inner
        self.seconds = seconds
        self.name = inner.name
        self.lock = lock_mode_from_env() if lock is None else lock
        if self.lock not in LOCK_MODES:
            raise ValueError(f"lock={self.lock!r}: expected one of {', '.join(LOCK_MODES)}")
        shared = lock_dir or Path(
            os.environ.get(ENV_LOCK_DIR) or Path(tempfile.gettempdir()) / "ghtrader-tqsdk-locks"
        )
        self.lock_dir = (
            Path(tempfile.mkdtemp(prefix="ghtrader-tqsdk-own-"))
            if self.lock == "per_source"
            else shared
        )
        #: (underlying, asked, got, released) wall times of each modelled download.
        self.downloads: list[tuple[str, float, float, float]] = []

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        return self.inner.roll_entry(symbol, trading_day)

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        asked = time.time()
        if self.lock == "none":
            time.sleep(self.seconds)
            got = asked
        else:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.lock_dir / f".{entry.underlying}.0.lock"), timeout=-1):
                got = time.time()
                time.sleep(self.seconds)
        self.downloads.append((entry.underlying, asked, got, time.time()))
        return self.inner.ticks(entry)

    def close(self) -> None:
        if self.lock == "per_source":
            import shutil

            shutil.rmtree(self.lock_dir, ignore_errors=True)
        self.inner.close()

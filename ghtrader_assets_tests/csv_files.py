"""DataDownloader CSV files for the CSV source's tests: a simulated day written in the
source's layout, and the check that an error names file, line and column.

The fixtures built on these (``cu_day``, ``small_csv``) are in ``conftest.py``; the tests of
the format (``test_source_csv.py``) and of hostile input (``test_csv_robustness.py``) share
them, so both corrupt the very same file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ghtrader_assets.sources.base import RollEntry
from ghtrader_assets.sources.csv import CsvSource, write_downloader_csv, write_roll_schedule
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol, parse_main_symbol

CU = parse_main_symbol("KQ.m@SHFE.cu")
DAY = dt.date(2026, 1, 7)
NEXT = dt.date(2026, 1, 8)
SMALL_ROWS = 30


def simulated_day(symbol: MainSymbol = CU, day: dt.date = DAY) -> tuple[RollEntry, pd.DataFrame]:
    """The simulated source's roll entry and ticks of one symbol-day (seed 3)."""
    src = SimulatedSource(seed=3)
    entry = src.roll_entry(symbol, day)
    return entry, src.ticks(entry)


def write_day_file(root: Path, entry: RollEntry, frame: pd.DataFrame) -> Path:
    """``frame`` as ``root/<contract>/<day>.csv`` and ``entry`` as the roll schedule: what
    a :class:`CsvSource` on ``root`` reads for ``entry``'s day. Returns the tick file."""
    path = root / entry.underlying / f"{entry.trading_day.isoformat()}.csv"
    write_downloader_csv(frame, path)
    write_roll_schedule([entry], root)
    return path


def small_csv_day(
    root: Path, entry: RollEntry, frame: pd.DataFrame
) -> tuple[CsvSource, RollEntry, Path]:
    """The first 30 ticks of ``frame`` written under ``root``; tests then corrupt the file.
    Returns the source, the entry it reads (source ``csv``) and the tick file."""
    path = write_day_file(root, entry, frame.iloc[:SMALL_ROWS])
    read_as = RollEntry(entry.symbol, entry.trading_day, entry.underlying, "csv")
    return CsvSource(root), read_as, path


def assert_names(err: pytest.ExceptionInfo, path: Path, line: int, column: str | None) -> None:
    """The error names the file, the (physical, 1-based) line and, when given, the column."""
    text = str(err.value)
    assert str(path) in text and f"line {line}" in text, text
    if column is not None:
        assert f"column {column!r}" in text, text

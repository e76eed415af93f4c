"""``ghtrader import DIR``: ingest a folder of TqSdk ``DataDownloader`` files through Dagster.

Why: users who downloaded ticks with ``DataDownloader`` have folders of CSV files (often
``.csv.gz``, one per contract and day or one per contract over many days) named however
they liked. The import finds out from the files themselves what they hold, then runs the
same partitions, checks, pool and progress output as ``ghtrader demo``:

1. **Scan** every ``.csv``/``.csv.gz`` under DIR (links followed, hidden files skipped). The
   header names the contract; a date in the file name (``..._20170414_...``,
   ``2026-01-05.csv``) makes it that trading day's file, otherwise the file is a many-day
   file split by trading day (18:00 local starts the next one). Every file is read and
   checked completely here, so a bad file is reported with file, line and column and
   **nothing is run**: the store is untouched until every file reads.
2. **Roll schedule**: DIR's own ``roll_schedule.csv`` (or ``--roll-schedule FILE``) when
   given; otherwise derived: per product and trading day, the contract with the largest
   open interest at the day's last tick is main (ties: volume, then the contract name),
   which is how exchanges and TqSdk's ``KQ.m@`` pick the main contract.
3. **Stage** a csv-source root under ``$GHTRADER_DATA_DIR/imports/<id>/``: the roll
   schedule plus a link to DIR (the files are not copied; DIR may be read-only).
4. **Materialize** through :mod:`ghtrader_assets.backfill` with ``GHTRADER_SOURCE=csv``,
   ``GHTRADER_CSV_DIR`` = the staged root, ``GHTRADER_UNIVERSE`` = the symbols found and
   ``GHTRADER_START_DATE`` no later than the first day found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ghtrader_assets.backfill import BackfillError, BackfillPlan, run_plan
from ghtrader_assets.calendar import trading_days_of
from ghtrader_assets.config import Settings
from ghtrader_assets.sources.base import MalformedInputError, RollEntry, SourceError
from ghtrader_assets.sources.csv import (
    MAX_MISDATED_SHARE,
    ROLL_FILE,
    day_in_name,
    header_contract,
    is_tick_header,
    read_downloader_csv,
    read_header,
    read_roll_schedule,
    tick_paths,
    write_roll_schedule,
)
from ghtrader_assets.symbols import parse_contract, parse_main_symbol


class FolderImportError(BackfillError):
    """The folder cannot be imported (no tick files, bad files, unknown products)."""


@dataclass(frozen=True)
class DayFacts:
    """What one contract printed on one trading day, as the scan read it."""

    contract: str
    trading_day: str
    rows: int
    open_interest: float
    volume: float
    path: Path


def scan_file(path: Path) -> list[DayFacts] | None:
    """The contract-days of one tick file (``None``: not a tick file, e.g. klines); raises
    :class:`MalformedInputError` naming file, line and column (the same checks the csv
    source applies when the day is ingested)."""
    header = read_header(path)
    if not is_tick_header(header):
        return None
    contract = header_contract(path, header)
    raw = read_downloader_csv(path, contract)
    if raw.empty:
        return []
    nanos = raw["datetime_nano"].to_numpy(dtype=np.int64)
    days = trading_days_of(pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC"))
    named = day_in_name(path)
    if named is not None:
        other = days != named.isoformat()
        if other.sum() > MAX_MISDATED_SHARE * len(days):
            first = int(np.flatnonzero(other)[0])
            raise MalformedInputError(
                f"{path}, line {int(raw.index[first])}, column 'datetime_nano': the name says "
                f"{named} but {int(other.sum())} of {len(days)} rows belong to other trading "
                f"days (first: {raw['datetime'].iloc[first]} of {days[first]})"
            )
        keep = ~other
        raw, days = raw[keep], days[keep]
    frame = raw.assign(_day=days).sort_values("datetime_nano", kind="stable")
    facts = []
    for day, part in frame.groupby("_day", sort=True):
        last = part.iloc[-1]
        facts.append(
            DayFacts(
                contract,
                str(day),
                len(part),
                float(last[f"{contract}.open_interest"]),
                float(last[f"{contract}.volume"]),
                path,
            )
        )
    return facts


def scan(root: Path) -> tuple[list[DayFacts], list[str], list[Path]]:
    """Facts of every tick file under ``root``, the errors of the files that fail, and the
    CSV files skipped because they are not tick files."""
    facts: list[DayFacts] = []
    errors: list[str] = []
    skipped: list[Path] = []
    for path in tick_paths(root):
        try:
            found = scan_file(path)
        except SourceError as exc:
            errors.append(str(exc))
            continue
        if found is None:
            skipped.append(path)
        else:
            facts.extend(found)
    return facts, errors, skipped


def derive_roll(facts: list[DayFacts]) -> list[RollEntry]:
    """Main contract per product and trading day: largest open interest at the day's last
    tick, then volume, then contract name."""
    best: dict[tuple[str, str, str], DayFacts] = {}
    for f in facts:
        c = parse_contract(f.contract)
        key = (c.exchange, c.product, f.trading_day)
        rank = (np.nan_to_num(f.open_interest), np.nan_to_num(f.volume), f.contract)
        held = best.get(key)
        if held is None or rank > (
            np.nan_to_num(held.open_interest),
            np.nan_to_num(held.volume),
            held.contract,
        ):
            best[key] = f
    entries = []
    for (exchange, product, day), f in sorted(best.items()):
        symbol = parse_main_symbol(f"KQ.m@{exchange}.{product}")
        entries.append(RollEntry(symbol, dt.date.fromisoformat(day), f.contract, "csv"))
    return entries


def given_roll(path: Path) -> list[RollEntry]:
    """Entries of a user's roll schedule file (checked like the csv source checks it)."""
    return read_roll_schedule(path)


def stage(root: Path, entries: list[RollEntry], data_dir: Path) -> Path:
    """A csv-source root for this import: the roll schedule and a link to ``root``."""
    ident = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    staged = data_dir / "imports" / f"{root.resolve().name}-{ident}"
    staged.mkdir(parents=True, exist_ok=True)
    link = staged / "files"
    if link.is_symlink() or link.exists():
        if link.is_symlink():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(root.resolve(), target_is_directory=True)
    write_roll_schedule(entries, staged)
    return staged


def import_folder(
    root: Path,
    workers: int,
    *,
    roll_schedule: Path | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Scan, stage and materialize ``root``; returns the exit code (see module doc)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FolderImportError(f"{root}: not a folder")
    out(f"ghtrader import: scanning {root}")
    facts, errors, skipped = scan(root)
    for path in skipped:
        out(
            f"  skipped (not a DataDownloader tick file: header is not datetime,datetime_nano,...): {path}"
        )
    if errors:
        for message in errors:
            out(f"  bad file: {message}")
        raise FolderImportError(
            f"{len(errors)} file(s) under {root} cannot be read (listed above); nothing was "
            "imported and the store is unchanged"
        )
    if not facts:
        raise FolderImportError(f"{root}: no DataDownloader tick files (.csv, .csv.gz) with ticks")
    contracts = sorted({f.contract for f in facts})
    days = sorted({f.trading_day for f in facts})
    out(
        f"  {len(tick_paths(root)) - len(skipped)} tick files: {len(contracts)} contracts "
        f"({', '.join(contracts[:8])}{' ...' if len(contracts) > 8 else ''}), "
        f"{len(days)} trading days {days[0]}..{days[-1]}, {sum(f.rows for f in facts):,} rows"
    )
    own = root / ROLL_FILE
    if roll_schedule is None and own.is_file():
        roll_schedule = own
    if roll_schedule is not None:
        try:
            entries = given_roll(Path(roll_schedule))
        except SourceError as exc:
            raise FolderImportError(f"roll schedule: {exc}") from None
        out(f"  roll schedule: {roll_schedule} ({len(entries)} symbol-days)")
    else:
        entries = derive_roll(facts)
        out(
            f"  roll schedule: derived (largest open interest per product and day), {len(entries)} symbol-days"
        )
    held = {(f.contract, f.trading_day) for f in facts}
    missing = [e for e in entries if (e.underlying, e.trading_day.isoformat()) not in held]
    if missing:
        e = missing[0]
        raise FolderImportError(
            f"the roll schedule names {e.underlying} for {e.symbol.raw} on {e.trading_day}, but "
            f"no file under {root} holds it ({len(missing)} such symbol-days)"
        )
    settings = Settings.from_env()
    staged = stage(root, entries, settings.data_dir)
    symbols = sorted({e.symbol.raw for e in entries})
    os.environ.update(
        GHTRADER_SOURCE="csv",
        GHTRADER_CSV_DIR=str(staged),
        GHTRADER_UNIVERSE=",".join(symbols),
    )
    if days[0] < settings.start_date:
        os.environ["GHTRADER_START_DATE"] = days[0]
    settings = Settings.from_env()  # checks the products of the symbols found
    plan_days: dict[str, list[str]] = {}
    for e in entries:
        plan_days.setdefault(e.trading_day.isoformat(), []).append(e.symbol.raw)
    plan = BackfillPlan({d: tuple(sorted(s)) for d, s in sorted(plan_days.items())})
    out(f"  staged as a csv source: {staged}")
    out(f"  symbols: {', '.join(symbols)}")
    return run_plan(settings, plan, workers, out)

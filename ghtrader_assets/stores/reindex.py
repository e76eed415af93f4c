"""Checking the catalog against the files, and rebuilding it from them (``ghtrader reindex``).

The files are the truth; the catalog is an index of them that writes keep current. Three
passes compare the two, from cheap to thorough:

* :func:`settle` (every catalog read): partitions whose writer died between renaming the
  file into place and committing the catalog row (an intent is left) are re-read from the
  file once their partition lock is free. Costs one indexed query when nothing is pending.
* :func:`verify` with ``full=False``: ``stat`` every catalogued file; a missing file is
  dropped from the catalog, a file whose size or mtime differs from the catalog (or that is
  marked corrupt, so a transient read error heals) is read in full and re-catalogued (or
  marked corrupt).
* :func:`verify` with ``full=True`` and :func:`rebuild`: read every file in full, compare
  its checksum with the recorded one and decode it with Parquet page-checksum verification,
  so a file with garbage in the middle is found even when its size and mtime were kept.

How a file read in full is judged (:func:`scan_file`): it must decode (footer, every page,
page CRCs that this store writes). A file that decodes but whose checksum differs from the
catalog's was replaced outside the store: if it carries this store's page checksums its
pages proved intact and it is accepted as the new truth; otherwise nothing proves it intact
and it is marked corrupt. Corrupt partitions stay in the catalog (coverage, status and the
coverage report show them) until a write replaces them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock
from filelock import Timeout as LockTimeout

from ghtrader_assets.stores.catalog import CORRUPT, OK, Catalog, Entry
from ghtrader_assets.stores.facts import Facts, facts_of

PART_FILE = "part.parquet"
#: Schema metadata key this store writes: the file's pages carry CRCs.
PAGE_CRC_KEY = b"ghtrader.page_crc"


def checksum(data: bytes | memoryview | pa.Buffer) -> str:
    """Content checksum of a whole file (BLAKE2b, 128 bits: fast, stdlib)."""
    return hashlib.blake2b(memoryview(data), digest_size=16).hexdigest()


def symbol_of_dir(value: str) -> str:
    """The stored symbol of a ``symbol=`` directory value (``SHFE_cu`` -> ``KQ.m@SHFE.cu``)."""
    if "_" in value:
        exchange, product = value.split("_", 1)
        return f"KQ.m@{exchange}.{product}"
    return value


@dataclass(frozen=True)
class Location:
    """One partition file: which table, symbol and day it holds and where it is."""

    table: str
    symbol: str
    day: str
    path: Path


def scan_file(
    loc: Location, ts_column: str, *, recorded: Entry | None = None
) -> tuple[Entry | None, str]:
    """Read ``loc`` in full and describe it: ``(entry, note)``; ``entry`` is ``None`` when
    the file does not exist. ``note`` says what was found ("" when the file matches
    ``recorded``)."""
    try:
        with open(loc.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return _corrupt(loc, 0, 0, "", f"unreadable: {exc}"), f"unreadable: {exc}"
    digest = checksum(data)
    try:
        table = pq.read_table(
            pa.BufferReader(data), partitioning=None, page_checksum_verification=True
        )
    except (OSError, pa.ArrowException, ValueError) as exc:
        problem = f"cannot be decoded: {exc}"
        return _corrupt(loc, len(data), st.st_mtime_ns, digest, problem), problem
    note = ""
    if recorded is not None and recorded.checksum and recorded.checksum != digest:
        meta = table.schema.metadata or {}
        if meta.get(PAGE_CRC_KEY) != b"1":
            problem = "contents differ from the checksum recorded when it was written"
            return _corrupt(loc, len(data), st.st_mtime_ns, digest, problem), problem
        note = "replaced outside the store (page checksums verified): accepted"
    facts = facts_of(loc.table, table, ts_column)
    entry = file_entry(loc.table, loc.symbol, loc.day, len(data), st.st_mtime_ns, digest, facts)
    return entry, note


def _corrupt(loc: Location, size: int, mtime_ns: int, digest: str, problem: str) -> Entry:
    return Entry(
        table=loc.table,
        symbol=loc.symbol,
        day=loc.day,
        rows=0,
        bytes=size,
        mtime_ns=mtime_ns,
        checksum=digest,
        state=CORRUPT,
        problem=problem[:500],
        written_at=time.time(),
    )


@dataclass
class VerifyReport:
    """What a verify or rebuild pass found."""

    checked: int = 0
    read_in_full: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.checked} partitions checked ({self.read_in_full} read in full) in "
            f"{self.seconds:.2f} s: {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.repaired)} repaired, {len(self.corrupt)} corrupt"
        )


def _name(loc: Location | Entry) -> str:
    return f"{loc.table} {loc.symbol} {loc.day}"


# --------------------------------------------------------------------------- passes


LocateFn = Callable[[str, str, str], Path]
TsColumnFn = Callable[[str], str]
LockFn = Callable[[str, str, str], Path]


def settle(catalog: Catalog, locate: LocateFn, ts_column: TsColumnFn, lock_of: LockFn) -> int:
    """Resolve intents left by writers that died mid-write; returns how many were resolved.

    An intent whose partition lock is held belongs to a live writer and is left alone."""
    resolved = 0
    for table, symbol, day, _pid, _started in catalog.intents():
        try:
            lock = FileLock(lock_of(table, symbol, day), timeout=0)
            lock.acquire()
        except LockTimeout:
            continue
        try:
            loc = Location(table, symbol, day, locate(table, symbol, day))
            entry, _ = scan_file(loc, ts_column(table), recorded=None)
            with catalog.transaction() as con:
                if entry is None:
                    catalog.forget(con, table, symbol, day)
                else:
                    catalog.record_in(con, [entry])
            resolved += 1
        finally:
            lock.release()
    return resolved


def walk(root: Path, tables: Sequence[str] | None = None) -> list[Location]:
    """Every committed partition file under ``root`` (temp files and empty directories
    never count)."""
    out: list[Location] = []
    names = sorted(os.listdir(root)) if tables is None else list(tables)
    for table in names:
        table_dir = root / table
        if table.startswith((".", "_")) or not table_dir.is_dir():
            continue
        for sym_name in sorted(_listdir(table_dir)):
            if not sym_name.startswith("symbol="):
                continue
            symbol = symbol_of_dir(sym_name[len("symbol=") :])
            for day_name in sorted(_listdir(table_dir / sym_name)):
                if not day_name.startswith("trading_day="):
                    continue
                path = table_dir / sym_name / day_name / PART_FILE
                if path.is_file():
                    out.append(Location(table, symbol, day_name[len("trading_day=") :], path))
    return out


def verify(
    catalog: Catalog,
    locate: LocateFn,
    ts_column: TsColumnFn,
    *,
    tables: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    days: Sequence[str] | None = None,
    full: bool = False,
) -> VerifyReport:
    """Compare catalogued partitions with their files (see the module docstring)."""
    started = time.perf_counter()
    report = VerifyReport()
    fixes: list[Entry] = []
    gone: list[Entry] = []
    suspects: list[Entry] = []
    for table in tables if tables is not None else [None]:
        if full:
            suspects.extend(catalog.entries(table, symbols, days=days))
            report.checked = len(suspects)
            continue
        # The stat pass touches only five columns and builds each path from a prefix per
        # (table, symbol): it runs over every partition, so its constant matters.
        prefixes: dict[tuple[str, str], str] = {}
        for tbl, symbol, day, size, mtime_ns, state in catalog.stat_rows(table, symbols, days):
            report.checked += 1
            prefix = prefixes.get((tbl, symbol))
            if prefix is None:
                prefix = prefixes[(tbl, symbol)] = str(locate(tbl, symbol, day).parents[1])
            try:
                st = os.stat(f"{prefix}/trading_day={day}/{PART_FILE}")
            except FileNotFoundError:
                st = None
            unchanged = st is not None and (st.st_size, st.st_mtime_ns) == (size, mtime_ns)
            if unchanged and state == OK:  # known-bad ones are always re-read
                continue
            old = catalog.entry(tbl, symbol, day)
            if old is not None:
                suspects.append(old)
    for old in suspects:
        path = locate(old.table, old.symbol, old.day)
        report.read_in_full += 1
        loc = Location(old.table, old.symbol, old.day, path)
        entry, note = scan_file(loc, ts_column(old.table), recorded=old)
        if entry is None:
            gone.append(old)
        elif entry.state != OK:
            if old.state != entry.state or old.problem != entry.problem:
                fixes.append(entry)
            report.corrupt.append(f"{_name(entry)}: {entry.problem}")
        elif old.state != OK or note or (entry.checksum != old.checksum):
            fixes.append(entry)
            report.repaired.append(f"{_name(entry)}: {note or 'catalog refreshed'}")
        elif entry.mtime_ns != old.mtime_ns:
            fixes.append(entry)  # touched, same bytes: remember the new mtime
    if fixes or gone:
        with catalog.transaction() as con:
            catalog.record_in(con, fixes, clear_intents=False)
            for old in gone:
                catalog.forget(con, old.table, old.symbol, old.day)
                report.removed.append(f"{_name(old)}: file missing")
    report.seconds = time.perf_counter() - started
    return report


def rebuild(
    catalog: Catalog,
    root: Path,
    ts_column: TsColumnFn,
    *,
    tables: Sequence[str] | None = None,
) -> VerifyReport:
    """Rebuild the catalog from the files: every file read in full (checksum and page
    verification), judged against what the old catalog recorded; one transaction replaces
    the old rows, so readers see the old catalog or the new one."""
    started = time.perf_counter()
    report = VerifyReport()
    old = {(e.table, e.symbol, e.day): e for e in catalog.entries()}
    scanned: list[tuple[Location, Entry]] = []
    for loc in walk(root, tables):
        recorded = old.get((loc.table, loc.symbol, loc.day))
        entry, note = scan_file(loc, ts_column(loc.table), recorded=recorded)
        if entry is None:
            continue
        scanned.append((loc, entry))
        _classify(report, entry, recorded, note)
    report.checked = report.read_in_full = len(scanned)
    with catalog.transaction() as con:
        # Writers block in the catalog before they rename a file, so while this
        # transaction holds the write lock only a rename already under way can change a
        # file; those are re-read here.
        final: list[Entry] = []
        for loc, entry in scanned:
            try:
                st = os.stat(loc.path)
            except FileNotFoundError:
                continue
            if (st.st_size, st.st_mtime_ns) != (entry.bytes, entry.mtime_ns):
                fresh, _ = scan_file(loc, ts_column(loc.table), recorded=None)
                entry = fresh if fresh is not None else entry
            final.append(entry)
        keep = {(e.table, e.symbol, e.day) for e in final}
        in_scope = [k for k in old if tables is None or k[0] in tables]
        report.removed = [" ".join(k) + ": file missing" for k in in_scope if k not in keep]
        if tables is None:
            con.execute("DELETE FROM partitions")
            con.execute("DELETE FROM symbols")
        else:
            for table in tables:
                con.execute("DELETE FROM partitions WHERE tbl = ?", (table,))
                con.execute("DELETE FROM symbols WHERE tbl = ?", (table,))
        catalog.record_in(con, final, clear_intents=True)
        catalog.set_meta(con, "indexed_at", f"{time.time():.3f}")
    report.seconds = time.perf_counter() - started
    return report


def _classify(report: VerifyReport, entry: Entry, recorded: Entry | None, note: str) -> None:
    if entry.state != OK:
        report.corrupt.append(f"{_name(entry)}: {entry.problem}")
    elif recorded is None:
        report.added.append(_name(entry))
    elif note or recorded.state != OK or recorded.checksum != entry.checksum:
        report.repaired.append(f"{_name(entry)}: {note or 'catalog refreshed'}")


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def file_entry(
    table: str, symbol: str, day: str, size: int, mtime_ns: int, digest: str, facts: Facts
) -> Entry:
    """The catalog row of a partition file: its size, mtime and checksum, and the facts
    read from its rows. The writer and the rebuild both record exactly this."""
    return Entry(
        table=table,
        symbol=symbol,
        day=day,
        rows=facts.rows,
        bytes=size,
        mtime_ns=mtime_ns,
        checksum=digest,
        first_ts=facts.first_ts,
        last_ts=facts.last_ts,
        verdict=facts.verdict,
        checks_failed=facts.checks_failed,
        gap_count=facts.gap_count,
        gap_seconds=facts.gap_seconds,
        facts=facts.facts,
        written_at=time.time(),
    )

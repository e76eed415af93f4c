"""The embedded store (the default): a partitioned Parquet dataset on local disk, no server.

Layout (hive style, so DuckDB, pyarrow, polars and Spark read it as a dataset)::

    root/<table>/symbol=<SHFE_cu>/trading_day=<YYYY-MM-DD>/part.parquet
    root/<table>/_generation          # token rewritten after every write (see below)
    root/.locks/<table>/symbol=<..>/trading_day=<..>.lock   # per-partition write locks

``symbol=`` holds :attr:`MainSymbol.key` (``SHFE_cu``) for main symbols; any other symbol
must be a plain name (letters, digits, ``.`` and ``-``, no ``_``), used verbatim, so the two
kinds can never map to the same directory. Files keep the full ``symbol`` and ``trading_day``
columns, so a file is self-describing and :meth:`EmbeddedStore.read_partition` returns
exactly what was written. Every path component is checked against a strict pattern before
a path is built: nothing from a caller can escape ``root``.

Writes are atomic and safe across processes (Dagster runs each step in its own process):

1. the frame is conformed to the table's schema and every row's ``symbol``/``trading_day``
   must equal the partition's, else :class:`StoreError` and nothing on disk changes;
2. an exclusive :mod:`filelock` per partition serialises writers of the *same* partition
   (writers of different partitions never wait for each other);
3. the file is written under a unique temporary name (``.part.parquet.<pid>.<uuid>.tmp``,
   ignored by every reader) in the partition directory, fsynced, then ``os.replace``-d over
   ``part.parquet`` and the directory fsynced. Readers see the old file or the new one,
   never half of one, and there is exactly one file per partition.

Every write also records the partition in the store's catalog (:mod:`.catalog`, a SQLite
file in the root) under the same partition lock: an intent before the rename, the
partition row, its symbol aggregate and the table's generation after it, so coverage,
latest, partitions, status and the coverage report read aggregates instead of opening
files, and a writer killed between rename and commit is repaired from the file by the next
reader. :meth:`EmbeddedStore.reindex` / :meth:`EmbeddedStore.verify` compare the catalog
with the files (:mod:`.reindex`); files written here carry page CRCs so a full read proves
them intact. Reads open each file once (footer and body from the same version), and an
unreadable file is marked corrupt in the catalog instead of failing every reader.

Coverage and latest-tick results are cached (:class:`CoverageCache`). A write in this
process clears the cache; the cache key includes the table's catalog generation, which
every write in any process bumps in its catalog transaction, so a cached answer is never
served after any process wrote. The TTL remains as a bound for changes made outside the
store (files copied or deleted by hand).

The store is meant for a local filesystem: ``flock`` and atomic rename are unreliable on
some network filesystems.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock
from filelock import Timeout as LockTimeout

from ghtrader_assets.schema import TICKS, TableSpec, all_tables, conform, empty_frame, schema_hash
from ghtrader_assets.stores import reindex
from ghtrader_assets.stores.base import (
    CATALOG_COLUMNS,
    CATALOG_SUMMARY_COLUMNS,
    COVERAGE_COLUMNS,
    DAMAGED_COLUMNS,
    CorruptPartitionError,
    StoreError,
    TickStore,
    WriteStats,
)
from ghtrader_assets.stores.cache import CoverageCache
from ghtrader_assets.stores.catalog import Catalog, CatalogError, Entry
from ghtrader_assets.stores.facts import facts_of
from ghtrader_assets.symbols import SymbolError, parse_main_symbol

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # imported by sql() only: read-only CLI commands skip its import time
    import duckdb

PART_FILE = reindex.PART_FILE
#: Per-partition lock files live outside the dataset so a partition directory holds exactly
#: one file; readers skip it (pyarrow ignores dot-prefixed names, views list tables only).
LOCK_DIR = ".locks"
_TMP_PREFIX = ".part.parquet."
_TMP_SUFFIX = ".tmp"

#: ~4 row groups per tick day (60k rows): fine-grained enough for row-group pruning and for
#: :meth:`EmbeddedStore.latest` to read one group, coarse enough to keep footers small.
#: With zstd, 16k-row groups also gave ~7% smaller files than one 60k group (measured).
ROW_GROUP_ROWS = 16_384
COMPRESSION = "zstd"

_TABLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PLAIN_SYMBOL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,63}$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- identifiers


def table_name(spec: TableSpec) -> str:
    """The table's directory name, checked: lower-case identifier only."""
    if not isinstance(spec, TableSpec):
        raise StoreError(f"expected a TableSpec, got {type(spec).__name__}")
    if not _TABLE_RE.match(spec.name):
        raise StoreError(f"table name {spec.name!r} is not a plain lower-case identifier")
    return spec.name


def symbol_dir_name(symbol: str) -> str:
    """The ``symbol=`` directory value for ``symbol``: the main-symbol key (``SHFE_cu``) or,
    for a plain name without ``_``, the name itself. Anything else raises :class:`StoreError`."""
    if not isinstance(symbol, str):
        raise StoreError(f"symbol must be a string, got {type(symbol).__name__}")
    if symbol.startswith("KQ."):
        try:
            main = parse_main_symbol(symbol)
        except SymbolError as exc:
            raise StoreError(str(exc)) from exc
        if main.raw != symbol:  # parse_main_symbol tolerates surrounding blanks; we do not
            raise StoreError(f"symbol {symbol!r} is not in canonical form {main.raw!r}")
        return main.key
    if _PLAIN_SYMBOL_RE.match(symbol):
        return symbol
    raise StoreError(
        f"symbol {symbol!r} is neither a main symbol (KQ.m@EXCHANGE.product) nor a plain "
        "name of letters, digits, '.' and '-'"
    )


def check_day(trading_day: str | dt.date) -> str:
    """``trading_day`` as a validated ISO ``YYYY-MM-DD`` string."""
    if isinstance(trading_day, dt.date) and not isinstance(trading_day, dt.datetime):
        return trading_day.isoformat()
    if isinstance(trading_day, str) and _DAY_RE.match(trading_day):
        try:
            dt.date.fromisoformat(trading_day)
        except ValueError:
            pass
        else:
            return trading_day
    raise StoreError(f"trading day {trading_day!r} is not a date in YYYY-MM-DD form")


# --------------------------------------------------------------------------- schema mapping


def _arrow_type(table: str, column: str, dtype_name: str) -> pa.DataType:
    dtype = pd.api.types.pandas_dtype(dtype_name)
    if isinstance(dtype, pd.StringDtype):
        return pa.large_string()  # pandas' Arrow-backed strings are large_string: no cast
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pa.timestamp(dtype.unit, tz=str(dtype.tz))
    if isinstance(dtype, pd.BooleanDtype):
        return pa.bool_()
    if isinstance(dtype, np.dtype) and dtype.kind in "biufM":
        return pa.from_numpy_dtype(dtype)
    raise StoreError(f"{table}.{column}: dtype {dtype_name!r} has no Parquet mapping")


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The exact Arrow schema of ``spec`` (column order, types, nullability), with the table
    name and :func:`schema_hash` in the metadata so a file says which layout wrote it."""
    name = table_name(spec)
    fields = [
        pa.field(col, _arrow_type(name, col, str(c.dtype)), nullable=bool(c.nullable))
        for col, c in spec.schema.columns.items()
    ]
    meta = {
        b"ghtrader.table": name.encode(),
        b"ghtrader.schema_hash": schema_hash(spec).encode(),
        reindex.PAGE_CRC_KEY: b"1",  # pages carry CRCs: a full read proves them intact
    }
    return pa.schema(fields, metadata=meta)


@dataclass(frozen=True)
class _Layout:
    """Per-spec derived facts, computed once: Arrow schema and the conformed pandas dtypes."""

    arrow: pa.Schema
    columns: tuple[str, ...]
    dtypes: tuple[object, ...]
    string_dtype: object | None


# Keyed by id(spec) with the spec kept alive alongside, so the id cannot be reused; specs
# are a handful of module constants. Saves re-deriving dtypes on every write/read.
_layouts: dict[int, tuple[TableSpec, _Layout]] = {}
_layouts_lock = threading.Lock()


def _layout(spec: TableSpec) -> _Layout:
    found = _layouts.get(id(spec))
    if found is not None and found[0] is spec:
        return found[1]
    empty = empty_frame(spec)
    strings = [d for d in empty.dtypes if isinstance(d, pd.StringDtype)]
    layout = _Layout(
        arrow=arrow_schema(spec),
        columns=tuple(empty.columns),
        dtypes=tuple(empty.dtypes),
        string_dtype=strings[0] if strings else None,
    )
    with _layouts_lock:
        _layouts[id(spec)] = (spec, layout)
    return layout


def _conform(df: pd.DataFrame, spec: TableSpec, where: str) -> pd.DataFrame:
    """``schema.conform`` with a fast path: a frame that already has the exact columns and
    dtypes (what sources deliver) is used as is instead of being copied column by column."""
    lay = _layout(spec)
    if tuple(df.columns) == lay.columns and tuple(df.dtypes) == lay.dtypes:
        if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
            return df
        return df.reset_index(drop=True)
    try:
        return conform(df, spec)
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"{where}: cannot conform to {spec.name}: {exc}") from exc


def _to_frame(table: pa.Table, spec: TableSpec, where: str) -> pd.DataFrame:
    lay = _layout(spec)
    mapping = {pa.large_string(): lay.string_dtype, pa.string(): lay.string_dtype}
    df = table.to_pandas(types_mapper=mapping.get if lay.string_dtype is not None else None)
    return _conform(df, spec, where)


# --------------------------------------------------------------------------- fs helpers


def _fsync_path(path: Path | str) -> None:
    """fsync a file or directory by path (directories make renames/creations durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stat_ts_bound(md: pq.FileMetaData, col: int, rg: int, upper: bool) -> int | None:
    """The raw (int64 ns) min or max of column ``col`` in row group ``rg`` from the footer."""
    stats = md.row_group(rg).column(col).statistics
    if stats is None or not stats.has_min_max:
        return None
    return int(stats.max_raw if upper else stats.min_raw)


# --------------------------------------------------------------------------- the store


class EmbeddedStore(TickStore):
    """Partitioned Parquet under ``root``; see the module docstring for layout and guarantees.

    ``cache_ttl_seconds`` bounds how long coverage/latest answers are reused (``None``: until
    the next write anywhere); ``cache=False`` disables caching. ``lock_timeout_seconds`` is
    how long a writer waits for another writer of the same partition before failing.
    """

    kind = "embedded"

    def __init__(
        self,
        root: Path | str,
        cache_ttl_seconds: float | None = 30.0,
        cache: bool = True,
        *,
        lock_timeout_seconds: float = 300.0,
    ) -> None:
        self.root = Path(root).absolute()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store root {self.root}: {exc}") from exc
        self.cache = CoverageCache(ttl_seconds=cache_ttl_seconds, enabled=cache)
        self.catalog = Catalog(self.root)
        self._catalog_ready = False
        self._specs: dict[str, TableSpec] = {t.name: t for t in all_tables()}
        self._lock_timeout = lock_timeout_seconds
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._duck_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # ----------------------------------------------------------------- paths

    def table_dir(self, spec: TableSpec) -> Path:
        return self.root / table_name(spec)

    def partition_path(self, spec: TableSpec, symbol: str, trading_day: str) -> Path:
        """The file of one partition (whether or not it exists), from validated parts only."""
        return self._path(table_name(spec), symbol, trading_day)

    def _path(self, table: str, symbol: str, trading_day: str) -> Path:
        if not _TABLE_RE.match(table):
            raise StoreError(f"table name {table!r} is not a plain lower-case identifier")
        return (
            self.root
            / table
            / f"symbol={symbol_dir_name(symbol)}"
            / f"trading_day={check_day(trading_day)}"
            / PART_FILE
        )

    def _lock_of(self, table: str, symbol: str, trading_day: str) -> Path:
        return self._lock_path(self._path(table, symbol, trading_day).parent)

    def _ts_column(self, table: str) -> str:
        spec = self._specs.get(table)
        return spec.timestamp if spec is not None else "ts"

    # ----------------------------------------------------------------- catalog

    def _ready(self) -> Catalog:
        """The catalog, built from the files first if this root predates it, and with
        intents of writers that died mid-write resolved."""
        try:
            if not self._catalog_ready:
                if self.catalog.get_meta("indexed_at") is None:
                    if any(_TABLE_RE.match(n) for n in os.listdir(self.root)):
                        self.reindex()  # a store written before the catalog existed
                    else:
                        with self.catalog.transaction() as con:
                            self.catalog.set_meta(con, "indexed_at", f"{time.time():.3f}")
                self._catalog_ready = True
            if reindex.settle(self.catalog, self._path, self._ts_column, self._lock_of):
                self.cache.invalidate()
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc
        return self.catalog

    def reindex(self, tables: Sequence[str] | None = None) -> reindex.VerifyReport:
        """Rebuild the catalog from the files (``ghtrader reindex``): every file is read in
        full, checksummed and decoded with page verification."""
        try:
            report = reindex.rebuild(self.catalog, self.root, self._ts_column, tables=tables)
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc
        self._catalog_ready = True
        self.cache.invalidate()
        return report

    def verify(
        self,
        symbols: Sequence[str] | None = None,
        *,
        days: Sequence[str] | None = None,
        full: bool = False,
        tables: Sequence[TableSpec] | None = None,
    ) -> reindex.VerifyReport:
        """Check catalogued partitions against their files: ``stat`` each (size, mtime) and
        read in full only those that changed, or with ``full=True`` read every one."""
        catalog = self._ready()
        syms = _unique(symbols) if symbols is not None else None
        names = [table_name(t) for t in tables] if tables is not None else None
        try:
            report = reindex.verify(
                catalog,
                self._path,
                self._ts_column,
                tables=names,
                symbols=syms,
                days=[check_day(d) for d in days] if days is not None else None,
                full=full,
            )
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc
        if report.read_in_full:
            self.cache.invalidate()
        return report

    def catalog_rows(
        self,
        spec: TableSpec,
        symbols: Sequence[str],
        *,
        start_day: str | None = None,
        end_day: str | None = None,
        days: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        entries = self._ready().entries(
            table_name(spec),
            _unique(symbols),
            check_day(start_day) if start_day is not None else None,
            check_day(end_day) if end_day is not None else None,
            days=[check_day(d) for d in days] if days is not None else None,
        )
        return _catalog_frame(entries)

    def catalog_summary(self, spec: TableSpec, symbols: Sequence[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        try:
            found = self._ready().summaries(table_name(spec), syms)
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc
        rows = [
            (s, *(getattr(found[s], c) for c in CATALOG_SUMMARY_COLUMNS[1:]))
            for s in syms
            if s in found
        ]
        return pd.DataFrame(rows, columns=list(CATALOG_SUMMARY_COLUMNS))

    def damaged(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        entries = self._ready().damaged(_unique(symbols) if symbols is not None else None)
        return pd.DataFrame(
            [(e.table, e.symbol, e.day, e.problem) for e in entries], columns=DAMAGED_COLUMNS
        )

    def _mark_corrupt(
        self, table: str, symbol: str, day: str, problem: str, read: FileIdentity | None
    ) -> str:
        """Flag the partition corrupt, but only if its path still names the file that
        failed (``read``, from the handle the reader used). Checked under the partition's
        lock, which a writer holds from renaming its new file into place until its catalog
        row is recorded: without it, a reader that opened the old file could overwrite the
        fresh row of a concurrent writer with "corrupt".

        Returns ``"marked"``; ``"replaced"`` when a writer replaced (or removed) the file
        since it was read, so the caller reads again; or ``"not marked: <why>"`` when the
        lock or the catalog could not be had, so the caller says so instead of claiming a
        mark and does not wait out the lock again."""
        path = self._path(table, symbol, day)
        try:
            with FileLock(self._lock_of(table, symbol, day), timeout=self._lock_timeout):
                try:
                    now = file_identity(os.stat(path))
                except FileNotFoundError:
                    return "replaced"
                if read is not None and now != read:
                    logger.info(
                        "%s %s %s: replaced since it was read; not marked corrupt",
                        table,
                        symbol,
                        day,
                    )
                    return "replaced"
                self.catalog.mark_corrupt(table, symbol, day, problem)
        except (CatalogError, LockTimeout, OSError) as exc:
            logger.warning("%s %s %s: could not be marked corrupt (%s)", table, symbol, day, exc)
            return f"not marked: {exc}"
        finally:
            self.cache.invalidate()
        return "marked"

    # ----------------------------------------------------------------- writes

    def write_partition(
        self, spec: TableSpec, symbol: str, trading_day: str, df: pd.DataFrame
    ) -> WriteStats:
        started = time.perf_counter()
        day = check_day(trading_day)
        path = self.partition_path(spec, symbol, day)
        where = f"{spec.name} partition {symbol}/{day}"
        if not isinstance(df, pd.DataFrame):
            raise StoreError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")

        frame = _conform(df, spec, where)
        _check_partition_values(frame, symbol, day, where)
        try:
            table = pa.Table.from_pandas(frame, schema=_layout(spec).arrow, preserve_index=False)
            data = _serialize(table)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise StoreError(f"{where}: rows do not fit the schema: {exc}") from exc
        self._specs.setdefault(spec.name, spec)
        facts = facts_of(spec.name, table, spec.timestamp)
        catalog = self._ready()

        part_dir = path.parent
        try:
            self._make_dirs(part_dir)
            lock_path = self._lock_path(part_dir)
        except OSError as exc:
            raise StoreError(f"{where}: cannot create {part_dir}, nothing written: {exc}") from exc
        try:
            with FileLock(lock_path, timeout=self._lock_timeout):
                _remove_stale_temps(part_dir)  # only a crashed writer can leave these
                tmp = self._write_temp(data, part_dir, where)
                try:
                    catalog.begin_intent(spec.name, symbol, day)
                except CatalogError as exc:
                    tmp.unlink(missing_ok=True)
                    raise StoreError(f"{where}: old partition kept: {exc}") from exc
                self._commit_file(tmp, path, where)
                st = path.stat()
                entry = reindex.file_entry(
                    spec.name,
                    symbol,
                    day,
                    st.st_size,
                    st.st_mtime_ns,
                    reindex.checksum(data),
                    facts,
                )
                try:
                    catalog.record([entry])
                except CatalogError as exc:  # the intent stays: the next reader repairs it
                    raise StoreError(
                        f"{where}: file written but the catalog was not updated ({exc}); it "
                        "is re-read from the file by the next catalog reader"
                    ) from exc
        except LockTimeout as exc:
            raise StoreError(
                f"{where}: another writer held the partition lock for over "
                f"{self._lock_timeout:g} s; nothing was written"
            ) from exc
        finally:
            self.cache.invalidate()
        return WriteStats(
            table=spec.name,
            symbol=symbol,
            trading_day=day,
            rows=table.num_rows,
            bytes=len(data),
            seconds=time.perf_counter() - started,
            location=str(path),
        )

    def _lock_path(self, part_dir: Path) -> Path:
        rel = part_dir.relative_to(self.root)  # <table>/symbol=<key>/trading_day=<day>
        lock_dir = self.root / LOCK_DIR / rel.parent
        lock_dir.mkdir(parents=True, exist_ok=True)
        return lock_dir / f"{rel.name}.lock"

    def _make_dirs(self, part_dir: Path) -> None:
        if part_dir.is_dir():
            return
        missing = [p for p in (part_dir, *part_dir.parents) if not p.exists()]
        part_dir.mkdir(parents=True, exist_ok=True)
        for created in missing:  # make the new directory entries durable
            _fsync_path(created.parent)

    def _write_temp(self, data: pa.Buffer, part_dir: Path, where: str) -> Path:
        """The serialized file under a unique temporary name, fsynced."""
        tmp = part_dir / f"{_TMP_PREFIX}{os.getpid()}.{uuid.uuid4().hex}{_TMP_SUFFIX}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(memoryview(data))
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            # If this fails too, the next writer of the partition removes it under the lock.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StoreError(f"{where}: write failed, old partition kept: {exc}") from exc
            raise
        return tmp

    def _commit_file(self, tmp: Path, path: Path, where: str) -> None:
        try:
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StoreError(f"{where}: write failed, old partition kept: {exc}") from exc
        _fsync_path(path.parent)

    def generation(self, spec: TableSpec) -> str:
        """The table's write counter from the catalog ('0' before the first write)."""
        try:
            return self.catalog.generation(table_name(spec))
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc

    # ----------------------------------------------------------------- reads

    def read_partition(self, spec: TableSpec, symbol: str, trading_day: str) -> pd.DataFrame:
        day = check_day(trading_day)
        path = self.partition_path(spec, symbol, day)
        where = f"{spec.name} partition {symbol}/{day} ({path})"
        table = self._read_file(spec, symbol, day, path, where)
        if table is None:
            return empty_frame(spec)
        return _to_frame(table, spec, where)

    def _read_file(
        self, spec: TableSpec, symbol: str, day: str, path: Path, where: str, attempt: int = 1
    ) -> pa.Table | None:
        """One partition file, opened once so footer and body come from the same version
        even while a writer renames a new file over it (the open handle keeps the old
        inode). ``None`` when absent; an unreadable file is marked corrupt in the catalog
        and raises :class:`StoreError` naming it."""
        read: FileIdentity | None = None
        try:
            with pa.OSFile(str(path), "rb") as fh:
                read = file_identity(os.fstat(fh.fileno()))
                table = pq.read_table(fh, partitioning=None)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as exc:
            if isinstance(exc, OSError) and not path.exists():
                return None
            if not is_damage(exc):  # EMFILE, EIO, EACCES...: nothing known about the file
                raise StoreError(f"{where}: could not be read now ({exc})") from exc
            outcome = self._mark_corrupt(spec.name, symbol, day, f"unreadable: {exc}", read)
            if outcome == "replaced" and attempt < 3:
                # A writer replaced the file after it was opened: read the new one.
                return self._read_file(spec, symbol, day, path, where, attempt + 1)
            said = (
                "marked corrupt in the catalog"
                if outcome == "marked"
                else "not marked corrupt in the catalog"
                + (f" ({outcome.removeprefix('not marked: ')})" if outcome != "replaced" else "")
            )
            raise CorruptPartitionError(
                f"{where}: unreadable ({exc}); {said}, re-materialize the day to replace it"
            ) from exc
        arrow = _layout(spec).arrow
        if not table.schema.equals(arrow, check_metadata=False):
            try:
                table = table.select(list(arrow.names)).cast(arrow)
            except (KeyError, pa.ArrowException) as exc:
                raise StoreError(f"{where}: does not match the {spec.name} layout: {exc}") from exc
        return table

    def read_table(
        self,
        spec: TableSpec,
        symbols: Sequence[str] | None = None,
        start_day: str | None = None,
        end_day: str | None = None,
    ) -> pd.DataFrame:
        """Rows of many partitions: symbols in the order given (directory order if None),
        then by day, rows as written.

        Partitions are pruned by directory name before anything is opened; each file is
        opened once (see :meth:`read_partition`)."""
        lo = check_day(start_day) if start_day is not None else None
        hi = check_day(end_day) if end_day is not None else None
        table_dir = self.table_dir(spec)
        if symbols is None:
            dirs = sorted(_listdir_prefixed(table_dir, "symbol="))
            wanted = [(reindex.symbol_of_dir(d[len("symbol=") :]), d) for d in dirs]
        else:
            wanted = [(s, f"symbol={symbol_dir_name(s)}") for s in _unique(symbols)]
        tables = []
        for symbol, d in wanted:
            for day in self._days(table_dir / d):
                if (lo is None or day >= lo) and (hi is None or day <= hi):
                    path = table_dir / d / f"trading_day={day}" / PART_FILE
                    where = f"{spec.name} partition {symbol}/{day} ({path})"
                    table = self._read_file(spec, symbol, day, path, where)
                    if table is not None:
                        tables.append(table)
        if not tables:
            return empty_frame(spec)
        merged = pa.concat_tables(tables)
        return _to_frame(merged, spec, f"{spec.name} ({len(tables)} partitions under {table_dir})")

    def partitions(self, spec: TableSpec, symbol: str) -> list[str]:
        """Stored days from the catalog (kept in step with the files by every write)."""
        try:
            return self._ready().days(table_name(spec), _unique([symbol])[0])
        except CatalogError as exc:
            raise StoreError(str(exc)) from exc

    @staticmethod
    def _days(symbol_dir: Path) -> list[str]:
        """Days with a committed file. Temp files and empty day directories never count."""
        days = []
        for name in _listdir_prefixed(symbol_dir, "trading_day="):
            day = name[len("trading_day=") :]
            if _DAY_RE.match(day) and (symbol_dir / name / PART_FILE).is_file():
                days.append(day)
        return sorted(days)

    def coverage(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Tick coverage per symbol from the catalog's per-symbol aggregates: O(symbols),
        no file is opened.

        ``n_days`` counts stored partitions, including ones written empty and ones found
        corrupt (:meth:`damaged` lists those); ``first_ts`` and ``last_ts`` come from
        non-empty ones."""
        syms = _unique(symbols)
        catalog = self._ready()
        key = ("coverage", tuple(syms), self.generation(TICKS))
        cached = self.cache.get(key)
        if cached is None:
            try:
                found = catalog.summaries(TICKS.name, syms)
            except CatalogError as exc:
                raise StoreError(str(exc)) from exc
            rows = []
            for s in syms:
                agg = found.get(s)
                if agg is None or agg.n_days == 0:
                    rows.append((s, None, None, 0, 0, None, None))
                else:
                    rows.append(
                        (
                            s,
                            agg.first_day,
                            agg.last_day,
                            agg.n_days,
                            agg.rows,
                            agg.first_ts,
                            agg.last_ts,
                        )
                    )
            cached = _coverage_frame(rows)
            self.cache.put(key, cached)
        return cached.copy()

    def latest(self, symbols: Sequence[str]) -> pd.DataFrame:
        """The last tick (greatest ts; the later-written row on ties) per symbol, in the
        order asked, from the newest non-empty partition (found in the catalog); symbols
        without data are left out."""
        syms = _unique(symbols)
        catalog = self._ready()
        key = ("latest", tuple(syms), self.generation(TICKS))
        cached = self.cache.get(key)
        if cached is None:
            found = catalog.summaries(TICKS.name, syms)
            rows = []
            for s in syms:
                agg = found.get(s)
                day = None if agg is None else agg.last_nonempty_day
                row = None if day is None else self._latest_row(s, day)
                if day is not None and row is None:  # corrupt: the newest good day instead
                    good = catalog.last_good_day(TICKS.name, s)
                    row = None if good is None or good == day else self._latest_row(s, good)
                if row is not None:
                    rows.append(row)
            if rows:
                merged = pa.concat_tables([t.cast(_layout(TICKS).arrow) for t in rows])
                cached = _to_frame(merged, TICKS, f"{TICKS.name} latest")
            else:
                cached = empty_frame(TICKS)
            self.cache.put(key, cached)
        return cached.copy()

    def _latest_row(self, symbol: str, day: str) -> pa.Table | None:
        path = self.partition_path(TICKS, symbol, day)
        read: FileIdentity | None = None
        try:
            with pa.OSFile(str(path), "rb") as fh:
                read = file_identity(os.fstat(fh.fileno()))
                pf = pq.ParquetFile(fh)
                md = pf.metadata
                if md.num_rows == 0:
                    return None
                col = md.schema.names.index(TICKS.timestamp)
                highs = [_stat_ts_bound(md, col, rg, upper=True) for rg in range(md.num_row_groups)]
                if None in highs:
                    table = pf.read()
                else:  # row groups holding the maximum; later groups win ties below
                    top = max(highs)
                    table = pf.read_row_groups([i for i, h in enumerate(highs) if h == top])
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException, ValueError) as exc:
            if is_damage(exc):
                self._mark_corrupt(TICKS.name, symbol, day, f"unreadable: {exc}", read)
            else:
                logger.warning("latest %s %s: could not be read now (%s)", symbol, day, exc)
            return None  # reported by damaged(); one bad file must not hide other symbols
        ts = (
            table[TICKS.timestamp]
            .combine_chunks()
            .cast(pa.int64())
            .fill_null(np.iinfo(np.int64).min)
            .to_numpy()
        )
        idx = len(ts) - 1 - int(np.argmax(ts[::-1]))  # last occurrence of the maximum
        return table.slice(idx, 1)

    # ----------------------------------------------------------------- ad-hoc SQL

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Run read-only ad-hoc SQL over the dataset with DuckDB; values go in ``params``.

        Every table directory under ``root`` is a view of the same name (``ticks_main_l5``,
        ``manifests``...). Views read with ``hive_partitioning`` so ``trading_day`` filters
        skip directories; the ``symbol`` hive value (the directory key) is mapped back to
        the stored symbol string so ``WHERE symbol = 'KQ.m@SHFE.cu'`` works (that filter
        is applied after reading, not by pruning). ``ts`` comes back as naive UTC."""
        import duckdb  # here, not at module level: only ad-hoc SQL pays its import

        with self._duck_lock:
            con = self._connection()
            self._refresh_views(con)
            try:
                return con.execute(query, params or []).df()
            except duckdb.Error as exc:
                raise StoreError(f"SQL over {self.root} failed: {exc}") from exc

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._duck is None:
            import duckdb

            self._duck = duckdb.connect(":memory:")
            self._duck.execute("SET TimeZone = 'UTC'")
        return self._duck

    def _refresh_views(self, con: duckdb.DuckDBPyConnection) -> None:
        root = str(self.root)
        if any(ch in root for ch in "*?[]{}'\\"):
            raise StoreError(
                f"store root {root!r} contains glob or quote characters; SQL needs a plain path"
            )
        for name in sorted(os.listdir(self.root)):
            table_dir = self.root / name
            if not (_TABLE_RE.match(name) and table_dir.is_dir()):
                continue
            pattern = f"{table_dir}/symbol=*/trading_day=*/{PART_FILE}"
            if next(table_dir.glob(f"symbol=*/trading_day=*/{PART_FILE}"), None) is None:
                continue
            con.execute(
                f'CREATE OR REPLACE VIEW "{name}" AS SELECT * REPLACE ('
                "CASE WHEN contains(symbol, '_') THEN 'KQ.m@' || replace(symbol, '_', '.') "
                "ELSE symbol END AS symbol) "
                f"FROM read_parquet('{pattern}', hive_partitioning = true, "
                "hive_types = {'symbol': VARCHAR, 'trading_day': VARCHAR})"
            )

    def close(self) -> None:
        with self._duck_lock:
            if self._duck is not None:
                self._duck.close()
                self._duck = None


# --------------------------------------------------------------------------- helpers


#: What identifies one version of a partition file: device, inode, size, mtime.
FileIdentity = tuple[int, int, int, int]


def file_identity(st: os.stat_result) -> FileIdentity:
    """A file version's identity: a writer's rename puts a new inode at the path."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def is_damage(exc: BaseException) -> bool:
    """Whether a read error proves the file damaged: pyarrow's parse errors (ArrowException,
    ValueError, or an OSError without errno such as "Corrupt snappy compressed data"). An
    OSError with an errno (EMFILE, EIO, EACCES) is the system's, not the file's."""
    if isinstance(exc, (pa.ArrowException, ValueError)) and not isinstance(exc, OSError):
        return True
    return isinstance(exc, OSError) and exc.errno is None


def _unique(symbols: Iterable[str]) -> list[str]:
    """Symbols in the order given, repeats dropped, each validated."""
    if isinstance(symbols, str):
        raise StoreError("symbols must be a sequence of strings, not one string")
    out: list[str] = []
    for s in symbols:
        symbol_dir_name(s)
        if s not in out:
            out.append(s)
    return out


def _listdir_prefixed(path: Path, prefix: str) -> list[str]:
    try:
        return [n for n in os.listdir(path) if n.startswith(prefix)]
    except FileNotFoundError:
        return []


def _remove_stale_temps(part_dir: Path) -> None:
    """Delete temp files of crashed writers. Only called under the partition lock, and temp
    files exist only while their writer holds that lock, so any found here are orphans."""
    for name in os.listdir(part_dir):
        if name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX):
            (part_dir / name).unlink(missing_ok=True)


def _check_partition_values(frame: pd.DataFrame, symbol: str, day: str, where: str) -> None:
    """Every row must belong to the partition being replaced."""
    for col, expected in (("symbol", symbol), ("trading_day", day)):
        if col not in frame.columns:
            raise StoreError(f"{where}: table has no {col!r} column to partition by")
        values = frame[col]
        ok = (values == expected).fillna(False).to_numpy(dtype=bool)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            first = int(bad[0])
            raise StoreError(
                f"{where}: {len(bad)} row(s) have {col} != {expected!r}, first at row "
                f"{first}: {values.iloc[first]!r}; nothing was written"
            )


def _serialize(table: pa.Table) -> pa.Buffer:
    """The Parquet file of ``table`` in memory, so its checksum is known before it is
    written; pages carry CRCs so a later full read can prove them intact."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
        write_page_checksum=True,
    )
    return sink.getvalue()


def _catalog_frame(entries: list[Entry]) -> pd.DataFrame:
    rows = [
        (
            e.table,
            e.symbol,
            e.day,
            e.rows,
            e.bytes,
            e.first_ts,
            e.last_ts,
            e.state,
            e.problem,
            e.verdict,
            e.checks_failed,
            e.gap_count,
            e.gap_seconds,
            e.facts,
        )
        for e in entries
    ]
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)


def _coverage_frame(rows: list[tuple]) -> pd.DataFrame:
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COVERAGE_COLUMNS)
    string = pd.StringDtype("pyarrow")

    def stamps(values: tuple) -> pd.Series:
        return pd.Series(
            [pd.NaT if v is None else pd.Timestamp(v, unit="ns", tz="UTC") for v in values],
            dtype="datetime64[ns, UTC]",
        )

    return pd.DataFrame(
        {
            "symbol": pd.Series(cols[0], dtype=string),
            "first_day": pd.Series(cols[1], dtype=string),
            "last_day": pd.Series(cols[2], dtype=string),
            "n_days": pd.Series(cols[3], dtype="int64"),
            "rows": pd.Series(cols[4], dtype="int64"),
            "first_ts": stamps(cols[5]),
            "last_ts": stamps(cols[6]),
        }
    )

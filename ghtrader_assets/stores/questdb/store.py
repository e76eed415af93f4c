"""QuestDB behind the :class:`~ghtrader_assets.stores.base.TickStore` interface.

Write path (:meth:`QuestDBStore.write_partition`), per partition, nothing waiting for
WAL apply:

1. Create the table once per store (``CREATE TABLE IF NOT EXISTS``, plus its
   ``<table>_current`` view) and compare the live layout with the spec (:mod:`.ddl`);
   drift is a clear error, never a silent mismatch.
2. Check the frame (:mod:`.frames`; not re-conformed when it already is), stamp every row
   with a fresh ``write_id``.
3. Send it in batches of one table (:mod:`.writer`), QWP or ILP/HTTP (:mod:`.qwp`): once
   this returns the rows are committed to the WAL.
4. **Replace semantics without DELETE.** ``DEDUP UPSERT KEYS`` makes re-writing the same
   rows idempotent (same row count, values replaced). Rows the new frame no longer contains
   (the source changed) still carry an older ``write_id``: one ``UPDATE`` moves them out of
   the partition by setting their ``trading_day`` to ``'retired'``, which no read (and no
   ``_current`` view) returns. It is sent only for a day the partition log says was written
   before (the log's days are loaded once per symbol and store). QuestDB sequences it after
   the rows committed in step 3; since ``trading_day`` is not a dedup key, even the other
   order ends in the same state (re-sent keys upsert back into the day). A later write of
   the same keys brings retired rows back. Retired rows keep their disk space until the
   partition is rewritten (QuestDB has no row delete).
5. Record the partition in the partition log (:mod:`.registry`), empty days included,
   with its row count, first/last ``ts`` and ``write_id``; invalidate the coverage cache
   (also on failure).

**Settling** (:meth:`QuestDBStore.settle`), batched over every partition written since
the last call: one WAL-apply wait per table written, then one grouped count per (table,
symbol) checking that each day holds exactly its latest write's rows and nothing older
(leftovers, e.g. from an ``UPDATE`` the server skipped at apply time, are retired once
more, then reported). It runs before any read by this store and when it closes. Reads
from any process first wait for the table's WAL apply, so they see every committed write.

:meth:`QuestDBStore.coverage` reads only the partition log (one grouped query for all
symbols), never the tick table, except for symbols with days logged before the log kept
``ts`` bounds (two one-row tick queries each, see :mod:`.registry`).

Reads use ``ts`` bounds from the trading calendar on the ticks table (which enforces them
on write), so QuestDB touches only the one or two ``DAY`` partitions of a trading day;
bulk reads go through QWP when it is in use, else PGWire in binary.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ghtrader_assets.schema import TICKS, TableSpec, empty_frame
from ghtrader_assets.stores.base import COVERAGE_COLUMNS, StoreError, TickStore, WriteStats
from ghtrader_assets.stores.cache import CoverageCache
from ghtrader_assets.stores.questdb import queries as q
from ghtrader_assets.stores.questdb import registry
from ghtrader_assets.stores.questdb.ddl import (
    WRITE_ID_COLUMN,
    SchemaDriftError,
    add_column_sql,
    create_table_sql,
    create_view_sql,
    current_view_name,
    detect_drift,
    drift_message,
    table_columns_sql,
    validate_identifier,
)
from ghtrader_assets.stores.questdb.frames import normalise_read, prepare_for_write
from ghtrader_assets.stores.questdb.qwp import QwpTransport, default_connect
from ghtrader_assets.stores.questdb.reader import PgClient, SqlRunner, probe, wait_for_wal
from ghtrader_assets.stores.questdb.registry import PARTITION_LOG
from ghtrader_assets.stores.questdb.settings import QuestDBSettings
from ghtrader_assets.stores.questdb.writer import (
    BatchWriter,
    IlpHttpWriter,
    QwpWriter,
    RetryPolicy,
    SenderLike,
)
from ghtrader_assets.symbols import SymbolError, parse_main_symbol

logger = logging.getLogger(__name__)

#: Tables whose rows keep the calendar invariant (``ts`` inside the trading day's window),
#: enforced on write and used for partition pruning on read. The other tables hold one row
#: per symbol-day and are filtered by symbol and trading day only.
PRUNED_TABLES = frozenset({TICKS.name})


def _default_sender_factory(settings: QuestDBSettings) -> Callable[[], SenderLike]:
    def make() -> SenderLike:
        from questdb import Sender

        # Room for one batch of wide tick rows (~0.9 KB each in ILP text) with margin.
        max_buf = max(100 * 1024 * 1024, settings.batch_rows * 2048)
        return Sender.from_conf(settings.ilp_conf(), max_buf_size=max_buf, **settings.auth_kwargs())

    return make


class QuestDBStore(TickStore):
    """Partitioned tables in QuestDB (see the module docstring for the guarantees)."""

    kind = "questdb"

    def __init__(
        self,
        settings: QuestDBSettings,
        *,
        sql: SqlRunner | None = None,
        sender_factory: Callable[[], SenderLike] | None = None,
        qwp_connect: Callable[[QuestDBSettings], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._sql: SqlRunner = sql if sql is not None else PgClient(settings)
        self._qwp = QwpTransport(settings, qwp_connect or default_connect)
        retry = RetryPolicy(
            settings.max_retries, settings.retry_base_delay, settings.retry_max_delay
        )
        self._ilp = IlpHttpWriter(
            sender_factory or _default_sender_factory(settings),
            settings.batch_rows,
            retry,
            redact=settings.redact,
            sleep=sleep,
        )
        self._qwp_writer = QwpWriter(
            self._qwp.require, settings.batch_rows, retry, redact=settings.redact, sleep=sleep
        )
        self._cache = CoverageCache(ttl_seconds=settings.cache_ttl, enabled=True)
        self._ensured: set[str] = set()
        self._lock = threading.Lock()
        self._last_write_id = 0
        #: (table, symbol) -> {trading_day: rows} as logged (see :meth:`_logged_days`).
        self._logged: dict[tuple[str, str], dict[str, int]] = {}
        #: Writes not yet verified: (spec name, table, symbol) -> {day: (write_id, rows)}.
        self._pending: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
        #: Tables written since the last :meth:`settle` (WAL apply not yet awaited).
        self._dirty: set[str] = set()
        self._specs: dict[str, TableSpec] = {PARTITION_LOG.name: PARTITION_LOG}

    # -- naming and table lifecycle ------------------------------------------------------

    def table_name(self, spec: TableSpec) -> str:
        return validate_identifier(f"{self.settings.table_prefix}{spec.name}", "table name")

    def ensure_table(self, spec: TableSpec) -> str:
        """Create ``spec``'s table if absent and check its live layout (once per store)."""
        table = self.table_name(spec)
        if table in self._ensured:
            return table
        self._specs[spec.name] = spec
        partition_by = "DAY"
        if spec is PARTITION_LOG:
            partition_by = registry.PARTITION_LOG_PARTITION_BY
        with self._lock:
            if table in self._ensured:
                return table
            self._sql.execute_ddl(create_table_sql(spec, table, partition_by))
            drift = detect_drift(spec, self._sql.fetch(q.Query(table_columns_sql(table))))
            # The partition log is this store's own table: its new columns are always added
            # (nullable, so older rows simply have no value); user tables need the setting.
            auto_add = self.settings.auto_add_columns or spec is PARTITION_LOG
            added = drift.only_missing and auto_add
            if added:
                for col in drift.missing:
                    logger.warning(
                        "QuestDB table %s: adding missing column %s %s",
                        table,
                        col.name,
                        col.qdb_type,
                    )
                    self._sql.execute_ddl(add_column_sql(table, col))
                # On a WAL table the change goes through the sequencer: wait until applied.
                wait_for_wal(self._sql, table, self.settings.wal_timeout)
                drift = detect_drift(spec, self._sql.fetch(q.Query(table_columns_sql(table))))
            if not drift.ok:
                raise SchemaDriftError(drift_message(spec, table, drift))
            if spec is not PARTITION_LOG and "trading_day" in spec.columns:
                self._create_view(spec, table, replace=added)
            self._ensured.add(table)
        return table

    def _create_view(self, spec: TableSpec, table: str, *, replace: bool) -> None:
        """The ``<table>_current`` view for SQL users (see :func:`.ddl.create_view_sql`).

        A server without views (QuestDB before 9.x) still gets a working store: the view
        is what people query, not what the store needs, so its absence is a warning that
        says what to query instead.
        """
        try:
            self._sql.execute_ddl(create_view_sql(spec, table, replace=replace))
        except StoreError as exc:
            logger.warning(
                "QuestDB table %s: no %s view (%s); in SQL, filter the table with "
                "trading_day != '%s' to see what the store's reads return",
                table,
                current_view_name(table),
                exc,
                q.RETIRED_DAY,
            )

    def ensure_tables(self, specs: Sequence[TableSpec] | None = None) -> list[str]:
        """Create (if absent) and check every table at start-up, so schema drift is reported
        before the first write rather than in the middle of a backfill."""
        from ghtrader_assets.schema import all_tables

        if isinstance(self._sql, PgClient):
            self.check_reachable()
        wanted = [*(specs if specs is not None else all_tables()), PARTITION_LOG]
        return list(dict.fromkeys(self.ensure_table(spec) for spec in wanted))

    def drop_table(self, spec: TableSpec) -> None:
        """Drop ``spec``'s table (tests and tooling; production never calls it)."""
        table = self.table_name(spec)
        if spec is not PARTITION_LOG and "trading_day" in spec.columns:
            self._sql.execute(q.drop_view(current_view_name(table)))
        self._sql.execute(q.drop_table(table))
        self._ensured.discard(table)
        self._cache.invalidate()

    @property
    def pg(self) -> SqlRunner:
        """The PGWire runner (parameterised :class:`~.queries.Query` only), for tooling,
        benchmarks and tests that inspect tables directly."""
        return self._sql

    @property
    def transport(self) -> str:
        """``"qwp"`` or ``"ilp_http"``: the path writes and bulk reads use (decided lazily)."""
        return "qwp" if self._qwp.handle() is not None else "ilp_http"

    # -- writes ----------------------------------------------------------------------------

    def _new_write_id(self) -> int:
        with self._lock:
            self._last_write_id = max(time.time_ns(), self._last_write_id + 1)
            return self._last_write_id

    def _writer(self) -> BatchWriter:
        return self._qwp_writer if self._qwp.handle() is not None else self._ilp

    def write_partition(
        self, spec: TableSpec, symbol: str, trading_day: str, df: pd.DataFrame
    ) -> WriteStats:
        """Send one partition and return once it is committed (durable in the WAL).

        On the hot path: frame checks, one send, at most one retire ``UPDATE`` (only for a
        day written before) and one partition-log ``INSERT``; no waiting for WAL apply.
        Visibility and verification come later, batched (see :meth:`settle`).
        """
        started = time.perf_counter()
        day = q.parse_day(trading_day)
        try:
            parse_main_symbol(symbol)
        except SymbolError as exc:
            raise StoreError(f"{spec.name} partition ({symbol!r}, {trading_day}): {exc}") from None
        table = self.ensure_table(spec)
        where = f"QuestDB table {table!r} partition ({symbol}, {trading_day})"
        pruned = spec.name in PRUNED_TABLES
        frame = prepare_for_write(spec, symbol, day, df, pruned=pruned, where=where)
        write_id = self._new_write_id()
        log = self.ensure_table(PARTITION_LOG)
        known = self._logged_days(table, symbol)
        try:
            if len(frame):
                send = frame.assign(**{WRITE_ID_COLUMN: write_id})
                symbols = [c for c in spec.symbol_columns if c in send.columns]
                self._writer().write(table, send, symbols=symbols, at=spec.timestamp, where=where)
            if known.get(day.isoformat(), 0) > 0:
                # Rows of the earlier write that the new frame lacks leave the day. QuestDB
                # sequences this WAL UPDATE after the rows committed above; and since the
                # dedup keys do not include trading_day, even the other order would end in
                # the same state (re-sent keys are upserted back into the day).
                self._sql.execute(q.retire_stale(spec, table, symbol, day, write_id, pruned=pruned))
            first_ts, last_ts = _ts_bounds(frame[spec.timestamp])
            self._sql.execute(
                registry.record(log, table, symbol, day, len(frame), write_id, first_ts, last_ts)
            )
        finally:
            self._cache.invalidate()
            with self._lock:
                self._dirty.update((table, log))
        with self._lock:
            known[day.isoformat()] = len(frame)
            self._pending.setdefault((spec.name, table, symbol), {})[day.isoformat()] = (
                write_id,
                len(frame),
            )
        return WriteStats(
            table=spec.name,
            symbol=symbol,
            trading_day=trading_day,
            rows=len(frame),
            bytes=_frame_bytes(frame),
            seconds=time.perf_counter() - started,
            location=f"questdb://{self.settings.host}:{self.settings.pg_port}/{table}",
        )

    def _logged_days(self, table: str, symbol: str) -> dict[str, int]:
        """Rows per day of ``symbol`` in the partition log, loaded once per store and kept
        current by this store's writes: it tells a first write (nothing to retire) from a
        re-write without a query per day."""
        key = (table, symbol)
        known = self._logged.get(key)
        if known is None:
            log = self.ensure_table(PARTITION_LOG)
            # Other processes' log rows must be applied before they are read.
            wait_for_wal(self._sql, log, self.settings.wal_timeout)
            rows = self._sql.fetch(registry.day_rows(log, table, symbol))
            known = {str(r[0]): int(r[1] or 0) for r in rows}
            with self._lock:
                known = self._logged.setdefault(key, known)
        return known

    def settle(self) -> None:
        """Make this store's writes visible and verify them, batched over every partition
        written since the last call: one WAL-apply wait per table written, then one grouped
        count per (table, symbol) checking that each day holds exactly the rows of its
        latest write and nothing older. Runs before this store's reads and on close.

        A day that fails (rows missing, another writer's rows, a retire ``UPDATE`` the
        server skipped at apply time) raises :class:`StoreError` naming table, symbol and
        days; its rows are not withdrawn, so re-materialize it.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
            dirty, self._dirty = self._dirty, set()
        for table in sorted(dirty):
            wait_for_wal(self._sql, table, self.settings.wal_timeout)
        problems: list[str] = []
        for (spec_name, table, symbol), days in pending.items():
            problems.extend(self._verify(spec_name, table, symbol, days))
        if problems:
            raise StoreError(
                "QuestDB writes did not land as written: "
                + "; ".join(problems)
                + ". Re-materialize these partitions and check the server log "
                "(wal_tables() errorMessage)"
            )

    def _verify(
        self, spec_name: str, table: str, symbol: str, days: dict[str, tuple[int, int]]
    ) -> list[str]:
        spec = self._specs[spec_name]
        pruned = spec.name in PRUNED_TABLES
        dates = [q.parse_day(d) for d in days]
        counts = self._sql.fetch(q.count_by_write(spec, table, symbol, dates, pruned=pruned))
        found: dict[str, dict[int, int]] = {}
        for day, wid, n in counts:
            found.setdefault(str(day), {})[int(wid)] = int(n)
        problems = []
        for day, (write_id, n) in sorted(days.items()):
            by_write = found.get(day, {})
            stored = by_write.get(write_id, 0)
            stale = sum(v for k, v in by_write.items() if k != write_id)
            if stale:
                # Left over (an UPDATE skipped at apply, or rows of an unlogged earlier
                # write): retire them now, then look again.
                d = q.parse_day(day)
                self._sql.execute(q.retire_stale(spec, table, symbol, d, write_id, pruned=pruned))
                wait_for_wal(self._sql, table, self.settings.wal_timeout)
                stale = self._count(
                    q.count_written(spec, table, symbol, d, write_id, pruned=pruned, stale=True)
                )
            if stored != n or stale:
                problems.append(
                    f"{table!r} ({symbol}, {day}): wrote {n} rows, {stored} carry write id "
                    f"{write_id}" + (f", {stale} rows of an earlier write remain" if stale else "")
                )
        return problems

    def _count(self, query: q.Query) -> int:
        rows = self._sql.fetch(query)
        return int(rows[0][0]) if rows else 0

    # -- reads -----------------------------------------------------------------------------

    def _bulk(self, query: q.Query) -> pd.DataFrame:
        """Bulk rows through the fastest path: QWP columnar when in use, else PGWire binary."""
        if self._qwp.handle() is not None:
            try:
                return self._qwp.query_df(query)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"QuestDB QWP read failed ({query.sql.split(' WHERE ')[0]} ...): "
                    f"{type(exc).__name__}: {self.settings.redact(exc)}"
                ) from None
        return self._sql.fetch_df(query)

    def _visible(self, table: str) -> None:
        """Before a read of ``table``: settle this store's own writes, then wait for WAL
        apply of writes by other processes (one ``wal_tables()`` row when caught up), so a
        read sees every write committed before it."""
        if self._pending or self._dirty:
            self.settle()
        wait_for_wal(self._sql, table, self.settings.wal_timeout)

    def read_partition(self, spec: TableSpec, symbol: str, trading_day: str) -> pd.DataFrame:
        day = q.parse_day(trading_day)
        table = self.ensure_table(spec)
        self._visible(table)
        raw = self._bulk(
            q.select_partition(spec, table, symbol, day, pruned=spec.name in PRUNED_TABLES)
        )
        return normalise_read(spec, raw)

    def read_table(
        self,
        spec: TableSpec,
        symbols: Sequence[str] | None = None,
        start_day: str | None = None,
        end_day: str | None = None,
    ) -> pd.DataFrame:
        start = q.parse_day(start_day) if start_day is not None else None
        end = q.parse_day(end_day) if end_day is not None else None
        if symbols is not None and len(symbols) == 0:
            return empty_frame(spec)
        table = self.ensure_table(spec)
        self._visible(table)
        query = q.select_table(
            spec,
            table,
            list(symbols) if symbols else None,
            start,
            end,
            pruned=spec.name in PRUNED_TABLES,
        )
        frame = normalise_read(spec, self._bulk(query))
        if start is not None or end is not None:
            days = frame["trading_day"]
            keep = pd.Series(True, index=frame.index)
            if start is not None:
                keep &= days >= start.isoformat()
            if end is not None:
                keep &= days <= end.isoformat()
            frame = frame.loc[keep].reset_index(drop=True)
        return frame

    def partitions(self, spec: TableSpec, symbol: str) -> list[str]:
        """Days written through this store, including days written with no rows (from the
        partition log, see :mod:`.registry`)."""
        table = self.table_name(spec)
        log = self.ensure_table(PARTITION_LOG)
        if self._pending or self._dirty:
            self.settle()
        return sorted({str(r[0]) for r in self._sql.fetch(registry.days(log, table, symbol))})

    def coverage(self, symbols: Sequence[str]) -> pd.DataFrame:
        symbols = list(dict.fromkeys(symbols))
        key = ("coverage", self.table_name(TICKS), tuple(symbols))
        cached = self._cache.get(key)
        if cached is not None:
            return cached.copy()
        out = self._coverage_uncached(symbols)
        self._cache.put(key, out)
        return out.copy()

    def _coverage_uncached(self, symbols: list[str]) -> pd.DataFrame:
        """One grouped query on the partition log for all symbols: days (written-empty
        ones included, as in the embedded store), rows and ``ts`` bounds as recorded by
        the latest write of each day. The tick table is read only for a symbol whose log
        has days without bounds (logged by an older version): its first and last live
        tick, one row each."""
        logged: dict[str, tuple[Any, ...]] = {}
        if self._pending or self._dirty:
            self.settle()
        if symbols:
            table = self.ensure_table(TICKS)
            log = self.ensure_table(PARTITION_LOG)
            for row in self._sql.fetch(registry.coverage_by_symbol(log, table, symbols)):
                logged[str(row[0])] = row
        records = []
        for sym in symbols:
            row = logged.get(sym)
            if row is None:
                records.append((sym, None, None, 0, 0, None, None))
                continue
            _, n_days, first_day_ts, last_day_ts, rows, first_ts, last_ts, unbounded = row
            first_day, last_day = registry.day_of(first_day_ts), registry.day_of(last_day_ts)
            if unbounded:
                first_ts, last_ts = self._edge_ticks(table, sym, first_day, last_day)
            records.append(
                (sym, first_day, last_day, int(n_days), int(rows or 0), first_ts, last_ts)
            )
        return _coverage_frame(records)

    def _edge_ticks(
        self, table: str, symbol: str, first_day: str, last_day: str
    ) -> tuple[Any, Any]:
        """First and last live tick ``ts`` of ``symbol`` within its logged days."""
        start, end = q.parse_day(first_day), q.parse_day(last_day)
        edges = []
        for last in (False, True):
            rows = self._sql.fetch(q.select_edge_tick(TICKS, table, symbol, start, end, last=last))
            edges.append(rows[0][0] if rows else None)
        return edges[0], edges[1]

    def latest(self, symbols: Sequence[str]) -> pd.DataFrame:
        symbols = list(dict.fromkeys(symbols))
        if not symbols:
            return empty_frame(TICKS)
        key = ("latest", self.table_name(TICKS), tuple(symbols))
        cached = self._cache.get(key)
        if cached is not None:
            return cached.copy()
        table = self.ensure_table(TICKS)
        self._visible(table)
        frame = normalise_read(TICKS, self._sql.fetch_df(q.select_latest(TICKS, table, symbols)))
        order = {sym: i for i, sym in enumerate(symbols)}
        frame = frame.sort_values("symbol", key=lambda s: s.map(order), kind="mergesort")
        frame = frame.reset_index(drop=True)
        self._cache.put(key, frame)
        return frame.copy()

    # -- lifecycle -------------------------------------------------------------------------

    def check_reachable(self) -> None:
        """Fail within seconds when no server answers, before any pool or client waits
        out its own (much longer) timeouts. See :func:`.reader.probe`."""
        probe(self.settings)

    def close(self) -> None:
        """Settle pending writes, then close the ILP sender, the QWP handle and the PGWire
        pool, on every path.

        A write that did not land as written is re-raised as :class:`StoreError` (naming
        table, symbol and day) *after* every handle is released, so a caller that closes
        the store (``with QuestDBStore(...)``, the CLI's exit) reports it instead of
        losing it in a log line. Steps settle their own writes before they end (see
        :meth:`settle`), so a run normally reaches close with nothing pending.
        """
        unsettled: StoreError | None = None
        try:
            if self._pending or self._dirty:
                self.settle()
        except StoreError as exc:
            unsettled = exc
        except Exception as exc:  # a server gone at exit: the writes are unverified
            unsettled = StoreError(
                f"QuestDB store closing with unverified writes: {type(exc).__name__}: "
                f"{self.settings.redact(exc)}"
            )
        finally:
            try:
                self._ilp.close()
            finally:
                try:
                    self._qwp.close()
                finally:
                    self._sql.close()
        if unsettled is not None:
            raise unsettled

    def __enter__(self) -> QuestDBStore:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the body's own error is the one to see
            self.close()
        except StoreError as unsettled:
            logger.error("%s", unsettled)

    def __repr__(self) -> str:
        return f"QuestDBStore({self.settings!r})"


def _frame_bytes(frame: pd.DataFrame) -> int:
    """In-memory size of the frame sent. Shallow: after conform every column is numpy or
    Arrow-backed, whose buffers are counted without visiting each value."""
    return int(frame.memory_usage(index=False, deep=False).sum())


def _ts_bounds(ts: pd.Series) -> tuple[dt.datetime | None, dt.datetime | None]:
    """First and last value of a frame's designated timestamp, at the microseconds a
    QuestDB ``TIMESTAMP`` keeps (``None`` for an empty frame)."""
    if ts.empty:
        return None, None
    return ts.min().floor("us").to_pydatetime(), ts.max().floor("us").to_pydatetime()


def _coverage_frame(records: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The coverage frame, with the dtypes the embedded store uses."""
    cols = list(zip(*records, strict=True)) if records else [()] * len(COVERAGE_COLUMNS)
    string = pd.StringDtype("pyarrow")
    return pd.DataFrame(
        {
            "symbol": pd.Series(cols[0], dtype=string),
            "first_day": pd.Series(cols[1], dtype=string),
            "last_day": pd.Series(cols[2], dtype=string),
            "n_days": pd.Series(cols[3], dtype="int64"),
            "rows": pd.Series(cols[4], dtype="int64"),
            "first_ts": pd.to_datetime(pd.Series(cols[5], dtype=object), utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            "last_ts": pd.to_datetime(pd.Series(cols[6], dtype=object), utc=True).astype(
                "datetime64[ns, UTC]"
            ),
        }
    )

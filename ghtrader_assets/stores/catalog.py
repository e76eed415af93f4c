"""The partition catalog of the embedded store: one SQLite row per stored partition.

Why a catalog: coverage, latest, status, the coverage report and the Prometheus collector
used to open one Parquet footer per partition, so their cost grew with history (6 s for
14,000 partitions). The catalog keeps what they need per partition (rows, bytes, first/last
ts, checksum, the day's check outcome and figures) and per (table, symbol) an aggregate row,
so those reads cost O(symbols).

Why SQLite (stdlib ``sqlite3``) in WAL mode rather than an append-only log of our own:
SQLite already gives atomic multi-row transactions that survive ``kill -9`` (and with
``synchronous=FULL`` power loss), many concurrent readers with one writer at a time across
processes (``busy_timeout`` queues writers), and indexed aggregates; a hand-made log would
need its own compaction, torn-tail recovery and locking. WAL lets readers run while a
writer commits. The database lives in the store root as ``_catalog.sqlite`` (plus its
``-wal``/``-shm`` files), a name no table directory can take.

The files stay the truth. Every write runs under the partition's file lock and records an
*intent* row (committed) before the file is renamed into place, then the partition row,
the symbol aggregate and the table generation in one transaction that also deletes the
intent. A writer killed between the two leaves the intent behind; the next reader that
finds it (an indexed look-up of an almost always empty table) re-reads that one partition
from its file once the partition lock is free. Files changed behind the store's back are
found by :mod:`ghtrader_assets.stores.reindex` (size/mtime/checksum; ``ghtrader reindex``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

CATALOG_FILE = "_catalog.sqlite"
#: Bumped when the layout changes; an older catalog is rebuilt from the files.
CATALOG_VERSION = "2"

OK = "ok"
CORRUPT = "corrupt"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS partitions (
    tbl TEXT NOT NULL,
    symbol TEXT NOT NULL,
    day TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    first_ts INTEGER,
    last_ts INTEGER,
    state TEXT NOT NULL DEFAULT 'ok',
    problem TEXT NOT NULL DEFAULT '',
    verdict TEXT,
    checks_failed TEXT,
    gap_count INTEGER,
    gap_seconds REAL,
    facts TEXT,
    written_at REAL NOT NULL,
    PRIMARY KEY (tbl, symbol, day)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS partitions_state ON partitions (state) WHERE state != 'ok';
CREATE TABLE IF NOT EXISTS symbols (
    tbl TEXT NOT NULL,
    symbol TEXT NOT NULL,
    n_days INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    first_day TEXT,
    last_day TEXT,
    first_ts INTEGER,
    last_ts INTEGER,
    last_nonempty_day TEXT,
    corrupt_days INTEGER NOT NULL,
    gap_count INTEGER,
    gap_seconds REAL,
    error_days INTEGER,
    worst_day TEXT,
    PRIMARY KEY (tbl, symbol)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (
    tbl TEXT NOT NULL,
    symbol TEXT NOT NULL,
    day TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    PRIMARY KEY (tbl, symbol, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

#: Recomputes one (table, symbol) aggregate from its partition rows (an indexed range of at
#: most a few thousand rows), in the writer's transaction. ``worst_day``: most gap seconds,
#: the earliest day on ties.
_REFRESH_SYMBOL = """
INSERT INTO symbols
SELECT tbl, symbol, count(*), sum(rows), min(day), max(day), min(first_ts), max(last_ts),
       max(CASE WHEN rows > 0 THEN day END), sum(state != 'ok'),
       sum(gap_count), sum(gap_seconds), sum(verdict = 'error'),
       (SELECT w.day FROM partitions w WHERE w.tbl = p.tbl AND w.symbol = p.symbol
        AND w.gap_seconds > 0 ORDER BY w.gap_seconds DESC, w.day LIMIT 1)
FROM partitions p WHERE tbl = ? AND symbol = ? GROUP BY tbl, symbol
"""
_SUMMARY_COLUMNS = (
    "tbl, symbol, n_days, rows, first_day, last_day, first_ts, last_ts, last_nonempty_day, "
    "corrupt_days, gap_count, gap_seconds, error_days, worst_day"
)

_COLUMNS = (
    "tbl, symbol, day, rows, bytes, mtime_ns, checksum, first_ts, last_ts, state, problem, "
    "verdict, checks_failed, gap_count, gap_seconds, facts, written_at"
)


class CatalogError(RuntimeError):
    """The catalog database could not be read or written."""


@dataclass(frozen=True)
class Entry:
    """What the catalog knows about one stored partition."""

    table: str
    symbol: str
    day: str
    rows: int
    bytes: int
    mtime_ns: int
    checksum: str
    first_ts: int | None = None
    last_ts: int | None = None
    state: str = OK
    problem: str = ""
    verdict: str | None = None
    checks_failed: str | None = None
    gap_count: int | None = None
    gap_seconds: float | None = None
    facts: dict[str, float] = field(default_factory=dict)
    written_at: float = 0.0

    def as_row(self) -> tuple:
        return (
            self.table,
            self.symbol,
            self.day,
            self.rows,
            self.bytes,
            self.mtime_ns,
            self.checksum,
            self.first_ts,
            self.last_ts,
            self.state,
            self.problem,
            self.verdict,
            self.checks_failed,
            self.gap_count,
            self.gap_seconds,
            json.dumps(self.facts, sort_keys=True) if self.facts else None,
            self.written_at or time.time(),
        )

    @classmethod
    def from_row(cls, row: Sequence) -> Entry:
        values = list(row)
        values[15] = json.loads(values[15]) if values[15] else {}
        return cls(*values)


@dataclass(frozen=True)
class SymbolSummary:
    """The per (table, symbol) aggregate the catalog maintains with every write."""

    table: str
    symbol: str
    n_days: int
    rows: int
    first_day: str | None
    last_day: str | None
    first_ts: int | None
    last_ts: int | None
    last_nonempty_day: str | None
    corrupt_days: int
    gap_count: int | None = None
    gap_seconds: float | None = None
    error_days: int | None = None
    worst_day: str | None = None


class Catalog:
    """The SQLite catalog of one store root. Safe to share between threads of a process
    (one connection per thread) and between processes (SQLite locking)."""

    def __init__(self, root: Path, *, busy_timeout_seconds: float = 60.0) -> None:
        self.path = Path(root) / CATALOG_FILE
        self._timeout = busy_timeout_seconds
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._ready_pid: int | None = None

    # ----------------------------------------------------------------- connection

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            return con
        try:
            con = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=True
            )
            con.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            con.execute("PRAGMA synchronous = FULL")
            with self._init_lock:
                if self._ready_pid != os.getpid():
                    # Switching a new file to WAL takes an exclusive lock for which SQLite
                    # does not always wait (busy_timeout): concurrent first opens (two demo
                    # runs) got "database is locked". One process at a time sets it up.
                    with FileLock(f"{self.path}.init.lock", timeout=self._timeout):
                        self._initialise(con)
                    self._ready_pid = os.getpid()
        except (sqlite3.Error, FileLockTimeout) as exc:
            raise CatalogError(f"catalog {self.path}: cannot open: {exc}") from exc
        self._local.con = con
        self._local.pid = os.getpid()
        return con

    def _initialise(self, con: sqlite3.Connection) -> None:
        # journal_mode=WAL is persistent in the file; setting it needs no write lock race
        # guard beyond SQLite's own (busy_timeout covers concurrent first opens).
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'meta'"
            ).fetchone() and con.execute(
                "SELECT value FROM meta WHERE key = 'version'"
            ).fetchone() != (CATALOG_VERSION,):
                # An older layout: drop it; the store rebuilds the catalog from the files.
                for table in ("partitions", "symbols", "intents", "meta"):
                    con.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (CATALOG_VERSION,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time, all or nothing."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog {self.path}: cannot begin a write: {exc}") from exc
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            con.execute("ROLLBACK")
            raise CatalogError(f"catalog {self.path}: commit failed: {exc}") from exc

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise CatalogError(f"catalog {self.path}: query failed: {exc}") from exc

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) == os.getpid():
            con.close()
        self._local = threading.local()

    # ----------------------------------------------------------------- meta

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, con: sqlite3.Connection, key: str, value: str) -> None:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self, table: str) -> str:
        """A counter bumped by every write of ``table`` (in the same transaction)."""
        return self.get_meta(f"generation:{table}") or "0"

    def _bump(self, con: sqlite3.Connection, table: str) -> None:
        con.execute(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1",
            (f"generation:{table}",),
        )

    # ----------------------------------------------------------------- writes

    def begin_intent(self, table: str, symbol: str, day: str) -> None:
        """Record that the partition's file is about to be replaced (committed at once)."""
        with self.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO intents VALUES (?, ?, ?, ?, ?)",
                (table, symbol, day, os.getpid(), time.time()),
            )

    def record(self, entries: Iterable[Entry], *, clear_intents: bool = True) -> None:
        """Upsert partition rows, refresh their symbol aggregates, bump generations and
        clear their intents: one transaction."""
        with self.transaction() as con:
            self.record_in(con, entries, clear_intents=clear_intents)

    def record_in(
        self, con: sqlite3.Connection, entries: Iterable[Entry], *, clear_intents: bool = True
    ) -> None:
        touched: set[tuple[str, str]] = set()
        for entry in entries:
            con.execute(
                f"INSERT OR REPLACE INTO partitions ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                entry.as_row(),
            )
            if clear_intents:
                con.execute(
                    "DELETE FROM intents WHERE tbl = ? AND symbol = ? AND day = ?",
                    (entry.table, entry.symbol, entry.day),
                )
            touched.add((entry.table, entry.symbol))
        self._refresh(con, touched)

    def forget(self, con: sqlite3.Connection, table: str, symbol: str, day: str) -> None:
        """Drop a partition whose file is gone (and its intent)."""
        con.execute(
            "DELETE FROM partitions WHERE tbl = ? AND symbol = ? AND day = ?", (table, symbol, day)
        )
        con.execute(
            "DELETE FROM intents WHERE tbl = ? AND symbol = ? AND day = ?", (table, symbol, day)
        )
        self._refresh(con, {(table, symbol)})

    def _refresh(self, con: sqlite3.Connection, touched: Iterable[tuple[str, str]]) -> None:
        tables = set()
        for table, symbol in touched:
            con.execute("DELETE FROM symbols WHERE tbl = ? AND symbol = ?", (table, symbol))
            con.execute(_REFRESH_SYMBOL, (table, symbol))
            tables.add(table)
        for table in tables:
            self._bump(con, table)

    def mark_corrupt(self, table: str, symbol: str, day: str, problem: str) -> None:
        """Flag a partition whose file cannot be read or no longer matches its checksum."""
        with self.transaction() as con:
            hit = con.execute(
                "UPDATE partitions SET state = ?, problem = ? WHERE tbl = ? AND symbol = ? "
                "AND day = ?",
                (CORRUPT, problem[:500], table, symbol, day),
            ).rowcount
            if not hit:
                con.execute(
                    f"INSERT INTO partitions ({_COLUMNS}) VALUES "
                    "(?, ?, ?, 0, 0, 0, '', NULL, NULL, ?, ?, NULL, NULL, NULL, NULL, NULL, ?)",
                    (table, symbol, day, CORRUPT, problem[:500], time.time()),
                )
            self._refresh(con, {(table, symbol)})

    def clear(self, con: sqlite3.Connection) -> None:
        """Remove every partition, aggregate and intent (a rebuild follows in the same
        transaction)."""
        con.execute("DELETE FROM partitions")
        con.execute("DELETE FROM symbols")
        con.execute("DELETE FROM intents")

    # ----------------------------------------------------------------- reads

    def intents(self) -> list[tuple[str, str, str, int, float]]:
        return self._query("SELECT tbl, symbol, day, pid, started FROM intents")

    def entry(self, table: str, symbol: str, day: str) -> Entry | None:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM partitions WHERE tbl = ? AND symbol = ? AND day = ?",
            (table, symbol, day),
        )
        return Entry.from_row(rows[0]) if rows else None

    def entries(
        self,
        table: str | None = None,
        symbols: Sequence[str] | None = None,
        start_day: str | None = None,
        end_day: str | None = None,
        *,
        days: Sequence[str] | None = None,
        state: str | None = None,
    ) -> list[Entry]:
        """Partition rows filtered by table, symbols, an inclusive day range, exact days or
        state; ordered by table, symbol, day."""
        where, params = _filters(table, symbols, start_day, end_day, days, state)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM partitions{where} ORDER BY tbl, symbol, day", params
        )
        return [Entry.from_row(r) for r in rows]

    def stat_rows(
        self,
        table: str | None,
        symbols: Sequence[str] | None = None,
        days: Sequence[str] | None = None,
    ) -> list[tuple[str, str, str, int, int, str]]:
        """``(table, symbol, day, bytes, mtime_ns, state)`` per partition: what a stat
        pass compares, without building entries."""
        where, params = _filters(table, symbols, None, None, days, None)
        return self._query(
            f"SELECT tbl, symbol, day, bytes, mtime_ns, state FROM partitions{where}", params
        )

    def last_good_day(self, table: str, symbol: str) -> str | None:
        """The newest non-empty partition not marked corrupt."""
        rows = self._query(
            "SELECT max(day) FROM partitions WHERE tbl = ? AND symbol = ? AND rows > 0 "
            "AND state = 'ok'",
            (table, symbol),
        )
        return rows[0][0] if rows else None

    def days(self, table: str, symbol: str) -> list[str]:
        rows = self._query(
            "SELECT day FROM partitions WHERE tbl = ? AND symbol = ? ORDER BY day", (table, symbol)
        )
        return [r[0] for r in rows]

    def days_by_symbol(self, table: str, symbols: Sequence[str]) -> dict[str, list[str]]:
        where, params = _filters(table, symbols, None, None, None, None)
        out: dict[str, list[str]] = {s: [] for s in symbols}
        for symbol, day in self._query(
            f"SELECT symbol, day FROM partitions{where} ORDER BY symbol, day", params
        ):
            out[symbol].append(day)
        return out

    def summaries(self, table: str, symbols: Sequence[str]) -> dict[str, SymbolSummary]:
        """The aggregate row of each symbol that has partitions of ``table``."""
        where, params = _filters(table, symbols, None, None, None, None)
        rows = self._query(f"SELECT {_SUMMARY_COLUMNS} FROM symbols{where}", params)
        return {r[1]: SymbolSummary(*r) for r in rows}

    def damaged(self, symbols: Sequence[str] | None = None) -> list[Entry]:
        """Every partition not in state ``ok`` (partial index: cheap when there are none)."""
        where, params = _filters(None, symbols, None, None, None, None)
        glue = " AND " if where else " WHERE "
        rows = self._query(
            f"SELECT {_COLUMNS} FROM partitions{where}{glue}state != 'ok' "
            "ORDER BY tbl, symbol, day",
            params,
        )
        return [Entry.from_row(r) for r in rows]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM partitions")[0][0])


def _filters(
    table: str | None,
    symbols: Sequence[str] | None,
    start_day: str | None,
    end_day: str | None,
    days: Sequence[str] | None,
    state: str | None,
) -> tuple[str, list]:
    clauses: list[str] = []
    params: list = []
    for clause, value in (
        ("tbl = ?", table),
        ("day >= ?", start_day),
        ("day <= ?", end_day),
        ("state = ?", state),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for column, values in (("symbol", symbols), ("day", days)):
        if values is not None:  # an empty list matches nothing
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
            params.extend(values)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

"""Dagster's SQLite instance storage, with its connections kept open between statements.

Why: Dagster's own SQLite storages (``SqliteEventLogStorage``, ``SqliteRunStorage``) build a
new SQLAlchemy engine with ``NullPool`` for *every* statement: open the file, run, commit,
close, dispose. Closing the last connection of a WAL database also checkpoints it, and a new
engine starts with an empty compiled-statement cache, so every event is compiled again. A
one-day run of 20 symbols stores about 1,050 events through about 5,500 such connections;
profiled, that was about 40% of the run's CPU (``sqlite3`` close/commit/execute, engine
creation and SQL compilation), far more than the ticks themselves (README, "Run overhead").

These subclasses change *how connections are obtained*: one engine per database file per
process, whose pool keeps connections open, so statements are compiled once and a
connection's open/close/checkpoint is paid once. Files, schema, events and transactions
(one per ``with`` block, as before) and the WAL journal are Dagster's, so an instance
written by either storage is read by the other and ``dagster instance migrate`` works as
before. Two further choices, each configurable: ``synchronous`` (SQLite's durability;
Dagster's default FULL, ``NORMAL`` in the shipped ``dagster.yaml``), and a new run shard
set up with Alembic's migration scripts loaded once per process (``_initdb``), not twice
per run. Engines are dropped in a forked child (a pooled SQLite connection must not cross
``fork``) and when the storage is disposed; at most :data:`MAX_OPEN_SHARDS` run shards stay
open per process (the UI reads many runs).

They are selected by the ``run_storage`` / ``event_log_storage`` blocks of ``dagster.yaml``
(``infra/dagster/dagster.yaml`` and the instance ``ghtrader`` creates,
``runner.STORAGE_YAML``). Without ``base_dir`` they use Dagster's default locations under
``$DAGSTER_HOME`` (the instance's folder whenever Dagster loads it from there), so switching
an existing instance over, or back, keeps its history. Schedule storage (sensor cursors and
ticks) stays Dagster's: it writes rarely.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster import Enum, EnumValue, Field, StringSource
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import get_alembic_config, safe_commit
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event, inspect
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError

#: Run shards (one SQLite file per run) a process keeps open; the index shard always stays.
MAX_OPEN_SHARDS = 8

#: Engines a forked child inherited from its parent: kept alive and unused, never closed here.
_INHERITED: list[Engine] = []

#: SQLite's ``PRAGMA synchronous`` levels a storage may be configured with.
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")


def _home(*parts: str) -> str:
    """A folder under ``$DAGSTER_HOME`` (Dagster's default storage layout)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "DAGSTER_HOME is not set: the pooled SQLite storages default to Dagster's layout "
            "under it; set DAGSTER_HOME or give the storage a base_dir"
        )
    return os.path.join(os.path.abspath(os.path.expanduser(home)), *parts)


#: Both storages' config: Dagster's ``base_dir`` (optional here) and SQLite's durability.
_CONFIG: dict[str, Any] = {
    "base_dir": Field(StringSource, is_required=False),
    # FULL (SQLite's and Dagster's default) syncs the WAL to disk at every commit, about a
    # millisecond per event here. NORMAL syncs at checkpoints: nothing is lost when a process
    # is killed, only the last transactions on a power cut or OS crash, and the database
    # stays consistent either way (https://www.sqlite.org/pragma.html#pragma_synchronous).
    "synchronous": Field(
        Enum("SqliteSynchronous", [EnumValue(v) for v in SYNCHRONOUS_LEVELS]),
        is_required=False,
        default_value="FULL",
    ),
}


class _Engines:
    """One pooled engine per SQLite file, per process, least recently used closed first."""

    def __init__(self, synchronous: str = "FULL", limit: int | None = None) -> None:
        if synchronous.upper() not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous={synchronous!r}: expected one of {SYNCHRONOUS_LEVELS}")
        self._synchronous = synchronous.upper()
        self._limit = limit
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pinned: set[str] = set()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, conn_string: str, *, pinned: bool = False) -> tuple[Engine, bool]:
        """The engine for ``conn_string`` and whether it was just created."""
        with self._lock:
            if os.getpid() != self._pid:
                # A forked child: the parent's pooled connections are not ours to use, nor to
                # close (closing a SQLite connection inherited across fork can disturb the
                # parent's locks); they are kept referenced, unused, and new ones opened.
                _INHERITED.extend(self._engines.values())
                self._engines.clear()
                self._pinned.clear()
                self._pid = os.getpid()
            engine = self._engines.get(conn_string)
            if engine is not None:
                self._engines.move_to_end(conn_string)
                return engine, False
            engine = create_engine(
                conn_string,
                # SQLAlchemy's pool for file databases; connections may be used by any thread
                # (the event-log watcher, the run monitor), one at a time.
                pool_size=2,
                max_overflow=8,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", self._on_connect)
            self._engines[conn_string] = engine
            if pinned:
                self._pinned.add(conn_string)
            if self._limit is not None:
                oldest = [k for k in self._engines if k != conn_string and k not in self._pinned]
                while len(self._engines) > self._limit and oldest:
                    self._engines.pop(oldest.pop(0)).dispose()
            return engine, True

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA synchronous={self._synchronous}")

    def dispose(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                for engine in self._engines.values():
                    engine.dispose()
            else:
                _INHERITED.extend(self._engines.values())  # a parent's: see get()
            self._engines.clear()
            self._pinned.clear()


#: Dagster's event-log migrations, loaded once per process (see ``_initdb``).
_SCRIPTS: list[ScriptDirectory] = []


def _event_log_scripts() -> ScriptDirectory:
    if not _SCRIPTS:
        _SCRIPTS.append(ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__)))
    return _SCRIPTS[0]


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, with pooled connections (module docstring)."""

    def __init__(
        self,
        base_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        synchronous: str = "FULL",
    ):
        self._engines = _Engines(synchronous, limit=MAX_OPEN_SHARDS + 1)
        super().__init__(base_dir or _home("history", "runs"), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return _CONFIG

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's, one transaction per block under the storage's lock; only the engine
        # (and its open connection) outlives the block.
        with self._db_lock:
            engine, _ = self._engines.get(
                self.conn_string_for_shard(shard), pinned=shard == INDEX_SHARD_NAME
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                dbapi = conn.connection.dbapi_connection
                before = dbapi.total_changes if dbapi is not None else 0
                with conn.begin():
                    yield conn
                wrote = dbapi is not None and dbapi.total_changes != before
                if wrote and shard != INDEX_SHARD_NAME:
                    self._signal_write(shard)

    def _signal_write(self, shard: str) -> None:
        """Touch a run shard's file after a transaction wrote to it.

        Dagster's UI follows a live run by watching its shard file for modification
        (``SqliteEventLogStorage.watch``: a file-system watcher on ``<run_id>.db``). With
        Dagster's storage every write closed its connection, which checkpoints the WAL into
        that file; a pooled connection stays open, the writes stay in ``<run_id>.db-wal``
        and the watcher never fired, so a run's page in ``dagster dev`` stopped following
        its events. Touching the file (its mtime) fires the same watcher for one system
        call; reads never touch it, so a watcher's own reads do not wake it again."""
        with contextlib.suppress(OSError):  # the file is Dagster's; a touch is only a signal
            os.utime(self.path_for_shard(shard))

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's shard set-up, with its migration scripts loaded once per process.

        Every run opens a new shard, and Dagster's set-up loads all of Alembic's migration
        scripts twice to find and stamp the head revision (about a tenth of a one-symbol day
        run's CPU). A shard already at the head, or a brand-new file, is handled here with
        the scripts loaded once: the same tables, WAL journal and stamp as Dagster's. Anything
        else (an older revision, a concurrent first use) takes Dagster's own path."""
        script = _event_log_scripts()
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn)
                current = context.get_current_revision()
                if current is not None and current == script.get_current_head():
                    return
                if current is None and not inspect(conn).get_table_names():
                    SqlEventLogStorageMetadata.create_all(conn)
                    conn.execute(sql_text("PRAGMA journal_mode=WAL;"))
                    context.stamp(script, "head")
                    safe_commit(conn)
                    return
        except DatabaseError:
            pass  # e.g. another process is creating it: Dagster's path retries
        super()._initdb(engine, for_index_shard)

    def wipe(self) -> None:
        self._engines.dispose()  # wipe deletes the run shards' files
        super().wipe()

    def dispose(self) -> None:
        self._engines.dispose()
        super().dispose()


class PooledSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage, with pooled connections (module docstring)."""

    def __init__(
        self,
        conn_string: str,
        inst_data: ConfigurableClassData | None = None,
        synchronous: str = "FULL",
    ):
        self._engines = _Engines(synchronous)
        super().__init__(conn_string, inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return _CONFIG

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteRunStorage:
        base_dir = config_value.get("base_dir") or _home("history")
        storage = cls.from_local(base_dir=base_dir, inst_data=inst_data)
        storage._engines.dispose()  # from_local may have migrated through the default
        storage._engines = _Engines(config_value.get("synchronous", "FULL"))
        return storage

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        engine, _ = self._engines.get(self._conn_string)
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self._engines.dispose()
        super().dispose()

"""PGWire access (psycopg 3 + psycopg_pool): metadata queries, DDL, and the read path when
QWP is not in use.

* One lazily opened :class:`psycopg_pool.ConnectionPool` per store (``min_size=0``: no
  connection is made until the first query, and idle ones are dropped).
* Parameters only, always; statements run with ``prepare=True`` so the repeated ones
  (coverage, WAL status, partition reads) are parsed once per connection.
* Binary result format (``binary=True``): no text parsing of 60k x 33 values.
* :meth:`PgClient.wait_for_wal` waits until QuestDB has applied every WAL transaction
  committed so far (``writerTxn >= sequencerTxn`` read after the write), with a timeout,
  and fails clearly when the table is suspended.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb.queries import Query, wal_status
from ghtrader_assets.stores.questdb.settings import (
    PROBE_TIMEOUT_SECONDS,
    QuestDBSettings,
    QuestDBUnreachableError,
)

logger = logging.getLogger(__name__)


class SqlRunner(Protocol):
    """What the store needs from a SQL connection (a fake implements it in unit tests)."""

    def fetch(self, query: Query) -> list[tuple[Any, ...]]: ...

    def fetch_df(self, query: Query) -> pd.DataFrame: ...

    def execute(self, query: Query) -> None: ...

    def execute_ddl(self, sql: str) -> None: ...

    def close(self) -> None: ...


class PgClient:
    """psycopg connection pool wrapper implementing :class:`SqlRunner`."""

    def __init__(self, settings: QuestDBSettings) -> None:
        self._settings = settings
        self._pool: Any = None
        self._lock = threading.Lock()

    def _get_pool(self) -> Any:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from psycopg_pool import ConnectionPool

                    kwargs = self._settings.pg_kwargs()
                    pool = ConnectionPool(
                        "",
                        kwargs=kwargs,
                        min_size=0,
                        max_size=self._settings.pool_max_size,
                        open=False,
                        name="ghtrader-questdb",
                        # How long a caller waits for a connection: the start-up probe
                        # already failed fast if the server is down, so this only covers
                        # a server that stops answering mid-run.
                        timeout=self._settings.connect_timeout,
                        max_idle=300,
                        # A connection left over from before a server restart is noticed
                        # (QuestDB answers the empty query) instead of failing a read.
                        check=ConnectionPool.check_connection,
                    )
                    pool.open(wait=False)
                    self._pool = pool
        return self._pool

    def _run(self, what: str, fn: Callable[[Any], Any]) -> Any:
        import psycopg

        try:
            with self._get_pool().connection() as conn:
                return fn(conn)
        except psycopg.Error as exc:
            raise StoreError(
                f"QuestDB PGWire {self._settings.host}:{self._settings.pg_port}: {what} failed: "
                f"{type(exc).__name__}: {self._settings.redact(exc)}"
            ) from None
        except Exception as exc:
            # psycopg_pool.PoolTimeout and friends: the server is unreachable.
            if type(exc).__module__.startswith("psycopg"):
                raise StoreError(
                    f"QuestDB PGWire {self._settings.host}:{self._settings.pg_port}: {what} "
                    f"failed: {type(exc).__name__}: {self._settings.redact(exc)}"
                ) from None
            raise

    def fetch(self, query: Query) -> list[tuple[Any, ...]]:
        def run(conn: Any) -> list[tuple[Any, ...]]:
            with conn.cursor(binary=True) as cur:
                cur.execute(query.sql, _params(query), prepare=True)
                return cur.fetchall()

        return self._run(_describe(query), run)

    def fetch_df(self, query: Query) -> pd.DataFrame:
        def run(conn: Any) -> pd.DataFrame:
            with conn.cursor(binary=True) as cur:
                cur.execute(query.sql, _params(query), prepare=True)
                rows = cur.fetchall()
                columns = [d.name for d in cur.description or ()]
            return pd.DataFrame.from_records(rows, columns=columns)

        return self._run(_describe(query), run)

    def execute(self, query: Query) -> None:
        def run(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.execute(query.sql, _params(query))

        self._run(_describe(query), run)

    def execute_ddl(self, sql: str) -> None:
        """DDL built only from validated identifiers (see :mod:`.ddl`); no parameters."""

        def run(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.execute(sql)

        self._run(_describe(Query(sql)), run)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def probe(
    settings: QuestDBSettings,
    *,
    timeout: float = PROBE_TIMEOUT_SECONDS,
    connect: Callable[..., Any] = socket.create_connection,
    pg_connect: Callable[..., Any] | None = None,
) -> None:
    """Check, within seconds, that a QuestDB answers where the settings point.

    One PGWire login with a short timeout (not through the pool, which would wait out its
    own timeout and retry), so a refused port, a silent host, something else listening on
    the port and a rejected password all fail here; and a TCP connect to the HTTP port
    (ILP/QWP). The message says which address was tried, which variables set it, and that
    nothing was written.
    """
    wait = max(1.0, min(timeout, settings.connect_timeout))
    failures = []
    started = time.monotonic()
    try:
        if pg_connect is None:
            import psycopg

            pg_connect = psycopg.connect
        kwargs = {**settings.pg_kwargs(), "connect_timeout": max(2, int(wait))}
        pg_connect(**kwargs).close()
    except Exception as exc:
        failures.append(
            f"PGWire {settings.host}:{settings.pg_port} (GHTRADER_QDB_HOST, "
            f"GHTRADER_QDB_PG_PORT; user GHTRADER_QDB_USER/GHTRADER_QDB_PASSWORD) failed after "
            f"{time.monotonic() - started:.1f}s: {_one_line(settings.redact(_reason(exc)))}"
        )
    started = time.monotonic()
    try:
        connect((settings.host, settings.ilp_port), timeout=wait).close()
    except OSError as exc:
        failures.append(
            f"HTTP (ILP/QWP) {settings.host}:{settings.ilp_port} (GHTRADER_QDB_HOST, "
            f"GHTRADER_QDB_ILP_PORT) failed after {time.monotonic() - started:.1f}s: "
            f"{_one_line(settings.redact(_reason(exc)))}"
        )
    if failures:
        raise QuestDBUnreachableError(
            f"QuestDB is unreachable: {'; '.join(failures)}. Check that the server runs and "
            "that these variables point at it; nothing was written"
        )


def _reason(exc: BaseException) -> str:
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _params(query: Query) -> tuple[object, ...]:
    """Bind values as psycopg should send them: every Python ``int`` as ``int8``, since
    psycopg would otherwise pick ``int2``/``int4`` for small values and all our integer
    columns are ``LONG``."""
    from psycopg.types.numeric import Int8

    return tuple(
        Int8(p) if isinstance(p, int) and not isinstance(p, bool) else p for p in query.params
    )


def _describe(query: Query) -> str:
    words = query.sql.split()
    return " ".join(words[:6]) + (" ..." if len(words) > 6 else "")


def wait_for_wal(
    runner: SqlRunner,
    table: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Block until every WAL transaction of ``table`` committed before the call is applied.

    Reads ``sequencerTxn`` once (the transactions to wait for) and polls ``writerTxn`` until
    it catches up, so concurrent writers to the same table cannot starve the wait.
    """
    deadline = clock() + timeout
    target: int | None = None
    delay = 0.005
    while True:
        rows = runner.fetch(wal_status(table))
        if not rows:
            raise StoreError(
                f"QuestDB table {table!r} is not a WAL table (absent from wal_tables())"
            )
        suspended, writer_txn, sequencer_txn, error_tag, error_message = rows[0]
        if suspended:
            raise StoreError(
                f"QuestDB table {table!r} is suspended (WAL apply stopped at txn {writer_txn} of "
                f"{sequencer_txn}; {error_tag or 'no tag'}: {error_message or 'no message'}). "
                f'Fix the cause, then run ALTER TABLE "{table}" RESUME WAL'
            )
        if target is None:
            target = int(sequencer_txn)
        if int(writer_txn) >= target:
            return
        if clock() >= deadline:
            raise StoreError(
                f"QuestDB table {table!r}: WAL apply did not catch up within {timeout:.0f}s "
                f"(writerTxn {writer_txn}, waiting for {target}); the server may be overloaded"
            )
        sleep(delay)
        delay = min(delay * 2, 0.25)

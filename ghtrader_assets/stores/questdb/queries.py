"""Every SQL statement the QuestDB store runs, as (text, parameters) pairs.

Values always travel as bind parameters; the only things spliced into SQL text are
identifiers that :func:`~.ddl.quote` has validated. Statements are written with psycopg's
``%s`` placeholders and converted to QWP's ``$1..$N`` by :meth:`Query.qwp_sql`, so one
builder serves both transports. Statements with a variable number of symbols pad the
placeholder list to a power of two (repeating the last symbol), so the server and psycopg's
prepared-statement cache see a handful of distinct texts instead of one per list length.

Trading-day ``ts`` bounds come from the calendar's own rule (a tick belongs to trading day
D iff its Asia/Shanghai time is in ``[previous_trading_day(D) 18:00, D 18:00)``, which
covers the night session of the evening before, Friday nights and after-midnight sessions
included), so QuestDB prunes every ``PARTITION BY DAY`` partition outside the window.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ghtrader_assets.calendar import NIGHT_CUTOFF, TZ, previous_trading_day
from ghtrader_assets.schema import TableSpec
from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb.ddl import WRITE_ID_COLUMN, quote

#: ``trading_day`` value given to rows retired by a re-materialization (never an ISO date,
#: so no read by day can see them; every other read filters it out explicitly).
RETIRED_DAY = "retired"
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UTC = dt.UTC


@dataclass(frozen=True)
class Query:
    """One statement and its bind parameters (``%s`` placeholders)."""

    sql: str
    params: tuple[object, ...] = ()

    def __post_init__(self) -> None:
        n = self.sql.count("%s")
        if n != len(self.params) or "%" in self.sql.replace("%s", ""):
            raise StoreError(
                f"internal: {n} placeholders for {len(self.params)} params in {self.sql!r}"
            )

    def qwp_sql(self) -> str:
        """The statement with QWP's positional ``$1..$N`` placeholders."""
        parts = self.sql.split("%s")
        out = [parts[0]]
        for i, part in enumerate(parts[1:], start=1):
            out.append(f"${i}{part}")
        return "".join(out)


def parse_day(trading_day: str) -> dt.date:
    """An ISO ``YYYY-MM-DD`` trading day, or :class:`StoreError` naming the bad value."""
    if not isinstance(trading_day, str) or not _DAY_RE.match(trading_day):
        raise StoreError(f"trading_day {trading_day!r} is not an ISO date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(trading_day)
    except ValueError as exc:
        raise StoreError(f"trading_day {trading_day!r}: {exc}") from None


def day_bounds(trading_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC ``[start, end)`` holding every tick of ``trading_day`` (the calendar's rule)."""
    start = dt.datetime.combine(previous_trading_day(trading_day), NIGHT_CUTOFF, tzinfo=TZ)
    end = dt.datetime.combine(trading_day, NIGHT_CUTOFF, tzinfo=TZ)
    return start.astimezone(_UTC), end.astimezone(_UTC)


def _bucket(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


def in_list(column: str, values: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``"col" IN (%s, ...)`` padded to a power of two by repeating the last value."""
    if not values:
        raise StoreError("internal: IN list needs at least one value")
    padded = list(values) + [values[-1]] * (_bucket(len(values)) - len(values))
    return f"{quote(column)} IN ({', '.join(['%s'] * len(padded))})", tuple(padded)


def _select_list(spec: TableSpec) -> str:
    return ", ".join(quote(c) for c in spec.columns)


def partition_filter(
    spec: TableSpec, symbol: str, day: dt.date, *, pruned: bool
) -> tuple[str, tuple[object, ...]]:
    """WHERE clause selecting one (symbol, trading_day) partition, with ``ts`` bounds when
    the table keeps the calendar invariant (``pruned``)."""
    where = f"{quote('symbol')} = %s AND {quote('trading_day')} = %s"
    params: tuple[object, ...] = (symbol, day.isoformat())
    if pruned:
        lo, hi = day_bounds(day)
        ts = quote(spec.timestamp)
        where += f" AND {ts} >= %s AND {ts} < %s"
        params += (lo, hi)
    return where, params


def select_partition(
    spec: TableSpec, table: str, symbol: str, day: dt.date, *, pruned: bool
) -> Query:
    where, params = partition_filter(spec, symbol, day, pruned=pruned)
    return Query(
        f"SELECT {_select_list(spec)} FROM {quote(table, 'table name')} WHERE {where}", params
    )


def select_table(
    spec: TableSpec,
    table: str,
    symbols: Sequence[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    *,
    pruned: bool,
) -> Query:
    """Rows of many partitions. Day bounds become ``ts`` bounds on pruned tables; callers
    filter ``trading_day`` exactly on the client as well (SYMBOL columns have no range
    comparison in QuestDB)."""
    clauses = [f"{quote('trading_day')} != %s"]
    params: list[object] = [RETIRED_DAY]
    if symbols:
        clause, values = in_list("symbol", symbols)
        clauses.append(clause)
        params.extend(values)
    if pruned:
        ts = quote(spec.timestamp)
        if start is not None:
            clauses.append(f"{ts} >= %s")
            params.append(day_bounds(start)[0])
        if end is not None:
            clauses.append(f"{ts} < %s")
            params.append(day_bounds(end)[1])
    return Query(
        f"SELECT {_select_list(spec)} FROM {quote(table, 'table name')} WHERE {' AND '.join(clauses)}",
        tuple(params),
    )


def select_edge_tick(
    spec: TableSpec, table: str, symbol: str, start: dt.date, end: dt.date, *, last: bool
) -> Query:
    """The ``ts`` of the first (or ``last``) live row of ``symbol`` between trading days
    ``start`` and ``end``: one row read in designated-timestamp order, so QuestDB stops at
    the first match from that end. Coverage falls back to it only for symbols whose
    partition log has days without ``ts`` bounds (see :mod:`.registry`)."""
    ts = quote(spec.timestamp)
    return Query(
        f"SELECT {ts} FROM {quote(table, 'table name')} "
        f"WHERE {quote('symbol')} = %s AND {quote('trading_day')} != %s "
        f"AND {ts} >= %s AND {ts} < %s ORDER BY {ts}{' DESC' if last else ''} LIMIT 1",
        (symbol, RETIRED_DAY, day_bounds(start)[0], day_bounds(end)[1]),
    )


def select_latest(spec: TableSpec, table: str, symbols: Sequence[str]) -> Query:
    """The latest live row per symbol: WHERE runs before LATEST ON, so retired rows never
    win."""
    clause, values = in_list("symbol", symbols)
    return Query(
        f"SELECT {_select_list(spec)} FROM {quote(table, 'table name')} "
        f"WHERE {clause} AND {quote('trading_day')} != %s "
        f"LATEST ON {quote(spec.timestamp)} PARTITION BY {quote('symbol')}",
        (*values, RETIRED_DAY),
    )


def count_written(
    spec: TableSpec,
    table: str,
    symbol: str,
    day: dt.date,
    write_id: int,
    *,
    pruned: bool,
    stale: bool,
) -> Query:
    """Rows of the partition stamped (``stale=False``) or not stamped (``stale=True``)
    with ``write_id``."""
    where, params = partition_filter(spec, symbol, day, pruned=pruned)
    op = "!=" if stale else "="
    return Query(
        f"SELECT count() FROM {quote(table, 'table name')} WHERE {where} AND {quote(WRITE_ID_COLUMN)} {op} %s",
        (*params, write_id),
    )


def count_by_write(
    spec: TableSpec, table: str, symbol: str, days: Sequence[dt.date], *, pruned: bool
) -> Query:
    """Rows per (trading_day, write_id) of ``symbol`` on ``days``: one grouped query that
    verifies a whole run's writes (:meth:`~.store.QuestDBStore.settle`). On pruned tables
    the ``ts`` bounds span the days, so only their partitions are read."""
    days = sorted(set(days))
    clause, values = in_list("trading_day", [d.isoformat() for d in days])
    where = f"{quote('symbol')} = %s AND {clause}"
    params: tuple[object, ...] = (symbol, *values)
    if pruned:
        ts = quote(spec.timestamp)
        where += f" AND {ts} >= %s AND {ts} < %s"
        params += (day_bounds(days[0])[0], day_bounds(days[-1])[1])
    day, wid = quote("trading_day"), quote(WRITE_ID_COLUMN)
    return Query(
        f"SELECT {day}, {wid}, count() FROM {quote(table, 'table name')} "
        f"WHERE {where} GROUP BY {day}, {wid}",
        params,
    )


def retire_stale(
    spec: TableSpec, table: str, symbol: str, day: dt.date, write_id: int, *, pruned: bool
) -> Query:
    """Move rows of the partition that the latest write did not stamp out of it."""
    where, params = partition_filter(spec, symbol, day, pruned=pruned)
    # The new value is a fixed literal, not a bind: a WAL UPDATE stores its binds for replay,
    # and an untyped bind assigned to a SYMBOL column is not one it is known to replay.
    if not RETIRED_DAY.isidentifier():  # a constant; the check keeps it a safe literal
        raise ValueError(f"RETIRED_DAY must be a plain word, got {RETIRED_DAY!r}")
    return Query(
        f"UPDATE {quote(table, 'table name')} SET {quote('trading_day')} = '{RETIRED_DAY}' "
        f"WHERE {where} AND {quote(WRITE_ID_COLUMN)} != %s",
        (*params, write_id),
    )


def wal_status(table: str) -> Query:
    return Query(
        'SELECT "suspended", "writerTxn", "sequencerTxn", "errorTag", "errorMessage" '
        'FROM wal_tables() WHERE "name" = %s',
        (table,),
    )


def drop_table(table: str) -> Query:
    return Query(f"DROP TABLE IF EXISTS {quote(table, 'table name')}")


def drop_view(view: str) -> Query:
    return Query(f"DROP VIEW IF EXISTS {quote(view, 'view name')}")

"""The partition log: one row per (table, symbol, trading_day) this store has written.

QuestDB has no notion of an empty partition: a trading day written with zero rows leaves
nothing behind, so a store that only looked at the data would report such a day as never
materialized (the embedded store keeps an empty file for it). Every successful
:meth:`~.store.QuestDBStore.write_partition` therefore upserts a row here, empty or not,
with the row count and the first and last designated timestamp of what it wrote (``NULL``
for an empty day). That makes :meth:`~.store.QuestDBStore.partitions` and the whole of
:meth:`~.store.QuestDBStore.coverage` (days, rows, ``ts`` bounds) one grouped scan of this
small table instead of the tick table (years of ticks: tens of GB per scan).

``ts`` is the trading day's midnight in Asia/Shanghai (as the per-day tables use), and the
upsert keys ``(ts, table_name, symbol)`` keep one row per partition however often it is
re-written: a re-write replaces the whole row (rows, bounds, ``write_id``), so sums over
the log count each day once, with its latest content. The log is written after the data
is verified, so it describes the last *successful* write of each day.

``first_ts``/``last_ts`` were added after the first release: a log table created before
them gets the columns added on start-up (:meth:`~.store.QuestDBStore.ensure_table` always
auto-adds missing columns of this internal table), and its older rows keep ``NULL`` bounds
on non-empty days. :func:`coverage_by_symbol` reports the rows of such days
(``unbounded_rows``) so coverage can fall back to two bounded tick queries for that symbol
until those days are re-written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandera.pandas as pa

from ghtrader_assets.calendar import TZ, day_start_utc
from ghtrader_assets.schema import TableSpec
from ghtrader_assets.stores.questdb.ddl import WRITE_ID_COLUMN, quote
from ghtrader_assets.stores.questdb.queries import Query, in_list

PARTITION_LOG = TableSpec(
    name="store_partitions",
    schema=pa.DataFrameSchema(
        {
            "ts": pa.Column("datetime64[ns, UTC]"),
            "table_name": pa.Column(str),
            "symbol": pa.Column(str),
            "trading_day": pa.Column(str),
            "rows": pa.Column("int64"),
            "written_at": pa.Column("datetime64[ns, UTC]"),
            "first_ts": pa.Column("datetime64[ns, UTC]", nullable=True),
            "last_ts": pa.Column("datetime64[ns, UTC]", nullable=True),
        },
        strict=True,
        ordered=True,
        name="store_partitions",
    ),
    timestamp="ts",
    dedup_keys=("ts", "table_name", "symbol"),
    symbol_columns=("table_name", "symbol", "trading_day"),
)
#: One row per symbol-day: month partitions keep the file count small.
PARTITION_LOG_PARTITION_BY = "MONTH"


def day_start(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in Asia/Shanghai, as an aware UTC datetime (for SQL binds)."""
    return day_start_utc(day).to_pydatetime()


def day_of(ts: dt.datetime) -> str:
    """The trading day whose :func:`day_start` is ``ts`` (naive values are UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(TZ).date().isoformat()


def record(
    log_table: str,
    table: str,
    symbol: str,
    day: dt.date,
    rows: int,
    write_id: int,
    first_ts: dt.datetime | None,
    last_ts: dt.datetime | None,
) -> Query:
    """Upsert the log row of one partition; ``first_ts``/``last_ts`` are the bounds of the
    rows just written (``None`` for an empty day)."""
    cols = [
        "ts",
        "table_name",
        "symbol",
        "trading_day",
        "rows",
        "written_at",
        "first_ts",
        "last_ts",
        WRITE_ID_COLUMN,
    ]
    return Query(
        f"INSERT INTO {quote(log_table, 'table name')} ({', '.join(quote(c) for c in cols)}) "
        f"VALUES ({', '.join(['%s'] * len(cols))})",
        (
            day_start(day),
            table,
            symbol,
            day.isoformat(),
            int(rows),
            dt.datetime.now(dt.UTC),
            first_ts,
            last_ts,
            int(write_id),
        ),
    )


def day_rows(log_table: str, table: str, symbol: str) -> Query:
    """Every logged day of ``symbol`` in ``table`` with its row count."""
    return Query(
        f"SELECT {quote('trading_day')}, {quote('rows')} FROM {quote(log_table, 'table name')} "
        f"WHERE {quote('table_name')} = %s AND {quote('symbol')} = %s",
        (table, symbol),
    )


def days(log_table: str, table: str, symbol: str) -> Query:
    return Query(
        f"SELECT {quote('trading_day')} FROM {quote(log_table, 'table name')} "
        f"WHERE {quote('table_name')} = %s AND {quote('symbol')} = %s",
        (table, symbol),
    )


def coverage_by_symbol(log_table: str, table: str, symbols: Sequence[str]) -> Query:
    """Per symbol, from the log alone: days written (empty ones included), first and last
    day (as their midnight ``ts``), rows, first and last ``ts`` (aggregates skip the
    ``NULL`` bounds of empty days), and ``unbounded_rows``: rows of days logged without
    bounds (before the bound columns existed; ``0`` or ``NULL`` when there are none)."""
    clause, values = in_list("symbol", symbols)
    sym, ts, rows = quote("symbol"), quote("ts"), quote("rows")
    first, last = quote("first_ts"), quote("last_ts")
    return Query(
        f"SELECT {sym}, count() AS n_days, min({ts}) AS first_day, max({ts}) AS last_day, "
        f"sum({rows}) AS n_rows, min({first}) AS first_tick, max({last}) AS last_tick, "
        f"sum(CASE WHEN {first} IS NULL THEN {rows} END) AS unbounded_rows "
        f"FROM {quote(log_table, 'table name')} "
        f"WHERE {quote('table_name')} = %s AND {clause} GROUP BY {sym}",
        (table, *values),
    )

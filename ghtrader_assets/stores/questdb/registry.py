"""The partition log: one row per (table, symbol, trading_day) this store has written.

QuestDB has no notion of an empty partition: a trading day written with zero rows leaves
nothing behind, so a store that only looked at the data would report such a day as never
materialized (the embedded store keeps an empty file for it). Every successful
:meth:`~.store.QuestDBStore.write_partition` therefore upserts a row here, empty or not.
It also makes :meth:`~.store.QuestDBStore.partitions` and the day counts of
:meth:`~.store.QuestDBStore.coverage` a scan of a tiny table instead of the tick table.

``ts`` is the trading day's midnight in Asia/Shanghai (as the per-day tables use), and the
upsert keys ``(ts, table_name, symbol)`` keep one row per partition however often it is
re-written.
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
    log_table: str, table: str, symbol: str, day: dt.date, rows: int, write_id: int
) -> Query:
    cols = ["ts", "table_name", "symbol", "trading_day", "rows", "written_at", WRITE_ID_COLUMN]
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
            int(write_id),
        ),
    )


def days(log_table: str, table: str, symbol: str) -> Query:
    return Query(
        f"SELECT {quote('trading_day')} FROM {quote(log_table, 'table name')} "
        f"WHERE {quote('table_name')} = %s AND {quote('symbol')} = %s",
        (table, symbol),
    )


def day_bounds_by_symbol(log_table: str, table: str, symbols: Sequence[str]) -> Query:
    """Per symbol: days written, first and last day (as their midnight ``ts``)."""
    clause, values = in_list("symbol", symbols)
    sym, ts = quote("symbol"), quote("ts")
    return Query(
        f"SELECT {sym}, count() AS n_days, min({ts}) AS first_ts, max({ts}) AS last_ts "
        f"FROM {quote(log_table, 'table name')} "
        f"WHERE {quote('table_name')} = %s AND {clause} GROUP BY {sym}",
        (table, *values),
    )

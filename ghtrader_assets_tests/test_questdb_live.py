"""QuestDB store against a live server (skipped unless GHTRADER_QDB_HOST is set).

Every test works in tables named ``ghtrader_test_<uuid8>_*`` and drops them at the end, so
it can run against a shared server. Run with, e.g.::

    GHTRADER_QDB_HOST=localhost python -m pytest ghtrader_assets_tests/test_questdb_live.py -q
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets import schema
from ghtrader_assets.calendar import TZ
from ghtrader_assets.schema import MANIFESTS, ROLL_SCHEDULE, TICKS, TableSpec, conform
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore, SchemaDriftError
from ghtrader_assets.stores.questdb.ddl import create_table_sql, table_columns_sql
from ghtrader_assets.stores.questdb.queries import Query, day_bounds, wal_status
from ghtrader_assets.stores.questdb.reader import wait_for_wal
from ghtrader_assets.stores.questdb.registry import PARTITION_LOG, day_start
from ghtrader_assets.symbols import parse_main_symbol

pytestmark = [
    pytest.mark.questdb,
    pytest.mark.skipif(
        not os.environ.get("GHTRADER_QDB_HOST", "").strip(),
        reason="needs a live QuestDB: set GHTRADER_QDB_HOST (and GHTRADER_QDB_* as needed)",
    ),
]

CU, AU, M = "KQ.m@SHFE.cu", "KQ.m@SHFE.au", "KQ.m@DCE.m"
MONDAY, TUESDAY = dt.date(2025, 1, 6), dt.date(2025, 1, 7)
TRANSPORTS = ["ilp_http", "qwp"]
ALL_TABLES = (TICKS, ROLL_SCHEDULE, MANIFESTS, PARTITION_LOG)

StoreFactory = Callable[..., QuestDBStore]


@pytest.fixture
def make_store() -> Iterator[StoreFactory]:
    """Stores sharing one unique table prefix; every table is dropped afterwards."""
    prefix = f"ghtrader_test_{uuid.uuid4().hex[:8]}_"
    base = dataclasses.replace(
        QuestDBSettings.from_env(), table_prefix=prefix, cache_ttl=None, wal_timeout=60.0
    )
    stores: list[QuestDBStore] = []

    def make(transport: str = "ilp_http", **kw: Any) -> QuestDBStore:
        sender_factory = kw.pop("sender_factory", None)
        settings = dataclasses.replace(base, transport=transport, **kw)
        store = QuestDBStore(settings, sender_factory=sender_factory)
        stores.append(store)
        return store

    yield make
    # Close (settle) the test's stores while their tables still exist: closing verifies
    # pending writes and raises when one did not land, which a dropped table would fake.
    cleaner = QuestDBStore(dataclasses.replace(base, transport="ilp_http"))
    try:
        for store in stores:
            store.close()
    finally:
        try:
            for spec in ALL_TABLES:
                cleaner.drop_table(spec)
        finally:
            cleaner.close()


def simulated(symbol: str, day: dt.date) -> pd.DataFrame:
    source = SimulatedSource(seed=7)
    return source.ticks(source.roll_entry(parse_main_symbol(symbol), day))


def edge_ticks(day: dt.date = MONDAY) -> pd.DataFrame:
    """Ticks that exercise the layout: nanosecond timestamps (kept via ``datetime``), two
    distinct ticks sharing a timestamp, NaN book levels, a Friday-night tick for Monday."""
    base = pd.Timestamp(f"{day} 09:00", tz=TZ).tz_convert("UTC").as_unit("ns")
    friday_night = pd.Timestamp("2025-01-03 21:00:00.25", tz=TZ).tz_convert("UTC").as_unit("ns")
    ts = pd.DatetimeIndex(
        [
            friday_night,
            base,
            base,  # same timestamp, different id: both must survive
            base + pd.Timedelta(123_456_789, "ns"),  # sub-microsecond nanoseconds
            base + pd.Timedelta(1, "s"),
        ]
    )
    n = len(ts)
    rng = np.random.default_rng(1)
    frame: dict[str, Any] = {
        "symbol": CU,
        "trading_day": day.isoformat(),
        "ts": ts,
        "datetime": ts.asi8,
        "id": np.array([10, 11, 12, 13, 14], dtype="int64"),
        "underlying": "SHFE.cu2502",
        "source": "test",
    }
    for col in schema.PRICE_COLUMNS + schema.CUMULATIVE_COLUMNS + schema.BOOK_COLUMNS:
        frame[col] = rng.uniform(1, 1e5, n)
    out = conform(pd.DataFrame(frame), TICKS)
    out.loc[1, ["bid_price5", "ask_volume4"]] = np.nan
    return out


def count_all(store: QuestDBStore, spec: TableSpec, symbol: str) -> int:
    """Physical rows of ``symbol``, retired ones included (what dedup must keep flat)."""
    store.settle()  # this store's writes applied and verified
    table = store.table_name(spec)
    rows = store.pg.fetch(Query(f'SELECT count() FROM "{table}" WHERE "symbol" = %s', (symbol,)))
    return int(rows[0][0])


def expected(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    order = ["symbol", spec.timestamp] + [
        k for k in spec.dedup_keys if k not in ("symbol", spec.timestamp)
    ]
    return conform(frame, spec).sort_values(order, kind="mergesort").reset_index(drop=True)


# -- tables --------------------------------------------------------------------------------


def test_tables_are_created_idempotently_as_wal_dedup_day_partitioned(make_store) -> None:
    first, second = make_store(), make_store()
    table = first.ensure_table(TICKS)
    assert second.ensure_table(TICKS) == table  # exists already: no error, layout checked
    columns = first.pg.fetch(Query(table_columns_sql(table)))
    assert [name for name, _, designated, _ in columns if designated] == ["ts"]
    assert {name for name, _, _, key in columns if key} == {"ts", "symbol", "id"}
    suspended, *_ = first.pg.fetch(wal_status(table))[0]  # listed: a WAL table
    assert suspended is False


def test_schema_drift_is_detected_and_missing_columns_can_be_added(make_store) -> None:
    store = make_store()
    narrow = dataclasses.replace(
        MANIFESTS, schema=MANIFESTS.schema.remove_columns(["code_version", "check_outcomes"])
    )
    table = store.table_name(MANIFESTS)
    store.pg.execute_ddl(create_table_sql(narrow, table))
    with pytest.raises(SchemaDriftError, match="missing columns: code_version VARCHAR"):
        store.ensure_table(MANIFESTS)
    fixer = make_store(auto_add_columns=True)
    assert fixer.ensure_table(MANIFESTS) == table
    assert make_store().ensure_table(MANIFESTS) == table  # now matches


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_day_reads_back_exactly_and_rewrites_keep_the_count(make_store, transport: str) -> None:
    store = make_store(transport)
    assert store.transport == transport
    day = simulated(CU, MONDAY)
    stats = store.write_partition(TICKS, CU, MONDAY.isoformat(), day)
    assert stats.rows == len(day) > 10_000
    back = store.read_partition(TICKS, CU, MONDAY.isoformat())
    pd.testing.assert_frame_equal(back, expected(TICKS, day), check_exact=True)

    store.write_partition(TICKS, CU, MONDAY.isoformat(), day)  # re-materialize
    assert count_all(store, TICKS, CU) == len(day)
    assert len(store.read_partition(TICKS, CU, MONDAY.isoformat())) == len(day)
    assert store.partitions(TICKS, CU) == [MONDAY.isoformat()]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_edge_ticks_round_trip_at_nanosecond_precision(make_store, transport: str) -> None:
    store = make_store(transport)
    frame = edge_ticks()
    store.write_partition(TICKS, CU, MONDAY.isoformat(), frame)
    back = store.read_partition(TICKS, CU, MONDAY.isoformat())
    pd.testing.assert_frame_equal(back, expected(TICKS, frame), check_exact=True)
    assert back["ts"].iloc[0] < pd.Timestamp(MONDAY.isoformat(), tz=TZ)  # Friday night kept


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_per_day_tables_round_trip_with_null_timestamps(make_store, transport: str) -> None:
    store = make_store(transport)
    row = {
        "symbol": CU,
        "trading_day": MONDAY.isoformat(),
        "ts": pd.Timestamp(day_start(MONDAY)),
        "underlying": "SHFE.cu2502",
        "source": "test",
        "rows": 0,
        "first_tick": pd.NaT,
        "last_tick": pd.NaT,
        "schema_hash": schema.schema_hash(TICKS),
        "code_version": "abc123",
        "checks_passed": 3,
        "checks_failed": 1,
        "check_outcomes": '{"gaps": {"passed": false, "severity": "WARN"}}',
        "created_at": pd.Timestamp("2025-01-06 08:00:01.123456", tz="UTC"),
    }
    manifest = conform(pd.DataFrame([row]), MANIFESTS)
    store.write_partition(MANIFESTS, CU, MONDAY.isoformat(), manifest)
    back = store.read_partition(MANIFESTS, CU, MONDAY.isoformat())
    pd.testing.assert_frame_equal(back, expected(MANIFESTS, manifest), check_exact=True)
    table = store.read_table(MANIFESTS, symbols=[CU], start_day="2025-01-01", end_day="2025-01-31")
    pd.testing.assert_frame_equal(table, back)
    assert store.read_table(MANIFESTS, symbols=[CU], start_day="2025-01-07").empty


def test_changed_source_retires_rows_that_disappeared(make_store) -> None:
    store = make_store()
    day = simulated(CU, MONDAY)
    store.write_partition(TICKS, CU, MONDAY.isoformat(), day)
    shrunk = day.iloc[100:].copy()
    shrunk["last_price"] += 1.0  # values changed too
    store.write_partition(TICKS, CU, MONDAY.isoformat(), shrunk)
    back = store.read_partition(TICKS, CU, MONDAY.isoformat())
    pd.testing.assert_frame_equal(back, expected(TICKS, shrunk), check_exact=True)
    assert store.coverage([CU])["rows"].tolist() == [len(shrunk)]
    assert store.latest([CU])["last_price"].iloc[0] == shrunk["last_price"].iloc[-1]
    assert count_all(store, TICKS, CU) == len(day)  # retired, not duplicated

    store.write_partition(TICKS, CU, MONDAY.isoformat(), day)  # the rows come back
    pd.testing.assert_frame_equal(
        store.read_partition(TICKS, CU, MONDAY.isoformat()), expected(TICKS, day)
    )
    store.write_partition(TICKS, CU, MONDAY.isoformat(), day.iloc[:0])  # an empty day
    assert store.read_partition(TICKS, CU, MONDAY.isoformat()).empty
    assert store.partitions(TICKS, CU) == [MONDAY.isoformat()]
    assert count_all(store, TICKS, CU) == len(day)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_current_view_shows_exactly_what_reads_return(make_store, transport: str) -> None:
    """Researchers query ``<table>_current`` in SQL: retired rows never show there."""
    from ghtrader_assets.stores.questdb.ddl import current_view_name

    store = make_store(transport)
    day = simulated(CU, MONDAY)
    store.write_partition(TICKS, CU, MONDAY.isoformat(), day)
    shrunk = day.iloc[100:].assign(last_price=day["last_price"].iloc[100:] + 1.0)
    store.write_partition(TICKS, CU, MONDAY.isoformat(), shrunk)
    back = store.read_partition(TICKS, CU, MONDAY.isoformat())
    view = current_view_name(store.table_name(TICKS))
    lo, hi = day_bounds(MONDAY)
    (n, total), *_ = store.pg.fetch(
        Query(
            f'SELECT count(), sum("last_price") FROM "{view}" '
            'WHERE "symbol" = %s AND "ts" >= %s AND "ts" < %s',
            (CU, lo, hi),
        )
    )
    assert n == len(back) == len(shrunk) and count_all(store, TICKS, CU) == len(day)
    assert total == pytest.approx(back["last_price"].sum())


# -- coverage and latest -------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_coverage_and_latest_for_many_symbols(make_store, transport: str) -> None:
    store = make_store(transport)
    frames: dict[str, list[pd.DataFrame]] = {CU: [], AU: [], M: []}
    for sym in frames:
        for day in (MONDAY, TUESDAY):
            frame = simulated(sym, day)
            store.write_partition(TICKS, sym, day.isoformat(), frame)
            frames[sym].append(frame)
    store.write_partition(TICKS, M, "2025-01-08", simulated(M, TUESDAY).iloc[:0])  # empty day
    absent = "KQ.m@CZCE.SR"

    cov = store.coverage([CU, AU, M, absent]).set_index("symbol")
    for sym, parts in frames.items():
        all_rows = pd.concat(parts)
        assert cov.at[sym, "rows"] == len(all_rows)
        assert cov.at[sym, "first_day"] == MONDAY.isoformat()
        assert cov.at[sym, "first_ts"] == all_rows["ts"].min()
        assert cov.at[sym, "last_ts"] == all_rows["ts"].max()
    assert cov.at[CU, "n_days"] == 2 and cov.at[CU, "last_day"] == TUESDAY.isoformat()
    assert cov.at[M, "n_days"] == 3 and cov.at[M, "last_day"] == "2025-01-08"
    assert cov.at[absent, "n_days"] == 0 and pd.isna(cov.at[absent, "first_ts"])

    latest = store.latest([CU, AU, M, absent])
    assert latest["symbol"].tolist() == [CU, AU, M]
    for _, row in latest.iterrows():
        last = expected(TICKS, frames[row["symbol"]][-1]).iloc[-1]
        assert row["ts"] == last["ts"] and row["id"] == last["id"]

    both = store.read_table(TICKS, symbols=[CU, M], start_day=TUESDAY.isoformat())
    assert set(both["trading_day"]) == {TUESDAY.isoformat()}
    assert len(both) == len(frames[CU][1]) + len(frames[M][1])


def test_coverage_cache_sees_this_process_writes(make_store) -> None:
    store = make_store()
    assert store.coverage([CU])["n_days"].tolist() == [0]
    store.write_partition(TICKS, CU, MONDAY.isoformat(), edge_ticks())
    assert store.coverage([CU])["rows"].tolist() == [len(edge_ticks())]


def tick_truth(store: QuestDBStore, symbol: str) -> tuple[int, Any, Any]:
    """Live rows and first/last ``ts`` of ``symbol`` counted on the tick table itself (the
    full scan coverage no longer does)."""
    table = store.table_name(TICKS)
    (n, lo, hi), *_ = store.pg.fetch(
        Query(
            f'SELECT count(), min("ts"), max("ts") FROM "{table}" '
            'WHERE "symbol" = %s AND "trading_day" != %s',
            (symbol, "retired"),
        )
    )
    return int(n), _utc(lo), _utc(hi)


def _utc(value: Any) -> pd.Timestamp:
    return pd.NaT if value is None else pd.Timestamp(value, tz="UTC")


def test_coverage_from_the_log_equals_the_ticks_after_rewrites(make_store) -> None:
    """Rewrites that shrink a day and empty another, then a log whose oldest rows have no
    bounds (as an older version left them): coverage agrees with the tick table."""
    store = make_store()
    old_log = dataclasses.replace(
        PARTITION_LOG, schema=PARTITION_LOG.schema.remove_columns(["first_ts", "last_ts"])
    )
    log = store.table_name(PARTITION_LOG)
    store.pg.execute_ddl(create_table_sql(old_log, log, "MONTH"))  # a log from before
    wednesday, thursday = dt.date(2025, 1, 8), dt.date(2025, 1, 9)
    monday, tuesday = simulated(CU, MONDAY), simulated(CU, TUESDAY)
    store.write_partition(TICKS, CU, MONDAY.isoformat(), monday)
    store.write_partition(TICKS, CU, TUESDAY.isoformat(), tuesday)
    store.write_partition(TICKS, CU, TUESDAY.isoformat(), tuesday.iloc[50:-50])  # shrank
    store.write_partition(TICKS, CU, wednesday.isoformat(), tuesday.iloc[:0])  # empty day
    thursday_ticks = simulated(CU, thursday)
    store.write_partition(TICKS, CU, thursday.isoformat(), thursday_ticks)
    store.write_partition(TICKS, CU, thursday.isoformat(), thursday_ticks.iloc[:0])  # emptied
    store.write_partition(TICKS, AU, MONDAY.isoformat(), simulated(AU, MONDAY))

    def check(store: QuestDBStore) -> None:
        cov = store.coverage([CU, AU]).set_index("symbol")
        for sym in (CU, AU):
            rows, first, last = tick_truth(store, sym)
            assert cov.at[sym, "rows"] == rows
            assert (cov.at[sym, "first_ts"], cov.at[sym, "last_ts"]) == (first, last)
            assert cov.at[sym, "n_days"] == len(store.partitions(TICKS, sym))
        assert cov.at[CU, "rows"] == len(monday) + len(tuesday) - 100
        assert cov.at[CU, "n_days"] == 4  # the empty and the emptied day count
        assert (cov.at[CU, "first_day"], cov.at[CU, "last_day"]) == ("2025-01-06", "2025-01-09")

    check(store)
    # Monday's log row as an older version wrote it: no bounds. Coverage must still agree.
    store.pg.execute(
        Query(
            f'UPDATE "{log}" SET "first_ts" = NULL, "last_ts" = NULL '
            'WHERE "table_name" = %s AND "trading_day" = %s',
            (store.table_name(TICKS), MONDAY.isoformat()),
        )
    )
    wait_for_wal(store.pg, log, 60.0)
    check(make_store())  # a fresh store: nothing cached


# -- failures ------------------------------------------------------------------------------


class FailingSender:
    """A real sender whose ``fail_at``-th flush fails before sending anything."""

    def __init__(self, real: Any, fail_at: int) -> None:
        self.real, self.fail_at, self.flushes = real, fail_at, 0

    def establish(self) -> Any:
        return self.real.establish()

    def dataframe(self, df: pd.DataFrame, **kw: Any) -> Any:
        return self.real.dataframe(df, **kw)

    def flush(self, *args: Any, **kw: Any) -> Any:
        self.flushes += 1
        if self.flushes == self.fail_at:
            from questdb import QuestDBError, QuestDBErrorCode

            self.real.close(flush=False)
            raise QuestDBError(QuestDBErrorCode.ServerFlushError, "injected: disk on fire")
        return self.real.flush(*args, **kw)

    def close(self, flush: bool = True) -> Any:
        return self.real.close(flush=flush)


def test_failure_mid_batch_then_rematerialize_leaves_no_duplicates(make_store) -> None:
    from questdb import Sender

    probe = make_store()
    settings = probe.settings

    def failing() -> Any:
        real = Sender.from_conf(settings.ilp_conf(), **settings.auth_kwargs())
        return FailingSender(real, fail_at=2)

    day = simulated(CU, MONDAY)
    broken = make_store(batch_rows=20_000, sender_factory=failing)
    with pytest.raises(StoreError, match=r"batch 2/3 .*batches 1-1 of 3 were committed"):
        broken.write_partition(TICKS, CU, MONDAY.isoformat(), day)
    healthy = make_store(batch_rows=20_000)
    wait_for_wal(healthy.pg, healthy.table_name(TICKS), 60.0)  # batch 1 was committed
    assert healthy.read_partition(TICKS, CU, MONDAY.isoformat()).shape[0] == 20_000
    healthy.write_partition(TICKS, CU, MONDAY.isoformat(), day)
    pd.testing.assert_frame_equal(
        healthy.read_partition(TICKS, CU, MONDAY.isoformat()), expected(TICKS, day)
    )
    assert count_all(healthy, TICKS, CU) == len(day)


def test_rows_of_another_day_are_refused_and_nothing_is_written(make_store) -> None:
    store = make_store()
    with pytest.raises(StoreError, match="outside trading day 2025-01-07"):
        store.write_partition(
            TICKS,
            CU,
            TUESDAY.isoformat(),
            edge_ticks(MONDAY).assign(trading_day=TUESDAY.isoformat()),
        )
    assert store.read_partition(TICKS, CU, TUESDAY.isoformat()).empty

"""QuestDB store without a server: DDL, SQL building, batching, retries, bounds, secrets,
caching and transport choice, against fakes of the ``questdb`` Sender and of PGWire."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from questdb import QuestDBError, QuestDBErrorCode

from ghtrader_assets import schema
from ghtrader_assets.calendar import TZ, trading_days
from ghtrader_assets.products import PRODUCTS
from ghtrader_assets.schema import MANIFESTS, TICKS, TableSpec, conform
from ghtrader_assets.sessions import session_windows
from ghtrader_assets.stores.base import COVERAGE_COLUMNS, StoreError, TickStore
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore, SchemaDriftError, registry
from ghtrader_assets.stores.questdb import queries as q
from ghtrader_assets.stores.questdb.ddl import (
    WRITE_ID_COLUMN,
    column_defs,
    create_table_sql,
    detect_drift,
    drift_message,
    table_columns_sql,
    validate_identifier,
)
from ghtrader_assets.stores.questdb.frames import normalise_read, prepare_for_write
from ghtrader_assets.stores.questdb.qwp import QwpTransport
from ghtrader_assets.stores.questdb.reader import wait_for_wal
from ghtrader_assets.stores.questdb.settings import QuestDBSettingsError
from ghtrader_assets.stores.questdb.writer import IlpHttpWriter, RetryPolicy, is_transient
from ghtrader_assets_tests.fake_questdb import FakeQuestDB

SYMBOL = "KQ.m@SHFE.cu"
MONDAY = dt.date(2025, 1, 6)
ALL_SPECS = [v for v in vars(schema).values() if isinstance(v, TableSpec)]


# -- fixtures and fakes --------------------------------------------------------------------


def ticks(n: int, day: dt.date = MONDAY, start: str = "09:00") -> pd.DataFrame:
    """``n`` valid ticks of ``day`` at a 500 ms cadence from ``start`` Shanghai time."""
    ts = pd.date_range(pd.Timestamp(f"{day} {start}", tz=TZ), periods=n, freq="500ms")
    ts = ts.tz_convert("UTC").as_unit("ns")
    rng = np.random.default_rng(0)
    frame = {
        "symbol": SYMBOL,
        "trading_day": day.isoformat(),
        "ts": ts,
        "datetime": ts.asi8,
        "id": np.arange(n, dtype="int64"),
        "underlying": "SHFE.cu2502",
        "source": "simulated",
    }
    for col in schema.PRICE_COLUMNS + schema.CUMULATIVE_COLUMNS + schema.BOOK_COLUMNS:
        frame[col] = rng.uniform(1, 100, n)
    return conform(pd.DataFrame(frame), TICKS)


@pytest.fixture
def qdb_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for the store's loggers (tqsdk is imported through
    ``import_tqsdk`` in conftest, so logging's root stays the one caplog listens on)."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def qdb_error(code: str, msg: str) -> QuestDBError:
    return QuestDBError(getattr(QuestDBErrorCode, code), msg)


class FakeSender:
    """Records what would be sent; ``failures`` maps a flush number (1-based) to the error
    that flush raises. Like the real sender, a failed flush clears the buffer."""

    def __init__(self, failures: dict[int, Exception] | None = None) -> None:
        self.failures = failures or {}
        self.pending: list[tuple[str, pd.DataFrame, Any, Any]] = []
        self.flushes: list[list[tuple[str, int]]] = []
        self.flush_calls = 0
        self.transactional: list[bool] = []
        self.established = 0
        self.closed = 0

    def establish(self) -> None:
        self.established += 1

    def dataframe(self, df: pd.DataFrame, *, table_name: str, symbols: Any, at: Any) -> None:
        self.pending.append((table_name, df, symbols, at))

    def flush(self, buffer: Any = None, clear: bool = True, transactional: bool = False) -> None:
        self.flush_calls += 1
        self.transactional.append(transactional)
        batch, self.pending = self.pending, []
        if self.flush_calls in self.failures:
            raise self.failures[self.flush_calls]
        self.flushes.append([(t, len(df)) for t, df, _, _ in batch])

    def close(self, flush: bool = True) -> None:
        self.closed += 1


class FakeSql:
    """A scripted PGWire: DDL and statements are recorded; queries are answered by kind."""

    def __init__(self, live_columns: dict[str, list[tuple]] | None = None) -> None:
        self.live_columns = live_columns or {}
        self.ddl: list[str] = []
        self.executed: list[q.Query] = []
        self.fetched: list[q.Query] = []
        self.counts = {"fresh": None, "stale": 0}
        self.update_skipped = False  # simulate a WAL UPDATE the server skipped at apply
        self.wal = [(False, 7, 7, None, None)]

    def _columns_for(self, table: str) -> list[tuple]:
        if table in self.live_columns:
            return self.live_columns[table]
        for spec in [*ALL_SPECS, registry.PARTITION_LOG]:
            if table.endswith(spec.name):
                return live_rows(spec)
        raise AssertionError(f"unknown table {table}")

    def fetch(self, query: q.Query) -> list[tuple]:
        self.fetched.append(query)
        sql = query.sql
        if "table_columns(" in sql:
            return self._columns_for(re.search(r"table_columns\('(\w+)'\)", sql).group(1))
        if "wal_tables()" in sql:
            return [self.wal.pop(0) if len(self.wal) > 1 else self.wal[0]]
        if sql.startswith("SELECT count()"):
            if '"write_id" !=' in sql:
                return [(self.counts["stale"],)]
            return [(self.counts["fresh"],)]
        return []

    def fetch_df(self, query: q.Query) -> pd.DataFrame:
        self.fetched.append(query)
        return pd.DataFrame()

    def execute(self, query: q.Query) -> None:
        self.executed.append(query)
        if query.sql.startswith("UPDATE") and not self.update_skipped:
            self.counts["stale"] = 0  # the retire UPDATE moved them out of the day

    def execute_ddl(self, sql: str) -> None:
        self.ddl.append(sql)

    def close(self) -> None:
        pass


def live_rows(spec: TableSpec) -> list[tuple]:
    """What ``table_columns()`` returns for a table created from ``spec``."""
    return [
        (c.name, c.qdb_type, c.name == spec.timestamp, c.name in spec.dedup_keys)
        for c in column_defs(spec)
    ]


def make_store(
    sql: FakeSql | None = None,
    sender: FakeSender | None = None,
    connect: Any = None,
    **settings: Any,
) -> tuple[QuestDBStore, FakeSql, FakeSender, list[float]]:
    sql = sql or FakeSql()
    sender = sender or FakeSender()
    sleeps: list[float] = []
    settings.setdefault("transport", "ilp_http")
    store = QuestDBStore(
        QuestDBSettings(host="qdb.example", **settings),
        sql=sql,
        sender_factory=lambda: sender,
        qwp_connect=connect,
        sleep=sleeps.append,
    )
    return store, sql, sender, sleeps


# -- DDL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_ddl_for_every_spec_declares_types_timestamp_partitioning_and_dedup(
    spec: TableSpec,
) -> None:
    sql = create_table_sql(spec, f"p_{spec.name}")
    assert sql.startswith(f'CREATE TABLE IF NOT EXISTS "p_{spec.name}" (')
    assert f'TIMESTAMP("{spec.timestamp}") PARTITION BY DAY WAL' in sql
    keys = re.search(r"DEDUP UPSERT KEYS\(([^)]*)\)", sql).group(1)
    assert [k.strip().strip('"') for k in keys.split(",")] == list(spec.dedup_keys)
    assert spec.timestamp in spec.dedup_keys
    for name, col in spec.schema.columns.items():
        line = re.search(rf'^\s*"{name}" (\w+)', sql, re.M)
        assert line, f"column {name} missing from DDL"
        dtype = str(col.dtype)
        if dtype.startswith("str"):
            expected = "SYMBOL" if name in spec.symbol_columns else "VARCHAR"
        else:
            expected = {"float64": "DOUBLE", "int64": "LONG", "datetime64[ns, UTC]": "TIMESTAMP"}[
                dtype
            ]
        assert line.group(1) == expected, name
    assert re.search(rf'^\s*"{WRITE_ID_COLUMN}" LONG', sql, re.M)
    assert len(re.findall(r'^\s*"\w+" ', sql, re.M)) == len(spec.columns) + 1


def test_tick_dedup_keys_keep_distinct_ticks_with_equal_timestamps_apart() -> None:
    sql = create_table_sql(TICKS, "ticks")
    assert 'DEDUP UPSERT KEYS("ts", "symbol", "id")' in sql
    assert re.search(r'"datetime" LONG', sql)  # exact nanoseconds kept beside TIMESTAMP ts


@pytest.mark.parametrize(
    "name",
    ['t"; DROP TABLE x; --', "a b", "1abc", "", "ticks'", "t;", "x" * 128, "tick-s", "é"],
)
def test_identifier_validation_rejects_injection_and_odd_names(name: str) -> None:
    with pytest.raises(StoreError, match="invalid QuestDB"):
        validate_identifier(name)
    with pytest.raises(StoreError):
        table_columns_sql(name)


def test_table_prefix_is_validated_before_it_can_reach_sql() -> None:
    with pytest.raises(QuestDBSettingsError, match="table_prefix"):
        QuestDBSettings(table_prefix='x"; DROP TABLE ticks_main_l5; --')
    store, *_ = make_store(table_prefix="ghtrader_test_ab12cd34_")
    assert store.table_name(TICKS) == "ghtrader_test_ab12cd34_ticks_main_l5"


# -- schema drift --------------------------------------------------------------------------


def test_drift_none_for_a_table_created_from_the_spec() -> None:
    assert detect_drift(TICKS, live_rows(TICKS)).ok


def test_drift_lists_missing_and_mistyped_columns_and_wrong_keys() -> None:
    rows = [r for r in live_rows(TICKS) if r[0] not in ("ask_price5", "average")]
    rows = [(n, "INT" if n == "id" else t, d, k and n != "id") for n, t, d, k in rows]
    drift = detect_drift(TICKS, rows)
    assert {c.name for c in drift.missing} == {"ask_price5", "average"}
    assert drift.mistyped == [("id", "LONG", "INT")]
    assert drift.keys == (["symbol", "ts"], ["id", "symbol", "ts"])
    msg = drift_message(TICKS, "ticks_main_l5", drift)
    for part in (
        "ask_price5 DOUBLE",
        "average DOUBLE",
        "id (expected LONG, found INT)",
        "ticks_main_l5",
    ):
        assert part in msg


def test_store_refuses_a_drifted_table_and_writes_nothing() -> None:
    rows = [r for r in live_rows(TICKS) if r[0] != "bid_volume3"]
    sql = FakeSql(live_columns={"ticks_main_l5": rows})
    store, sql, sender, _ = make_store(sql)
    with pytest.raises(SchemaDriftError, match="missing columns: bid_volume3 DOUBLE"):
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    assert sender.flushes == [] and sql.executed == []


def test_auto_add_columns_adds_only_missing_columns() -> None:
    rows = [r for r in live_rows(MANIFESTS) if r[0] != "code_version"]
    sql = FakeSql()
    answers = iter([rows, live_rows(MANIFESTS)])  # drift first, a matching table after ALTER
    sql._columns_for = lambda table: next(answers)  # type: ignore[method-assign]
    store, sql, _, _ = make_store(sql, auto_add_columns=True)
    store.ensure_table(MANIFESTS)
    assert sql.ddl[1] == 'ALTER TABLE "manifests" ADD COLUMN IF NOT EXISTS "code_version" VARCHAR'
    # The view is redefined so it shows the new column.
    assert sql.ddl[2].startswith('CREATE OR REPLACE VIEW "manifests_current"')
    assert '"code_version"' in sql.ddl[2] and len(sql.ddl) == 3

    sql = FakeSql(live_columns={"manifests": rows})
    store, sql, _, _ = make_store(sql)  # without the setting, drift is an error
    with pytest.raises(SchemaDriftError, match='ADD COLUMN IF NOT EXISTS "code_version"'):
        store.ensure_table(MANIFESTS)
    assert len(sql.ddl) == 1


# -- batching and retries ------------------------------------------------------------------


def test_batches_split_at_batch_rows_with_one_table_per_transactional_flush() -> None:
    sender = FakeSender()
    writer = IlpHttpWriter(lambda: sender, 50_000, RetryPolicy(0))
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-06", periods=120_000, freq="s", tz="UTC")})
    assert writer.write("t", frame, symbols=[], at="ts", where="w") == 3
    assert sender.flushes == [[("t", 50_000)], [("t", 50_000)], [("t", 20_000)]]
    assert sender.transactional == [True, True, True]
    assert sender.established == 1  # one sender reused for every batch
    assert writer.write("t", frame.iloc[:100_000], symbols=[], at="ts", where="w") == 2
    assert writer.write("t", frame.iloc[:0], symbols=[], at="ts", where="w") == 0
    assert len(sender.flushes) == 5


def test_transient_errors_are_retried_with_growing_backoff_and_resent() -> None:
    sender = FakeSender(
        {
            1: qdb_error("SocketError", "Could not flush buffer: io: Connection refused"),
            2: qdb_error("ServerFlushError", "Could not flush buffer: 503 Service Unavailable"),
        }
    )
    sleeps: list[float] = []
    writer = IlpHttpWriter(lambda: sender, 10, RetryPolicy(3, 1.0, 60.0), sleep=sleeps.append)
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-06", periods=10, freq="s", tz="UTC")})
    writer.write("t", frame, symbols=[], at="ts", where="w")
    assert sender.flushes == [[("t", 10)]]  # the batch was re-serialised for the 3rd try
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0
    assert sender.closed == 2  # a failed connection is dropped, a fresh one made


def test_permanent_errors_are_not_retried() -> None:
    err = qdb_error(
        "ServerFlushError", "cast error from protocol type: STRING to column type: LONG"
    )
    sender = FakeSender({1: err})
    sleeps: list[float] = []
    writer = IlpHttpWriter(lambda: sender, 10, RetryPolicy(5), sleep=sleeps.append)
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-06", periods=3, freq="s", tz="UTC")})
    with pytest.raises(StoreError, match="permanent error, not retried"):
        writer.write("t", frame, symbols=[], at="ts", where="w")
    assert sleeps == [] and sender.flush_calls == 1


def test_retries_stop_after_the_budget() -> None:
    sender = FakeSender({i: ConnectionResetError("reset") for i in range(1, 10)})
    sleeps: list[float] = []
    writer = IlpHttpWriter(lambda: sender, 10, RetryPolicy(2, 0.1, 0.15), sleep=sleeps.append)
    frame = pd.DataFrame({"ts": pd.date_range("2025-01-06", periods=3, freq="s", tz="UTC")})
    with pytest.raises(StoreError, match="2 retries exhausted"):
        writer.write("t", frame, symbols=[], at="ts", where="w")
    assert sender.flush_calls == 3 and len(sleeps) == 2 and max(sleeps) <= 0.15


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (qdb_error("SocketError", "io: Connection refused"), True),
        (qdb_error("ProtocolVersionError", "settings url ..., err: io: Connection refused."), True),
        (qdb_error("ServerFlushError", "Could not flush buffer: internal server error"), True),
        (qdb_error("ServerFlushError", "cast error ... [id: x, code: invalid, line: 1]"), False),
        (qdb_error("AuthError", "HTTP endpoint authentication error [code: 401]"), False),
        (qdb_error("InvalidName", "bad column name"), False),
        (TimeoutError("slow"), True),
        (ValueError("bad frame"), False),
    ],
)
def test_error_classification(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_failure_mid_write_names_table_partition_and_batch() -> None:
    err = qdb_error(
        "ServerFlushError", "cast error from protocol type: STRING to column type: LONG"
    )
    sender = FakeSender({2: err})
    store, sql, sender, _ = make_store(sender=sender, batch_rows=400)
    with pytest.raises(StoreError) as info:
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(1000))
    msg = str(info.value)
    for part in ("'ticks_main_l5'", SYMBOL, MONDAY.isoformat(), "batch 2/3", "rows 400-799"):
        assert part in msg
    assert "batches 1-1 of 3 were committed" in msg
    assert sql.executed == []  # nothing retired, nothing logged as written


# -- SQL building --------------------------------------------------------------------------

EVIL = "KQ.m@SHFE.cu' OR '1'='1"


def _builders() -> list[q.Query]:
    day = MONDAY
    return [
        q.select_partition(TICKS, "t", EVIL, day, pruned=True),
        q.select_partition(MANIFESTS, "m", EVIL, day, pruned=False),
        q.select_table(TICKS, "t", [EVIL, "KQ.m@DCE.m"], day, day, pruned=True),
        q.select_table(MANIFESTS, "m", [EVIL], None, day, pruned=False),
        q.select_edge_tick(TICKS, "t", EVIL, day, day, last=True),
        q.select_latest(TICKS, "t", [EVIL]),
        q.count_written(TICKS, "t", EVIL, day, 42, pruned=True, stale=True),
        q.retire_stale(TICKS, "t", EVIL, day, 42, pruned=True),
        q.wal_status(EVIL),
        registry.record("log", "t", EVIL, day, 5, 42, None, None),
        registry.days("log", "t", EVIL),
        registry.coverage_by_symbol("log", "t", [EVIL, "a", "b"]),
    ]


@pytest.mark.parametrize("query", _builders(), ids=lambda x: x.sql.split()[0] + x.sql[-30:])
def test_sql_takes_values_only_as_parameters(query: q.Query) -> None:
    assert EVIL in query.params
    assert "OR '1'" not in query.sql and "KQ.m" not in query.sql and "2025-" not in query.sql
    assert query.sql.count("%s") == len(query.params)
    qwp = query.qwp_sql()
    assert "%s" not in qwp
    assert re.findall(r"\$(\d+)", qwp) == [str(i) for i in range(1, len(query.params) + 1)]


def test_in_lists_are_padded_to_powers_of_two_for_statement_reuse() -> None:
    a = registry.coverage_by_symbol("log", "t", ["a", "b", "c"])
    b = registry.coverage_by_symbol("log", "t", ["d", "e", "f", "g"])
    assert a.sql == b.sql
    assert a.params[1:5] == ("a", "b", "c", "c")


def test_partition_reads_bound_ts_and_retired_rows_are_excluded() -> None:
    query = q.select_partition(TICKS, "t", SYMBOL, MONDAY, pruned=True)
    assert '"ts" >= %s AND "ts" < %s' in query.sql
    assert query.params[2:] == q.day_bounds(MONDAY)
    for query in (
        q.select_edge_tick(TICKS, "t", SYMBOL, MONDAY, MONDAY, last=False),
        q.select_latest(TICKS, "t", [SYMBOL]),
    ):
        assert '"trading_day" != %s' in query.sql and q.RETIRED_DAY in query.params
    latest = q.select_latest(TICKS, "t", [SYMBOL]).sql
    assert latest.index("WHERE") < latest.index("LATEST ON")


# -- trading-day bounds --------------------------------------------------------------------


def test_monday_bounds_include_friday_night_and_saturday_morning() -> None:
    lo, hi = q.day_bounds(MONDAY)
    assert lo == dt.datetime(2025, 1, 3, 18, 0, tzinfo=TZ)  # Friday 18:00 Shanghai
    assert hi == dt.datetime(2025, 1, 6, 18, 0, tzinfo=TZ)
    inside = ["2025-01-03 21:00", "2025-01-04 02:29", "2025-01-06 09:00", "2025-01-06 14:59"]
    outside = ["2025-01-03 15:00", "2025-01-06 21:00"]
    for t in inside:
        assert lo <= pd.Timestamp(t, tz=TZ) < hi, t
    for t in outside:
        assert not lo <= pd.Timestamp(t, tz=TZ) < hi, t


def test_bounds_after_a_holiday_start_on_the_last_trading_day() -> None:
    lo, _ = q.day_bounds(dt.date(2025, 10, 9))  # first trading day after National Day
    assert lo.astimezone(TZ).date() == dt.date(2025, 9, 30)


def test_bounds_contain_every_session_window_of_every_product() -> None:
    days = trading_days(dt.date(2024, 12, 30), dt.date(2025, 2, 14))  # spans Spring Festival
    for exchange, product in PRODUCTS:
        for day in days:
            lo, hi = q.day_bounds(day)
            for w in session_windows(exchange, product, day):
                assert lo <= w.start and w.end <= hi, (exchange, product, day, w)


def test_adjacent_trading_days_have_disjoint_bounds() -> None:
    days = trading_days(dt.date(2025, 1, 1), dt.date(2025, 3, 1))
    for a, b in zip(days, days[1:], strict=False):
        assert q.day_bounds(a)[1] == q.day_bounds(b)[0]


# -- frames --------------------------------------------------------------------------------


def test_write_rejects_rows_of_another_partition_and_ts_outside_the_day() -> None:
    frame = ticks(5)
    frame.loc[2, "symbol"] = "KQ.m@SHFE.au"
    with pytest.raises(StoreError, match=r"1 rows have symbol \['KQ.m@SHFE.au'\]"):
        prepare_for_write(TICKS, SYMBOL, MONDAY, frame, pruned=True, where="w")
    late = ticks(5, start="19:00")  # Monday evening belongs to Tuesday
    with pytest.raises(StoreError, match="outside trading day 2025-01-06"):
        prepare_for_write(TICKS, SYMBOL, MONDAY, late, pruned=True, where="w")
    assert len(prepare_for_write(TICKS, SYMBOL, MONDAY, late, pruned=False, where="w")) == 5


def test_a_missing_designated_timestamp_is_refused() -> None:
    frame = ticks(3)
    frame.loc[1, "ts"] = pd.NaT
    with pytest.raises(StoreError, match="1 rows have no ts"):
        prepare_for_write(TICKS, SYMBOL, MONDAY, frame, pruned=True, where="w")


def test_duplicate_keys_collapse_to_the_last_row_as_questdb_would(qdb_logs: Any) -> None:
    frame = pd.concat([ticks(4), ticks(4).iloc[[1]].assign(last_price=999.0)], ignore_index=True)
    with qdb_logs.at_level(logging.WARNING):
        out = prepare_for_write(TICKS, SYMBOL, MONDAY, frame, pruned=True, where="w")
    assert len(out) == 4 and (out["last_price"] == 999.0).sum() == 1
    assert "1 rows share dedup keys" in qdb_logs.text


def test_nanosecond_tick_timestamps_round_trip_through_the_datetime_column() -> None:
    frame = ticks(4)
    exact = frame["datetime"].to_numpy() + np.array([0, 1, 999, 123_456])
    frame["datetime"] = exact
    frame["ts"] = pd.to_datetime(exact, utc=True)
    prepared = prepare_for_write(TICKS, SYMBOL, MONDAY, frame, pruned=True, where="w")
    stored = prepared.copy()  # what QuestDB keeps: ts cut to microseconds
    stored["ts"] = stored["ts"].dt.floor("us")
    back = normalise_read(TICKS, stored)
    pd.testing.assert_frame_equal(back, frame)


def test_sub_microsecond_timestamps_without_an_exact_copy_are_refused() -> None:
    frame = ticks(3)
    frame.loc[1, "ts"] += pd.Timedelta(1, "ns")  # ts no longer equals datetime
    with pytest.raises(StoreError, match="sub-microsecond precision"):
        prepare_for_write(TICKS, SYMBOL, MONDAY, frame, pruned=True, where="w")
    day_start = registry.day_start(MONDAY)
    manifest = pd.DataFrame(
        {c: [None] for c in MANIFESTS.columns}
        | {"symbol": [SYMBOL], "trading_day": ["2025-01-06"], "ts": [pd.Timestamp(day_start)]}
        | {"created_at": [pd.Timestamp("2025-01-06 08:00:00.000000001", tz="UTC")]}
        | {"rows": [1], "checks_passed": [1], "checks_failed": [0]}
    )
    with pytest.raises(StoreError, match="created_at"):
        prepare_for_write(MANIFESTS, SYMBOL, MONDAY, manifest, pruned=False, where="w")


def test_read_normalises_qwp_categoricals_and_pgwire_objects_to_schema_dtypes() -> None:
    frame = ticks(3)
    raw = frame.sample(frac=1, random_state=1).copy()  # server order is not ours
    raw["symbol"] = pd.Categorical(raw["symbol"])
    raw["ts"] = raw["ts"].dt.tz_localize(None).astype("datetime64[us]")
    raw["source"] = raw["source"].astype(object)
    raw[WRITE_ID_COLUMN] = 5  # internal column never comes back
    pd.testing.assert_frame_equal(normalise_read(TICKS, raw), frame)


# -- WAL wait ------------------------------------------------------------------------------


def test_wal_wait_returns_once_the_writer_reaches_the_sequencer() -> None:
    sql = FakeSql()
    sql.wal = [(False, 3, 5, None, None), (False, 4, 6, None, None), (False, 5, 6, None, None)]
    sleeps: list[float] = []
    wait_for_wal(sql, "t", 5.0, sleep=sleeps.append)
    assert len(sleeps) == 2  # target fixed at the first read (5), reached at the third


def test_wal_wait_fails_clearly_on_a_suspended_table_and_on_timeout() -> None:
    sql = FakeSql()
    sql.wal = [(True, 3, 5, "DISK FULL", "no space left")]
    with pytest.raises(StoreError, match=r"suspended .*DISK FULL.*RESUME WAL"):
        wait_for_wal(sql, "t", 5.0, sleep=lambda s: None)
    sql.wal = [(False, 3, 5, None, None)]
    now = [0.0]

    def tick(seconds: float) -> None:
        now[0] += 1.0

    with pytest.raises(StoreError, match="did not catch up within 3s"):
        wait_for_wal(sql, "t", 3.0, sleep=tick, clock=lambda: now[0])


# -- store flow ----------------------------------------------------------------------------


class SkippingUpdates(FakeQuestDB):
    """A server that accepts retire UPDATEs but never applies them (seen on a live server:
    a WAL UPDATE failing at apply time is skipped rather than suspending the table)."""

    def execute(self, query: q.Query) -> None:
        if query.sql.startswith("UPDATE"):
            self.statements.append(query.sql)
            self._commit(lambda: None)
            return
        super().execute(query)


def _kinds(statements: list[str]) -> list[str]:
    return [" ".join(x.split()[:2]) for x in statements]


def test_a_first_write_is_one_send_and_one_log_insert_without_waiting() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "qwp")
    store.ensure_tables()
    tuesday = dt.date(2025, 1, 7)
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    before = len(db.statements)
    store.write_partition(TICKS, SYMBOL, tuesday.isoformat(), ticks(10, tuesday))
    # The symbol's logged days were loaded once, on its first write: the second day costs
    # one partition-log INSERT over PGWire; no WAL wait, no count, no UPDATE.
    assert _kinds(db.statements[before:]) == ["INSERT INTO"]
    assert store._pending  # verification deferred to settle()
    store.settle()
    assert not store._pending
    kinds = _kinds(db.statements[before + 1 :])
    assert kinds.count('SELECT "trading_day",') == 1  # one grouped count for both days


def test_rewrite_retires_rows_the_new_frame_lacks_and_reads_return_exactly_it() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "ilp_http")
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    newer = ticks(10).iloc[:6].assign(last_price=7.0)
    before = len(db.statements)
    stats = store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), newer)
    assert stats.rows == 6 and stats.table == "ticks_main_l5"
    update, insert = [x for x in db.statements[before:] if not x.startswith("SELECT")]
    assert update.startswith(f'UPDATE "ticks_main_l5" SET "trading_day" = \'{q.RETIRED_DAY}\'')
    assert insert.startswith('INSERT INTO "store_partitions"')
    back = store.read_partition(TICKS, SYMBOL, MONDAY.isoformat())
    pd.testing.assert_frame_equal(back, newer.reset_index(drop=True))
    raw = db.tables["ticks_main_l5"].rows
    assert len(raw) == 10 and (raw["trading_day"] == q.RETIRED_DAY).sum() == 4
    log = db.tables["store_partitions"].rows
    assert log["rows"].tolist() == [6] and log["write_id"].tolist() == [
        raw.loc[raw["trading_day"] != q.RETIRED_DAY, "write_id"].iloc[0]
    ]


def test_a_retire_update_that_did_not_apply_is_an_error_at_settle() -> None:
    db = SkippingUpdates()
    store = fake_store(db, "ilp_http")
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    store.settle()
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(6))
    with pytest.raises(StoreError, match="4 rows of an earlier write remain") as info:
        store.settle()
    assert SYMBOL in str(info.value) and "2025-01-06" in str(info.value)
    store.settle()  # reported once, not on every later call


def test_rows_lost_or_overwritten_by_another_writer_are_an_error_at_the_next_read() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "ilp_http")
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    # Another process rewrites one of the same keys in between (unsupported, detected).
    other = ticks(10).iloc[[3]].assign(**{WRITE_ID_COLUMN: 1})
    db.upsert("ticks_main_l5", other, "ts")
    with pytest.raises(StoreError, match="wrote 10 rows, 9 carry write id"):
        store.read_partition(TICKS, SYMBOL, MONDAY.isoformat())


def test_reads_wait_for_wal_apply_that_writes_no_longer_wait_for() -> None:
    db = FakeQuestDB(wal_lag=True)
    writer = fake_store(db, "qwp")
    writer.ensure_tables()
    writer.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    assert len(db.tables["ticks_main_l5"].rows) == 0  # committed, not yet applied
    reader = fake_store(db, "qwp")  # another process: knows nothing of the write
    assert len(reader.read_partition(TICKS, SYMBOL, MONDAY.isoformat())) == 10
    writer.settle()


def test_empty_write_retires_the_old_rows_and_still_records_the_day() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "ilp_http")
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(7))
    sender_rows = len(db.tables["ticks_main_l5"].rows)
    before = len(db.statements)
    stats = store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(0))
    assert stats.rows == 0 and sender_rows == 7
    assert _kinds(db.statements[before:]) == ['UPDATE "ticks_main_l5"', "INSERT INTO"]
    assert store.read_partition(TICKS, SYMBOL, MONDAY.isoformat()).empty
    assert store.partitions(TICKS, SYMBOL) == ["2025-01-06"]


def test_the_current_view_returns_exactly_what_reads_return() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "qwp")
    store.ensure_tables()
    assert "ticks_main_l5_current" in db.views and "store_partitions_current" not in db.views
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10).iloc[2:8])
    stored = store.read_partition(TICKS, SYMBOL, MONDAY.isoformat())
    view = normalise_read(TICKS, db.view_rows("ticks_main_l5_current"))
    pd.testing.assert_frame_equal(view, stored)
    assert WRITE_ID_COLUMN not in db.view_rows("ticks_main_l5_current").columns
    assert len(db.tables["ticks_main_l5"].rows) == 10  # the raw table still has 4 retired
    store.drop_table(TICKS)
    assert "ticks_main_l5_current" not in db.views


def test_view_ddl_filters_the_retired_day_and_names_every_schema_column() -> None:
    from ghtrader_assets.stores.questdb import ddl

    assert ddl._RETIRED_LITERAL == q.RETIRED_DAY
    sql = ddl.create_view_sql(TICKS, "p_ticks_main_l5")
    assert sql.startswith('CREATE VIEW IF NOT EXISTS "p_ticks_main_l5_current" AS (SELECT ')
    assert sql.endswith(f'FROM "p_ticks_main_l5" WHERE "trading_day" != \'{q.RETIRED_DAY}\')')
    assert re.findall(r'"(\w+)"', sql.split(" FROM ")[0])[1:] == TICKS.columns
    assert ddl.create_view_sql(TICKS, "t", replace=True).startswith("CREATE OR REPLACE VIEW")


def test_bad_symbol_or_day_is_refused_before_anything_is_sent() -> None:
    store, sql, sender, _ = make_store()
    with pytest.raises(StoreError, match="not a main continuous symbol"):
        store.write_partition(TICKS, "SHFE.cu2502", MONDAY.isoformat(), ticks(3))
    with pytest.raises(StoreError, match="not an ISO date"):
        store.write_partition(TICKS, SYMBOL, "2025-1-6", ticks(3))
    assert sender.flush_calls == 0 and sql.ddl == []


def test_coverage_is_cached_until_this_process_writes() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "ilp_http", cache_ttl=None)

    def coverage_queries() -> list[str]:
        return [x for x in db.statements if "AS unbounded_rows" in x]

    first = store.coverage([SYMBOL, "KQ.m@DCE.m"])
    store.coverage([SYMBOL, "KQ.m@DCE.m"])
    assert len(coverage_queries()) == 1  # the partition log, once
    assert tuple(first.columns) == COVERAGE_COLUMNS
    assert first["n_days"].tolist() == [0, 0] and first["first_ts"].isna().all()
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(10))
    after = store.coverage([SYMBOL, "KQ.m@DCE.m"])
    assert len(coverage_queries()) == 2
    assert after["rows"].tolist() == [10, 0]
    assert all('FROM "store_partitions"' in x for x in coverage_queries())


def test_coverage_and_latest_of_no_symbols_ask_nothing() -> None:
    store, sql, _, _ = make_store()
    cov = store.coverage([])
    assert cov.empty and list(cov.columns)[:2] == ["symbol", "first_day"]
    assert store.latest([]).empty and list(store.latest([]).columns) == TICKS.columns
    assert sql.fetched == [] and sql.ddl == []


def _answer_coverage(sql: FakeSql, log_rows: list[tuple], edges: list[list[tuple]]) -> None:
    """Script the partition-log aggregate and the edge-tick queries of coverage."""
    original = sql.fetch

    def fetch(query: q.Query) -> list[tuple]:
        if "AS unbounded_rows" in query.sql:
            sql.fetched.append(query)
            return log_rows
        if query.sql.endswith("LIMIT 1"):
            sql.fetched.append(query)
            return edges.pop(0)
        return original(query)

    sql.fetch = fetch  # type: ignore[method-assign]


def test_coverage_comes_from_the_partition_log_alone() -> None:
    store, sql, _, _ = make_store()
    t0 = dt.datetime(2025, 1, 3, 13, 0)
    t1 = dt.datetime(2025, 1, 7, 7, 0)
    wednesday = dt.date(2025, 1, 8)
    log_row = (
        SYMBOL,
        3,
        registry.day_start(MONDAY),
        registry.day_start(wednesday),
        120,
        t0,
        t1,
        0,  # empty days have no bounds but no rows either
    )
    _answer_coverage(sql, [log_row], [])
    row = store.coverage([SYMBOL, "KQ.m@DCE.m"]).iloc[0]
    assert (row["first_day"], row["last_day"], row["n_days"], row["rows"]) == (
        "2025-01-06",
        "2025-01-08",
        3,
        120,
    )
    assert row["first_ts"] == pd.Timestamp(t0, tz="UTC")
    assert row["last_ts"] == pd.Timestamp(t1, tz="UTC")
    data = [
        x.sql for x in sql.fetched if "table_columns" not in x.sql and "wal_tables" not in x.sql
    ]
    assert len(data) == 1 and 'FROM "store_partitions"' in data[0]
    assert "ticks_main_l5" in sql.fetched[-1].params  # filtered to the tick table's days


def test_coverage_of_days_logged_without_bounds_reads_one_tick_at_each_end() -> None:
    store, sql, _, _ = make_store()
    wednesday = dt.date(2025, 1, 8)
    first = dt.datetime(2025, 1, 3, 13, 0)
    last = dt.datetime(2025, 1, 8, 6, 59)
    log_row = (
        SYMBOL,
        3,
        registry.day_start(MONDAY),
        registry.day_start(wednesday),
        90,
        None,
        None,
        90,
    )
    _answer_coverage(sql, [log_row], [[(first,)], [(last,)]])
    row = store.coverage([SYMBOL]).iloc[0]
    assert row["first_ts"] == pd.Timestamp(first, tz="UTC")
    assert row["last_ts"] == pd.Timestamp(last, tz="UTC")
    assert row["rows"] == 90
    lo, hi = sql.fetched[-2], sql.fetched[-1]
    assert lo.sql.endswith('ORDER BY "ts" LIMIT 1') and hi.sql.endswith(
        'ORDER BY "ts" DESC LIMIT 1'
    )
    for query in (lo, hi):
        assert query.sql.startswith('SELECT "ts" FROM "ticks_main_l5" WHERE')
        assert query.params == (
            SYMBOL,
            q.RETIRED_DAY,
            q.day_bounds(MONDAY)[0],
            q.day_bounds(wednesday)[1],
        )


def test_an_older_partition_log_gets_its_new_columns_without_the_setting() -> None:
    old = [r for r in live_rows(registry.PARTITION_LOG) if r[0] not in ("first_ts", "last_ts")]
    sql = FakeSql()
    answers = iter([old, live_rows(registry.PARTITION_LOG)])
    sql._columns_for = lambda table: next(answers)  # type: ignore[method-assign]
    store, sql, _, _ = make_store(sql)  # auto_add_columns is off
    store.ensure_table(registry.PARTITION_LOG)
    assert sql.ddl[1:] == [
        'ALTER TABLE "store_partitions" ADD COLUMN IF NOT EXISTS "first_ts" TIMESTAMP',
        'ALTER TABLE "store_partitions" ADD COLUMN IF NOT EXISTS "last_ts" TIMESTAMP',
    ]


# -- settings and secrets ------------------------------------------------------------------

PASSWORD = "s3cr3t-Pa55"
TOKEN = "tok-ABCDEF123456"


def test_settings_from_env_and_validation() -> None:
    env = {
        "GHTRADER_QDB_HOST": "qdb.internal",
        "GHTRADER_QDB_ILP_PORT": "19000",
        "GHTRADER_QDB_PG_PORT": "18812",
        "GHTRADER_QDB_USER": "ingest",
        "GHTRADER_QDB_PASSWORD": PASSWORD,
        "GHTRADER_QDB_TRANSPORT": "QWP",
        "GHTRADER_QDB_BATCH_ROWS": "75000",
    }
    s = QuestDBSettings.from_env(env)
    assert (s.host, s.ilp_port, s.pg_port, s.user, s.transport, s.batch_rows) == (
        "qdb.internal",
        19000,
        18812,
        "ingest",
        "qwp",
        75000,
    )
    assert s.password == PASSWORD and s.token is None
    with pytest.raises(QuestDBSettingsError, match="GHTRADER_QDB_BATCH_ROWS"):
        QuestDBSettings.from_env({"GHTRADER_QDB_BATCH_ROWS": "lots"})
    with pytest.raises(QuestDBSettingsError, match="transport"):
        QuestDBSettings(transport="udp")


def test_secrets_never_appear_in_repr_config_strings_or_errors(qdb_logs: Any) -> None:
    s = QuestDBSettings(host="h", password=PASSWORD, token=TOKEN)
    for text in (repr(s), str(s), s.ilp_conf(), repr(QuestDBStore(s, sql=FakeSql()))):
        assert PASSWORD not in text and TOKEN not in text
    assert "password=<set>" in repr(s)
    assert s.redact(f"auth failed for {PASSWORD} / {TOKEN}") == "auth failed for *** / ***"

    err = qdb_error("SocketError", f"connect failed: conf has password={PASSWORD}")
    sender = FakeSender({i: err for i in range(1, 5)})
    store, *_ = make_store(sender=sender, password=PASSWORD, max_retries=1)
    with pytest.raises(StoreError) as info:
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(3))
    assert PASSWORD not in str(info.value) and "password=***" in str(info.value)
    assert PASSWORD not in qdb_logs.text and "retry 1/1" in qdb_logs.text

    def refuse(settings: QuestDBSettings) -> Any:
        raise ConnectionRefusedError(f"ws://user:{settings.password}@h refused")

    qwp = QwpTransport(QuestDBSettings(host="h", password=PASSWORD, transport="qwp"), refuse)
    with pytest.raises(StoreError) as info:
        qwp.handle()
    assert PASSWORD not in str(info.value)


# -- transport choice ----------------------------------------------------------------------


class FakeQwp:
    def __init__(self) -> None:
        self.frames: list[tuple[str, int]] = []
        self.queries: list[tuple[str, list]] = []

    def dataframe(
        self,
        df: pd.DataFrame,
        *,
        table_name: str,
        symbols: Any,
        at: Any,
        max_rows_per_batch: int = 16384,
    ) -> None:
        self.frames.append((table_name, len(df)))
        self.ts_dtypes = {str(df[at].dtype)}

    def close(self, timeout: float | None = None) -> None:
        pass


def test_auto_transport_falls_back_to_ilp_once_when_qwp_connect_fails(qdb_logs: Any) -> None:
    calls = []

    def refuse(settings: QuestDBSettings) -> Any:
        calls.append(1)
        raise qdb_error("HandshakeError", "WebSocket upgrade failed: HTTP status 404")

    store, sql, sender, _ = make_store(connect=refuse, transport="auto")
    sql.counts = {"fresh": 5, "stale": 0}
    with qdb_logs.at_level(logging.WARNING):
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(5))
        sql.counts = {"fresh": 6, "stale": 0}
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(6))
    assert store.transport == "ilp_http" and len(calls) == 1
    assert sender.flushes == [[("ticks_main_l5", 5)], [("ticks_main_l5", 6)]]
    assert qdb_logs.text.count("offers no QWP") == 1


def test_auto_transport_uses_qwp_when_available_and_ilp_http_never_tries_it() -> None:
    fake = FakeQwp()
    store, sql, sender, _ = make_store(connect=lambda s: fake, transport="auto")
    sql.counts = {"fresh": 5, "stale": 0}
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(5))
    assert fake.frames == [("ticks_main_l5", 5)] and sender.flush_calls == 0
    assert fake.ts_dtypes == {"datetime64[us, UTC]"}  # QWP gets the TIMESTAMP column's own type
    assert store.transport == "qwp"

    def never(settings: QuestDBSettings) -> Any:
        raise AssertionError("ilp_http must not try QWP")

    store, sql, sender, _ = make_store(connect=never, transport="ilp_http")
    sql.counts = {"fresh": 5, "stale": 0}
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(5))
    assert sender.flushes == [[("ticks_main_l5", 5)]]


def test_qwp_transport_required_but_unavailable_is_an_error() -> None:
    def refuse(settings: QuestDBSettings) -> Any:
        raise qdb_error("SocketError", "all endpoints unreachable")

    store, *_ = make_store(connect=refuse, transport="qwp")
    with pytest.raises(StoreError, match="QWP connection failed"):
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(2))


# -- end to end against an in-memory QuestDB -----------------------------------------------


def fake_store(db: FakeQuestDB, transport: str, **settings: Any) -> QuestDBStore:
    return QuestDBStore(
        QuestDBSettings(host="qdb.example", transport=transport, **settings),
        sql=db,
        sender_factory=db.sender,
        qwp_connect=lambda s: db.qwp(),
        sleep=lambda s: None,
    )


def edge_frame() -> pd.DataFrame:
    """Ticks with nanosecond timestamps, two ticks sharing a timestamp, NaN levels and a
    Friday-night tick that belongs to Monday."""
    frame = ticks(6)
    exact = frame["datetime"].to_numpy().copy()
    exact[0] = pd.Timestamp("2025-01-03 21:00:00.25", tz=TZ).value  # Friday night
    exact[2] = exact[1]  # same instant as the previous tick, another id
    exact[3] += 123_456_789  # nanoseconds
    frame["datetime"] = exact
    frame["ts"] = pd.to_datetime(exact, utc=True)
    frame.loc[1, ["bid_price5", "ask_volume4"]] = np.nan
    return frame


def sorted_like_reads(frame: pd.DataFrame) -> pd.DataFrame:
    return conform(frame, TICKS).sort_values(["symbol", "ts", "id"]).reset_index(drop=True)


@pytest.mark.parametrize("transport", ["ilp_http", "qwp"])
def test_end_to_end_replace_semantics_and_exact_reads(transport: str) -> None:
    db = FakeQuestDB()
    store = fake_store(db, transport)
    day = MONDAY.isoformat()
    frame = pd.concat([edge_frame(), ticks(500, start="10:00")], ignore_index=True)
    frame["id"] = np.arange(len(frame), dtype="int64")
    store.write_partition(TICKS, SYMBOL, day, frame)
    assert store.transport == transport
    pd.testing.assert_frame_equal(
        store.read_partition(TICKS, SYMBOL, day), sorted_like_reads(frame), check_exact=True
    )

    def ticks_rows() -> int:  # physical rows, retired ones included
        return len(db.tables["ticks_main_l5"].rows)

    store.write_partition(TICKS, SYMBOL, day, frame)  # re-materialize: same rows
    assert ticks_rows() == len(frame)

    shrunk = frame.iloc[50:].assign(last_price=frame["last_price"].iloc[50:] + 1)
    store.write_partition(TICKS, SYMBOL, day, shrunk)
    pd.testing.assert_frame_equal(
        store.read_partition(TICKS, SYMBOL, day), sorted_like_reads(shrunk)
    )
    assert ticks_rows() == len(frame)  # retired, never duplicated
    assert store.coverage([SYMBOL])["rows"].tolist() == [len(shrunk)]
    latest = store.latest([SYMBOL])
    assert latest["id"].tolist() == [sorted_like_reads(shrunk)["id"].iloc[-1]]

    store.write_partition(TICKS, SYMBOL, day, frame)  # the rows come back
    pd.testing.assert_frame_equal(
        store.read_partition(TICKS, SYMBOL, day), sorted_like_reads(frame)
    )
    store.write_partition(TICKS, SYMBOL, day, frame.iloc[:0])
    assert store.read_partition(TICKS, SYMBOL, day).empty
    assert store.partitions(TICKS, SYMBOL) == [day]
    assert ticks_rows() == len(frame)


@pytest.mark.parametrize("transport", ["ilp_http", "qwp"])
def test_end_to_end_coverage_latest_and_ranges_for_many_symbols(transport: str) -> None:
    db = FakeQuestDB()
    store = fake_store(db, transport)
    tuesday = dt.date(2025, 1, 7)
    written: dict[str, list[pd.DataFrame]] = {}
    for sym in (SYMBOL, "KQ.m@SHFE.au", "KQ.m@DCE.m"):
        for day in (MONDAY, tuesday):
            frame = ticks(40, day).assign(symbol=sym)
            store.write_partition(TICKS, sym, day.isoformat(), frame)
            written.setdefault(sym, []).append(frame)
    store.write_partition(TICKS, "KQ.m@DCE.m", "2025-01-08", ticks(0))
    cov = store.coverage([SYMBOL, "KQ.m@DCE.m", "KQ.m@CZCE.SR"]).set_index("symbol")
    assert cov.loc[SYMBOL, ["first_day", "last_day", "n_days", "rows"]].tolist() == [
        "2025-01-06",
        "2025-01-07",
        2,
        80,
    ]
    assert cov.loc["KQ.m@DCE.m", ["last_day", "n_days", "rows"]].tolist() == ["2025-01-08", 3, 80]
    assert cov.at[SYMBOL, "first_ts"] == written[SYMBOL][0]["ts"].min()
    assert cov.at[SYMBOL, "last_ts"] == written[SYMBOL][1]["ts"].max()
    assert cov.at["KQ.m@CZCE.SR", "n_days"] == 0 and pd.isna(cov.at["KQ.m@CZCE.SR", "last_ts"])

    latest = store.latest(["KQ.m@DCE.m", SYMBOL, "KQ.m@CZCE.SR"])
    assert latest["symbol"].tolist() == ["KQ.m@DCE.m", SYMBOL]
    assert (latest["ts"] == written[SYMBOL][1]["ts"].max()).all()

    part = store.read_table(TICKS, symbols=[SYMBOL, "KQ.m@DCE.m"], start_day="2025-01-07")
    assert set(part["trading_day"]) == {"2025-01-07"} and len(part) == 80
    assert len(store.read_table(TICKS, end_day="2025-01-06")) == 120


AU = "KQ.m@SHFE.au"


def write_history(store: TickStore) -> None:
    """Writes that exercise every coverage rule: a Friday-night first tick, re-writes that
    grow and shrink a day, an empty day, a day re-written empty, a second symbol."""
    tuesday, wednesday, thursday = (dt.date(2025, 1, d) for d in (7, 8, 9))
    first = pd.concat([edge_frame(), ticks(30, start="10:00")], ignore_index=True)
    first["id"] = np.arange(len(first), dtype="int64")
    writes = [
        (SYMBOL, MONDAY, first),
        (SYMBOL, tuesday, ticks(40, tuesday)),
        (SYMBOL, tuesday, ticks(25, tuesday, start="13:30")),  # shrank, later last tick
        (SYMBOL, wednesday, ticks(0, wednesday)),  # empty day
        (SYMBOL, thursday, ticks(10, thursday)),
        (SYMBOL, thursday, ticks(0, thursday)),  # re-written empty
        (AU, tuesday, ticks(7, tuesday).assign(symbol=AU)),
    ]
    for sym, day, frame in writes:
        store.write_partition(TICKS, sym, day.isoformat(), frame)


@pytest.mark.parametrize("transport", ["ilp_http", "qwp"])
def test_coverage_matches_the_embedded_store_and_never_scans_ticks(
    transport: str, tmp_path: Path
) -> None:
    db = FakeQuestDB()
    store = fake_store(db, transport)
    embedded = EmbeddedStore(tmp_path, cache_ttl_seconds=None)
    write_history(store)
    write_history(embedded)
    store.settle()  # the writes' verification, which a read would otherwise run first
    asked = [AU, SYMBOL, "KQ.m@DCE.m"]
    before = len(db.statements)
    cov = store.coverage(asked)
    pd.testing.assert_frame_equal(cov, embedded.coverage(asked), check_exact=True)
    issued = db.statements[before:]
    assert len(issued) == 1 and 'FROM "store_partitions"' in issued[0]
    # The figures agree with the ticks a read returns, a day that shrank included.
    live = store.read_table(TICKS, symbols=[SYMBOL])
    mine = cov.set_index("symbol").loc[SYMBOL]
    assert mine["rows"] == len(live) and mine["n_days"] == 4
    assert (mine["first_ts"], mine["last_ts"]) == (live["ts"].min(), live["ts"].max())
    assert (mine["first_day"], mine["last_day"]) == ("2025-01-06", "2025-01-09")


def test_coverage_of_a_log_from_before_the_bound_columns(tmp_path: Path) -> None:
    """A log table created without first_ts/last_ts gets them on start-up; its old rows
    keep NULL bounds, so coverage reads one tick at each end until they are re-written."""
    db = FakeQuestDB()
    old_log = dataclasses.replace(
        registry.PARTITION_LOG,
        schema=registry.PARTITION_LOG.schema.remove_columns(["first_ts", "last_ts"]),
    )
    db.execute_ddl(create_table_sql(old_log, "store_partitions", "MONTH"))
    store = fake_store(db, "ilp_http")  # auto_add_columns off: the log is ours to migrate
    write_history(store)
    assert {"first_ts", "last_ts"} <= set(db.tables["store_partitions"].types())
    log = db.tables["store_partitions"].rows
    log.loc[log["trading_day"] == MONDAY.isoformat(), ["first_ts", "last_ts"]] = None
    embedded = EmbeddedStore(tmp_path, cache_ttl_seconds=None)
    write_history(embedded)
    store.settle()

    before = len(db.statements)
    pd.testing.assert_frame_equal(store.coverage([SYMBOL, AU]), embedded.coverage([SYMBOL, AU]))
    edge = [x for x in db.statements[before:] if x.endswith("LIMIT 1")]
    assert len(edge) == 2  # SYMBOL only: AU's days all have bounds

    store.write_partition(
        TICKS, SYMBOL, MONDAY.isoformat(), store.read_partition(TICKS, SYMBOL, MONDAY.isoformat())
    )
    store.settle()
    before = len(db.statements)
    pd.testing.assert_frame_equal(store.coverage([SYMBOL, AU]), embedded.coverage([SYMBOL, AU]))
    assert len(db.statements) == before + 1


def test_end_to_end_failure_mid_batch_then_rematerialize_leaves_no_duplicates() -> None:
    db = FakeQuestDB()
    failing = db.sender()
    failing.fail_at = 2
    broken = QuestDBStore(
        QuestDBSettings(host="h", transport="ilp_http", batch_rows=40),
        sql=db,
        sender_factory=lambda: failing,
        sleep=lambda s: None,
    )
    frame = ticks(100)
    with pytest.raises(StoreError, match=r"batch 2/3 .*batches 1-1 of 3 were committed"):
        broken.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), frame)
    healthy = fake_store(db, "ilp_http", batch_rows=40)
    assert len(healthy.read_partition(TICKS, SYMBOL, MONDAY.isoformat())) == 40
    healthy.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), frame)
    pd.testing.assert_frame_equal(
        healthy.read_partition(TICKS, SYMBOL, MONDAY.isoformat()), sorted_like_reads(frame)
    )
    assert len(db.tables["ticks_main_l5"].rows) == 100


def test_end_to_end_per_day_table_with_null_timestamps_and_json() -> None:
    db = FakeQuestDB()
    store = fake_store(db, "ilp_http")
    row = {c: None for c in MANIFESTS.columns} | {
        "symbol": SYMBOL,
        "trading_day": "2025-01-06",
        "ts": pd.Timestamp(registry.day_start(MONDAY)),
        "underlying": "SHFE.cu2502",
        "source": "test",
        "rows": 0,
        "first_tick": pd.NaT,
        "last_tick": pd.NaT,
        "schema_hash": "abc",
        "code_version": "v1",
        "checks_passed": 3,
        "checks_failed": 1,
        "check_outcomes": '{"gaps": {"passed": false}}',
        "created_at": pd.Timestamp("2025-01-06 08:00:01.123456", tz="UTC"),
    }
    manifest = conform(pd.DataFrame([row]), MANIFESTS)
    store.write_partition(MANIFESTS, SYMBOL, "2025-01-06", manifest)
    back = store.read_partition(MANIFESTS, SYMBOL, "2025-01-06")
    pd.testing.assert_frame_equal(back, manifest, check_exact=True)
    pd.testing.assert_frame_equal(store.read_table(MANIFESTS, symbols=[SYMBOL]), manifest)


def test_a_server_without_views_still_gets_a_working_store(qdb_logs: Any) -> None:
    class NoViews(FakeQuestDB):
        def execute_ddl(self, sql: str) -> None:
            if "VIEW" in sql:
                raise StoreError("QuestDB PGWire q:8812: CREATE VIEW failed: unexpected token")
            super().execute_ddl(sql)

    db = NoViews()
    store = fake_store(db, "qwp")
    with qdb_logs.at_level(logging.WARNING):
        store.ensure_tables([TICKS])
    assert "no ticks_main_l5_current view" in qdb_logs.text and "!= 'retired'" in qdb_logs.text
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), ticks(5))
    assert len(store.read_partition(TICKS, SYMBOL, MONDAY.isoformat())) == 5


def test_the_probe_names_address_variables_and_that_nothing_was_written() -> None:
    from ghtrader_assets.stores.questdb.reader import probe
    from ghtrader_assets.stores.questdb.settings import QuestDBUnreachableError

    settings = QuestDBSettings(host="qdb.example", pg_port=8812, ilp_port=9000, password="pw-77")

    def pg_fails(**kw: Any) -> Any:
        raise OSError(f"password authentication failed (password {kw['password']})")

    def tcp_fails(address: Any, timeout: float) -> Any:
        assert timeout <= 3.0  # the probe never waits long
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(QuestDBUnreachableError) as info:
        probe(settings, pg_connect=pg_fails, connect=tcp_fails)
    msg = str(info.value)
    for part in (
        "PGWire qdb.example:8812",
        "HTTP (ILP/QWP) qdb.example:9000",
        "GHTRADER_QDB_HOST",
        "GHTRADER_QDB_PG_PORT",
        "GHTRADER_QDB_ILP_PORT",
        "nothing was written",
    ):
        assert part in msg
    assert "pw-77" not in msg and "***" in msg
    assert "\n" not in msg  # one line for the CLI

    class Ok:
        def close(self) -> None:
            pass

    probe(settings, pg_connect=lambda **kw: Ok(), connect=lambda *a, **kw: Ok())  # no raise

"""The whole Dagster pipeline on the QuestDB store.

Materializes real partitions through Definitions with ``GHTRADER_STORE=questdb``,
re-materializes them, and checks that row counts do not change and reads return exactly
what was written. It runs twice: against the in-memory stand-in (everywhere: the store's
code path under Dagster) and, marked ``questdb``, against a live server when
GHTRADER_QDB_HOST is set (tables prefixed ``ghtrader_test_<uuid8>_``, dropped afterwards).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid

import pytest
from dagster import DagsterInstance

from ghtrader_assets import calendar, schema
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.resources import StoreResource
from ghtrader_assets.schema import MANIFESTS, TICKS, VALIDATION_SUMMARY, TableSpec
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import parse_universe

LIVE = pytest.mark.skipif(
    not os.environ.get("GHTRADER_QDB_HOST", "").strip(),
    reason="needs a live QuestDB: set GHTRADER_QDB_HOST (and GHTRADER_QDB_* as needed)",
)

CU, M = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m")
DAYS = [d.isoformat() for d in calendar.trading_days(dt.date(2026, 3, 2), dt.date(2026, 3, 3))]


def _all_specs() -> list[TableSpec]:
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    specs = [v for v in vars(schema).values() if isinstance(v, TableSpec)]
    return [*specs, PARTITION_LOG]


class FakeQuestDBResource(StoreResource):
    """The QuestDB store with the in-memory stand-in behind its SQL, ILP and QWP clients."""

    def _create(self):
        from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
        from ghtrader_assets_tests.fake_questdb import FakeQuestDB

        db = FakeQuestDB()
        store = QuestDBStore(
            QuestDBSettings(host=self.qdb_host, transport=self.qdb_transport, cache_ttl=None),
            sql=db,
            sender_factory=db.sender,
            qwp_connect=lambda _settings: db.qwp(),
            sleep=lambda _seconds: None,
        )
        store.ensure_tables()  # as StoreResource does for a real server
        return store


@pytest.fixture(params=["fake-qwp", pytest.param("live", marks=[pytest.mark.questdb, LIVE])])
def store_resource(request, tmp_path):
    if request.param.startswith("fake"):
        transport = request.param.split("-", 1)[1]
        resource = FakeQuestDBResource(
            kind="questdb",
            data_dir=str(tmp_path),
            qdb_host=f"fake-{uuid.uuid4().hex[:6]}",
            qdb_transport=transport,
        )
        yield resource
        resource.get_store().close()
        return
    yield from _live_resource(tmp_path)


def _live_resource(tmp_path):
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore

    env = QuestDBSettings.from_env()
    prefix = f"ghtrader_test_{uuid.uuid4().hex[:8]}_"
    resource = StoreResource(
        kind="questdb",
        data_dir=str(tmp_path),
        qdb_host=env.host,
        qdb_ilp_port=env.ilp_port,
        qdb_pg_port=env.pg_port,
        qdb_user=env.user,
        qdb_password=env.password or "",
        qdb_token=env.token or "",
        qdb_transport=env.transport,
        qdb_table_prefix=prefix,
    )
    yield resource
    cleaner = QuestDBStore(dataclasses.replace(env, table_prefix=prefix))
    try:
        resource.get_store().close()  # settles while the tables still exist
    finally:
        try:
            for spec in _all_specs():
                cleaner.drop_table(spec)
        finally:
            cleaner.close()


def test_pipeline_materializes_and_rematerializes_on_questdb(tmp_path, store_resource):
    resource = store_resource
    # The in-memory stand-in is slow (pandas upserts); one day proves the code path there.
    days = (
        DAYS
        if resource.kind == "questdb" and not isinstance(resource, FakeQuestDBResource)
        else DAYS[:1]
    )
    settings = Settings(
        store="questdb", data_dir=tmp_path, universe=(CU, M), start_date="2026-01-05"
    )
    defs = build_definitions(settings, store=resource)
    job = defs.resolve_job_def(INGEST_JOB)
    store = resource.get_store()
    if isinstance(resource, FakeQuestDBResource):  # every table exists before any write
        from ghtrader_assets.schema import all_tables

        created = set(store.inner._sql.tables)
        assert {store.inner.table_name(spec) for spec in all_tables()} <= created
    with DagsterInstance.ephemeral() as instance:
        for day in days:
            assert job.execute_in_process(partition_key=day, instance=instance).success
        counts = {
            (sym.raw, day): len(store.read_partition(TICKS, sym.raw, day))
            for sym in (CU, M)
            for day in days
        }
        # Re-materializing changes no row count.
        for day in days:
            assert job.execute_in_process(partition_key=day, instance=instance).success
    for (sym, day), n in counts.items():
        ticks = store.read_partition(TICKS, sym, day)
        assert len(ticks) == n > 10_000
        assert ticks["id"].is_unique
        assert set(ticks["trading_day"]) == {day}
    # Exactly the rows the source produced, in values, not only in count.
    source = SimulatedSource()
    entry = source.roll_entry(CU, dt.date.fromisoformat(DAYS[0]))
    produced = source.ticks(entry).sort_values(["ts", "id"]).reset_index(drop=True)
    stored = store.read_partition(TICKS, CU.raw, DAYS[0]).sort_values(["ts", "id"])
    assert stored["last_price"].tolist() == produced["last_price"].tolist()
    assert stored["datetime"].tolist() == produced["datetime"].tolist()
    assert store.partitions(TICKS, CU.raw) == days
    assert sorted(store.read_table(MANIFESTS, symbols=[CU.raw])["trading_day"]) == days
    assert len(store.read_table(VALIDATION_SUMMARY, symbols=[CU.raw, M.raw])) == 2 * len(days)
    coverage = store.coverage([CU.raw, M.raw]).set_index("symbol")
    assert coverage.at[CU.raw, "n_days"] == len(days)
    assert coverage.at[CU.raw, "rows"] == sum(n for (s, _), n in counts.items() if s == CU.raw)

"""The pooled SQLite instance storage: what the shipped instances select, that a day's run
records exactly what Dagster's own storage reads back (what the UI shows), and that pooled
connections never cross a fork or outlive a wiped run shard."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.event_log.base import AssetRecordsFilter
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from sqlalchemy import text

from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.instance_storage import (
    MAX_OPEN_SHARDS,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
)
from ghtrader_assets.runner import DEMO_INSTANCE_YAML, STORAGE_YAML
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets.validation import CHECKS

ROOT = Path(__file__).resolve().parent.parent
LOCAL_INSTANCE = ROOT / "infra" / "dagster" / "dagster.yaml"
DCE_M = parse_main_symbol("KQ.m@DCE.m")
DAY = "2026-03-03"


def _storage_blocks(text_: str) -> dict:
    config = yaml.safe_load(text_)
    return {k: config.get(k) for k in ("run_storage", "event_log_storage")}


def test_local_and_demo_instances_select_the_pooled_storage(tmp_path):
    shipped = _storage_blocks(STORAGE_YAML)
    assert shipped["event_log_storage"]["class"] == "PooledSqliteEventLogStorage"
    assert shipped["run_storage"]["class"] == "PooledSqliteRunStorage"
    assert _storage_blocks(LOCAL_INSTANCE.read_text()) == shipped
    assert _storage_blocks(DEMO_INSTANCE_YAML) == shipped
    for source in (LOCAL_INSTANCE.read_text(), DEMO_INSTANCE_YAML):
        home = tmp_path / uuid.uuid4().hex
        home.mkdir()
        (home / "dagster.yaml").write_text(source)
        dagster_instance_config(str(home))  # Dagster's own validation of the whole file


def test_an_unknown_durability_level_is_refused_when_the_instance_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(STORAGE_YAML.replace("NORMAL", "OFF", 1))
    with pytest.raises(DagsterInvalidConfigError, match="synchronous"):
        DagsterInstance.from_config(str(tmp_path))


@pytest.fixture()
def day_run(tmp_path):
    """One trading day of one symbol run by the day runner into a fresh ``ghtrader`` instance,
    in its own process (as ``ghtrader demo`` does; the loaded job stays out of this one)."""
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "GHTRADER_DATA_DIR": str(tmp_path / "data"),
        "GHTRADER_UNIVERSE": DCE_M.raw,
        "GHTRADER_START_DATE": "2026-03-02",
        "GHTRADER_AUTOMATION": "off",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DAGSTER_HOME", None)
    script = (
        "import sys; from pathlib import Path\n"
        "from ghtrader_assets.runner import ensure_dagster_home, run_day\n"
        "ensure_dagster_home(Path(sys.argv[1])); day = run_day(sys.argv[2])\n"
        "print(day.run_id if day.success else 'failed')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(home), DAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    run_id = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    assert out.returncode == 0 and run_id != "failed", out.stderr[-3000:]
    assert (home / "dagster.yaml").read_text() == DEMO_INSTANCE_YAML
    return home, run_id


def test_a_day_run_reads_back_the_same_through_dagsters_own_storage(day_run, tmp_path, monkeypatch):
    """What the UI shows (run status, each asset's materialization of the day, each check's
    result of the day) is stored in Dagster's files and schema: Dagster's own SQLite storage,
    opened on the same folder, reads it all."""
    home, run_id = day_run
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the pooled storages default to
    with DagsterInstance.from_config(str(home)) as pooled:
        assert isinstance(pooled.event_log_storage, PooledSqliteEventLogStorage)
        assert isinstance(pooled.run_storage, PooledSqliteRunStorage)
        with pooled.event_log_storage.index_connection() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        pooled_events = [e.dagster_event_type for e in pooled.all_logs(run_id)]
    plain_home = tmp_path / "plain_home"
    plain_home.mkdir()
    (plain_home / "dagster.yaml").write_text(
        "run_storage:\n  module: dagster._core.storage.runs\n  class: SqliteRunStorage\n"
        f"  config:\n    base_dir: {home / 'history'}\n"
        "event_log_storage:\n  module: dagster._core.storage.event_log\n"
        f"  class: SqliteEventLogStorage\n  config:\n    base_dir: {home / 'history' / 'runs'}\n"
    )
    with DagsterInstance.from_config(str(plain_home)) as plain:
        assert type(plain.event_log_storage) is SqliteEventLogStorage
        assert type(plain.run_storage) is SqliteRunStorage
        assert plain.get_run_by_id(run_id).is_success
        assert [e.dagster_event_type for e in plain.all_logs(run_id)] == pooled_events
        keys = SymbolAssetKeys.of(DCE_M)
        for key in vars(keys).values():
            records = plain.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[DAY]), limit=1
            ).records
            assert records and records[0].run_id == run_id, key
        evaluations = plain.get_event_records(
            EventRecordsFilter(DagsterEventType.ASSET_CHECK_EVALUATION), limit=100
        )
        data = [r.event_log_entry.dagster_event.event_specific_data for r in evaluations]
        judged = {(d.check_name, d.partition) for d in data}
        assert judged == {(c.name, DAY) for c in CHECKS}


def _engine_ids(storage: PooledSqliteEventLogStorage, queue) -> None:
    """In a forked child: use the storage and report which engine objects it holds."""
    from ghtrader_assets import instance_storage

    with storage.index_connection() as conn:
        conn.execute(text("SELECT 1"))
    queue.put(
        (
            [id(e) for e in storage._engines._engines.values()],
            [id(e) for e in instance_storage._INHERITED],
        )
    )


def test_pooled_connections_never_cross_a_fork(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        with storage.index_connection() as conn:
            conn.execute(text("SELECT 1"))
        parent = [id(e) for e in storage._engines._engines.values()]
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_engine_ids, args=(storage, queue))
        child.start()
        child_engines, inherited = queue.get(timeout=60)
        child.join(60)
        assert child.exitcode == 0
        assert child_engines and not set(child_engines) & set(parent)
        assert set(parent) <= set(inherited)  # kept, never closed in the child
        with storage.index_connection() as conn:  # the parent's connection still works
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        storage.dispose()


def test_open_run_shards_are_bounded_and_wipe_closes_them(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        with storage.index_connection() as conn:
            conn.execute(text("SELECT 1"))
        for _ in range(MAX_OPEN_SHARDS + 4):
            storage.get_logs_for_run(str(uuid.uuid4()))
        open_files = list(storage._engines._engines)
        assert len(open_files) == MAX_OPEN_SHARDS + 1
        assert any(f.endswith("/index.db") for f in open_files)  # the index is never closed
        storage.wipe()
        # the run shards' engines are gone with their files; only the index is open again
        assert [f.rsplit("/", 1)[1] for f in storage._engines._engines] == ["index.db"]
        assert sorted(p.name for p in (tmp_path / "runs").glob("*.db")) == ["index.db"]
    finally:
        storage.dispose()


def _layout(path: Path) -> tuple[list[str], list[str], str]:
    """Tables, indexes and journal mode of a SQLite file."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        names = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return (
        [n for t, n in names if t == "table"],
        [n for t, n in names if t == "index"],
        mode,
    )


def test_a_new_run_shard_is_set_up_as_dagster_sets_it_up(tmp_path):
    """The fast shard set-up (migration scripts loaded once per process) gives the same
    tables, indexes, journal mode and Alembic head as Dagster's own."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.sql import check_alembic_revision, get_alembic_config

    run_id = str(uuid.uuid4())
    ours = PooledSqliteEventLogStorage(str(tmp_path / "ours"))
    theirs = SqliteEventLogStorage(str(tmp_path / "theirs"))
    try:
        for storage in (ours, theirs):
            assert storage.get_logs_for_run(run_id) == []  # creates the run's shard
        ours_file = tmp_path / "ours" / f"{run_id}.db"
        assert _layout(ours_file) == _layout(tmp_path / "theirs" / f"{run_id}.db")
        assert _layout(ours_file)[2] == "wal"
        config = get_alembic_config(sqlite_event_log.__file__)
        with ours.run_connection(run_id) as conn:
            db_revision, head = check_alembic_revision(config, conn)
        assert db_revision == head is not None
    finally:
        ours.dispose()
        theirs.dispose()


@pytest.mark.parametrize("watcher_class", [SqliteEventLogStorage, PooledSqliteEventLogStorage])
def test_a_live_run_is_followed_by_a_watcher_in_another_storage(tmp_path, watcher_class):
    """Review finding: the UI follows a running run by watching its shard file
    (``SqliteEventLogStorage.watch``). The run worker's pooled connection stayed open, so its
    events stayed in the WAL, the file never changed and the run's page stopped following
    it. Each write transaction now touches the file; the UI's storage (Dagster's or ours)
    sees every event while the writer's connection is still open."""
    import time

    from dagster._core.events.log import EventLogEntry

    base_dir = str(tmp_path / "runs")
    run_id = str(uuid.uuid4())
    writer = PooledSqliteEventLogStorage(base_dir)
    watcher = watcher_class(base_dir)  # the webserver's view of the same files

    def store(i: int) -> None:
        writer.store_event(
            EventLogEntry(
                error_info=None,
                level=20,
                user_message=f"event {i}",
                run_id=run_id,
                timestamp=time.time(),
            )
        )

    try:
        store(0)  # the run's shard exists before the UI opens the run's page
        seen: list[str] = []
        watcher.watch(run_id, None, lambda entry, _cursor: seen.append(entry.user_message))
        for i in range(1, 6):
            store(i)
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while len(seen) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [f"event {i}" for i in range(6)]
        # Reads do not touch the file (a watcher's own reads must not wake it again).
        shard = Path(writer.path_for_shard(run_id))
        mtime = shard.stat().st_mtime_ns
        assert len(writer.get_records_for_run(run_id).records) == 6
        assert shard.stat().st_mtime_ns == mtime
    finally:
        watcher.dispose()
        writer.dispose()

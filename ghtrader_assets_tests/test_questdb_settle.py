"""Writes the server did not keep fail where a user sees them (issue 11, item 2).

QuestDB commits a write to its WAL and applies it later; the store verifies each day's row
count once per batch (``settle``). A mismatch used to surface only at the next read or,
for a run's last writes, as a log line at exit. Now:

* the step that wrote settles before it can succeed (the IO manager, after an output's
  writes): the step and the run fail, the error names table, symbol and day, and the
  day's manifest file is not written;
* closing a store with unverified writes raises after every handle is released, and the
  CLI prints one line per such store and exits 1.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid

import pandas as pd
import pytest
from dagster import DagsterInstance

from ghtrader_assets import calendar
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.resources import StoreResource
from ghtrader_assets.schema import TICKS
from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
from ghtrader_assets.symbols import parse_universe
from ghtrader_assets_tests.fake_questdb import FakeQuestDB, FakeQwpHandle

CU = parse_universe("KQ.m@SHFE.cu")[0]
DAY = calendar.trading_days(dt.date(2026, 3, 2), dt.date(2026, 3, 2))[0].isoformat()


class LosesTickRows(FakeQuestDB):
    """A server that acknowledges every tick row but keeps all but the last of each send
    (the verification must notice; nothing else would)."""

    def upsert(self, table: str, df: pd.DataFrame, at: str) -> None:
        if table.endswith("ticks_main_l5") and len(df) > 1:
            df = df.iloc[:-1]
        super().upsert(table, df, at)


class CountingQwp(FakeQwpHandle):
    closed = 0

    def close(self, timeout: float | None = None) -> None:
        type(self).closed += 1


def _store(db: FakeQuestDB) -> QuestDBStore:
    return QuestDBStore(
        QuestDBSettings(host="qdb.example", transport="qwp", cache_ttl=None),
        sql=db,
        sender_factory=db.sender,
        qwp_connect=lambda _settings: CountingQwp(db),
        sleep=lambda _seconds: None,
    )


class LossyResource(StoreResource):
    def _create(self):
        store = _store(LosesTickRows())
        store.ensure_tables()
        return store


def test_a_lost_write_fails_the_step_that_wrote_it_naming_table_and_day(tmp_path):
    resource = LossyResource(
        kind="questdb", data_dir=str(tmp_path), qdb_host=f"lossy-{uuid.uuid4().hex[:6]}"
    )
    settings = Settings(store="questdb", data_dir=tmp_path, universe=(CU,), start_date="2026-01-05")
    job = build_definitions(settings, store=resource).resolve_job_def(INGEST_JOB)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["SHFE__cu_ticks"]
    error = failures[0].step_failure_data.error
    message = error.message + "".join(c.message for c in _causes(error))
    assert "'ticks_main_l5'" in message and CU.raw in message and DAY in message
    assert "did not land as written" in message
    # The manifest step never ran, so no file vouches for the day.
    assert not list((tmp_path / "manifests").rglob("*.json"))
    # Nothing is left pending for the process's exit to report again.
    assert not resource.get_store().inner._pending
    resource.get_store().close()


def _causes(error):
    while error.cause is not None:
        error = error.cause
        yield error


def _ticks(n: int) -> pd.DataFrame:
    from ghtrader_assets_tests.test_questdb_unit import ticks

    return ticks(n)


def test_close_with_a_lost_write_raises_after_releasing_every_handle():
    from ghtrader_assets_tests.test_questdb_unit import MONDAY, SYMBOL

    store = _store(LosesTickRows())
    CountingQwp.closed = 0
    store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), _ticks(10))
    with pytest.raises(StoreError, match=r"wrote 10 rows, 9 carry write id") as info:
        store.close()
    assert MONDAY.isoformat() in str(info.value) and SYMBOL in str(info.value)
    assert CountingQwp.closed == 1  # released before the error was raised


def test_a_with_block_keeps_its_own_error_and_logs_the_lost_write(caplog):
    import ghtrader_assets.stores.questdb.store as store_module
    from ghtrader_assets_tests.test_questdb_unit import MONDAY, SYMBOL

    store = _store(LosesTickRows())
    with pytest.raises(KeyError), store:
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), _ticks(10))
        raise KeyError("the body's own error")
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name == store_module.logger.name and r.levelname == "ERROR"
    ]
    assert len(logged) == 1 and "wrote 10 rows, 9 carry write id" in logged[0]


def test_cli_exits_1_with_one_line_when_writes_did_not_land(monkeypatch, capsys, tmp_path):
    from ghtrader_assets import cli, resources
    from ghtrader_assets_tests.test_questdb_unit import MONDAY, SYMBOL

    store = _store(LosesTickRows())

    def command(_args) -> int:  # a command that writes in the CLI's own process
        store.write_partition(TICKS, SYMBOL, MONDAY.isoformat(), _ticks(10))
        return 0

    monkeypatch.setitem(resources._STORES, ("lossy", resources.os.getpid()), store)
    monkeypatch.setattr(cli, "cmd_status", command)
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    assert "ghtrader_assets.resources" in sys.modules
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ghtrader: QuestDB writes did not land")
    assert SYMBOL in err and MONDAY.isoformat() in err and "Traceback" not in err

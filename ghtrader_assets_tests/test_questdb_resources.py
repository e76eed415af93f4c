"""The store resource with QuestDB: settings resolved the same way inside and outside runs,
writes settled when a step ends, handles closed explicitly (never left to ``__dealloc__``
at interpreter exit)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import EnvVar

from ghtrader_assets import resources
from ghtrader_assets.resources import StoreResource, close_stores
from ghtrader_assets.schema import TICKS
from ghtrader_assets.stores.questdb import QuestDBSettingsError, QuestDBStore
from ghtrader_assets_tests.cli_process import ROOT
from ghtrader_assets_tests.fake_questdb import FakeQuestDB
from ghtrader_assets_tests.test_questdb_unit import ticks

SYMBOL = "KQ.m@SHFE.cu"
MONDAY = dt.date(2025, 1, 6).isoformat()


class Handle:
    """A QWP handle that records being closed."""

    def __init__(self, db: FakeQuestDB) -> None:
        self.inner = db.qwp()
        self.closed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self, timeout: float | None = None) -> None:
        self.closed += 1


class StandInResource(StoreResource):
    """The real resource, its settings resolution included, over the stand-in."""

    def _create(self) -> QuestDBStore:
        db = self.__class__.db

        def connect(_settings: Any) -> Handle:  # QWP connects lazily, on first use
            handle = Handle(db)
            self.__class__.handles.append(handle)
            return handle

        store = QuestDBStore(
            self.questdb_settings(),
            sql=db,
            sender_factory=db.sender,
            qwp_connect=connect,
            sleep=lambda _s: None,
        )
        store.ensure_tables([TICKS])
        return store


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(resources, "_STORES", {})
    StandInResource.db = FakeQuestDB()  # type: ignore[attr-defined]
    StandInResource.handles = []  # type: ignore[attr-defined]
    yield StandInResource
    close_stores()


def child_store(closed_message: str) -> QuestDBStore:
    """For a child process's script: the stand-in resource's store, with a fresh stand-in,
    whose QWP handle prints ``closed_message`` when it is closed."""
    Handle.close = lambda self, timeout=None: print(closed_message, flush=True)  # type: ignore[method-assign]
    StandInResource.db = FakeQuestDB()  # type: ignore[attr-defined]
    StandInResource.handles = []  # type: ignore[attr-defined]
    return StandInResource(kind="questdb", qdb_host="q", qdb_transport="qwp").get_store()


def _run_script(script: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter with only the repository on its path."""
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_env_vars_resolve_outside_a_run_to_their_values(stand_in, monkeypatch) -> None:
    monkeypatch.setenv("GHTRADER_QDB_HOST", "qdb.internal")
    monkeypatch.setenv("GHTRADER_QDB_PASSWORD", "pw-9")
    resource = stand_in(
        kind="questdb",
        qdb_host=EnvVar("GHTRADER_QDB_HOST"),
        qdb_password=EnvVar("GHTRADER_QDB_PASSWORD"),
        qdb_transport="qwp",
    )
    store = resource.get_store()
    assert store.settings.host == "qdb.internal"  # not the variable's name
    assert store.settings.password == "pw-9"
    # Same values, same store: a run's resolved resource would find this one.
    plain = stand_in(kind="questdb", qdb_host="qdb.internal", qdb_transport="qwp")
    assert plain.get_store() is store


def test_an_unset_host_is_a_settings_error(stand_in, monkeypatch) -> None:
    monkeypatch.delenv("GHTRADER_QDB_HOST", raising=False)
    resource = stand_in(kind="questdb", qdb_host=EnvVar("GHTRADER_QDB_HOST"))
    with pytest.raises(QuestDBSettingsError, match="needs GHTRADER_QDB_HOST"):
        resource.get_store()


def test_a_multiprocessing_child_closes_its_stores_at_exit(tmp_path) -> None:
    """Dagster step processes and the demo's workers end through multiprocessing's
    ``os._exit``, where atexit handlers do not run: the store is still settled and its QWP
    handle closed."""
    script = tmp_path / "child.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "def work():\n"
        "    from ghtrader_assets_tests.test_questdb_resources import TICKS, child_store, ticks\n"
        "    store = child_store('child closed qwp')\n"
        "    store.write_partition(TICKS, 'KQ.m@SHFE.cu', '2025-01-06', ticks(3))\n"
        "    print('child pending', bool(store.inner._pending), flush=True)\n"
        "if __name__ == '__main__':\n"
        "    for method in ('fork', 'forkserver', 'spawn'):\n"
        "        p = mp.get_context(method).Process(target=work)\n"
        "        p.start(); p.join()\n"
        "        print(method, 'exit', p.exitcode, flush=True)\n"
    )
    proc = _run_script(script, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for method in ("fork", "forkserver", "spawn"):
        assert f"{method} exit 0" in lines, proc.stdout
    assert lines.count("child pending True") == 3
    assert lines.count("child closed qwp") == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_close_stores_closes_every_qwp_handle_once_and_forgets_the_stores(stand_in) -> None:
    first = stand_in(kind="questdb", qdb_host="a", qdb_transport="qwp").get_store()
    second = stand_in(kind="questdb", qdb_host="b", qdb_transport="qwp").get_store()
    first.write_partition(TICKS, SYMBOL, MONDAY, ticks(3))
    second.read_partition(TICKS, SYMBOL, MONDAY)
    close_stores()
    assert [h.closed for h in stand_in.handles] == [1, 1]
    assert resources._STORES == {}
    assert not first.inner._pending  # settled before the handles closed
    close_stores()  # idempotent
    assert [h.closed for h in stand_in.handles] == [1, 1]


def test_stores_are_closed_at_interpreter_exit(tmp_path) -> None:
    """A process that never calls close (a script, a step process) still closes its QWP
    handle while the interpreter is whole: ``close_stores`` is registered with atexit."""
    script = tmp_path / "exit.py"
    script.write_text(
        "from ghtrader_assets_tests.test_questdb_resources import TICKS, child_store, ticks\n"
        "store = child_store('qwp handle closed')\n"
        "store.write_partition(TICKS, 'KQ.m@SHFE.cu', '2025-01-06', ticks(3))\n"
        "print('exiting', flush=True)\n"
    )
    proc = _run_script(script, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["exiting", "qwp handle closed"], proc.stdout
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr


def test_a_forked_child_does_not_close_its_parents_store(stand_in, tmp_path, monkeypatch) -> None:
    """The demo's workers fork from a process that holds an open store: closing it in the
    child would end the parent's connections (shared sockets)."""
    import multiprocessing as mp
    import os

    log = tmp_path / "closed.txt"

    def close(self: Handle, timeout: float | None = None) -> None:
        with log.open("a") as fh:  # a file: visible across processes
            fh.write(f"{os.getpid()}\n")

    monkeypatch.setattr(Handle, "close", close)
    parent = stand_in(kind="questdb", qdb_host="p", qdb_transport="qwp").get_store()
    parent.read_partition(TICKS, SYMBOL, MONDAY)  # opens the QWP handle

    proc = mp.get_context("fork").Process(target=close_stores)
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    assert not log.exists()  # the child left the parent's handle alone
    close_stores()
    assert log.read_text().split() == [str(os.getpid())]

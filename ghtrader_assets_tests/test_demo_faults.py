"""The demo under crashes and odd input (issue 10, items 4, 9, 10, 11).

* killed runs (kill -9) used to hold their pool slots forever, so after two kills the demo
  hung with no output: dead runs are now failed and their slots freed, the demo reports
  what it waits for and gives up after a bound;
* Ctrl-C/SIGTERM must not leave worker processes behind;
* four first-time demos on a fresh DAGSTER_HOME raced on the SQLite instance;
* the summary crashed (KeyError, no summary) instead of reporting, and showed an old
  manifest as if this run had written it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.test_utils import create_run_for_test

from ghtrader_assets import cli
from ghtrader_assets.runner import (
    HOST_TAG,
    PID_TAG,
    DayRun,
    RunsStalledError,
    ensure_dagster_home,
    release_dead_runs,
    run_days,
    set_pool_limit,
)
from ghtrader_assets_tests.cli_process import cli_env, run_ghtrader, start_ghtrader, symbol_rows

POOL = "simulated"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child counts as gone: it runs nothing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _still_alive_after(pids: list[int], seconds: float, poll: float = 0.2) -> list[int]:
    """The processes of ``pids`` still running once all are gone or ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(poll)
    return [p for p in pids if _alive(p)]


def _started_run(instance, pid: int, step: str) -> str:
    import socket

    run = create_run_for_test(
        instance,
        job_name="ingest_daily",
        status=DagsterRunStatus.STARTED,
        tags={HOST_TAG: socket.gethostname(), PID_TAG: str(pid)},
    )
    instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, step)
    return run.run_id


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh DAGSTER_HOME with the demo's set-up, as `ghtrader demo` makes it."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    path = ensure_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    set_pool_limit(POOL, 4)
    return path


def test_dead_runs_release_their_pool_slots(home):
    with DagsterInstance.get() as instance:
        dead = [_started_run(instance, _dead_pid(), f"step_{i}") for i in range(3)]
        alive = _started_run(instance, os.getpid(), "step_live")
        info = instance.event_log_storage.get_concurrency_info(POOL)
        assert info.active_slot_count == 4  # the pool is full: every new step would wait

        assert sorted(release_dead_runs(instance)) == sorted(dead)

        info = instance.event_log_storage.get_concurrency_info(POOL)
        assert info.active_run_ids == {alive}
        for run_id in dead:
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == DagsterRunStatus.STARTED
        assert release_dead_runs(instance) == []  # idempotent


def _sleep_forever(day: str) -> DayRun:
    """A worker that never finishes; it leaves its pid in ``GHTRADER_TEST_PIDFILE``."""
    Path(os.environ["GHTRADER_TEST_PIDFILE"]).write_text(str(os.getpid()))
    time.sleep(600)
    return DayRun(day, True, "never")


def test_waiting_is_reported_and_bounded_and_workers_are_stopped(home, tmp_path, monkeypatch):
    pidfile = tmp_path / "worker.pid"
    monkeypatch.setenv("GHTRADER_TEST_PIDFILE", str(pidfile))
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(RunsStalledError) as caught:
        run_days(
            ["2026-03-02"],
            1,
            pool=POOL,
            timeout=2.0,
            report_every=0.5,
            say=said.append,
            run=_sleep_forever,
        )
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "gave up after" in message and "2026-03-02" in message
    assert f"pool '{POOL}'" in message and "dagster instance concurrency set" in message
    assert any("waiting" in line and "2026-03-02" in line for line in said)
    worker = int(pidfile.read_text())
    assert not _still_alive_after([worker], 10, poll=0.1), "the worker process was left running"


def _demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(
        drop=(),
        GHTRADER_DATA_DIR=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "data" / "dagster_home"),
        GHTRADER_UNIVERSE="KQ.m@DCE.m",
        GHTRADER_START_DATE="2025-01-02",
        **extra,
    )


def test_demo_runs_after_killed_runs_held_every_slot(tmp_path, monkeypatch):
    """The reported hang: 4/4 slots of the pool held by runs whose process was killed."""
    env = _demo_env(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    ensure_dagster_home(Path(env["DAGSTER_HOME"]))
    set_pool_limit(POOL, 4)
    with DagsterInstance.get() as instance:
        dead = [_started_run(instance, _dead_pid(), f"step_{i}") for i in range(4)]
    proc = run_ghtrader("demo", "--days", "1", "--timeout", "240", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "released 4 earlier run(s) whose process died" in proc.stdout
    with DagsterInstance.get() as instance:
        for run_id in dead:
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info(POOL).active_slot_count == 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


# A demo whose two days run at once, each in its own worker process.
TWO_WORKER_DEMO = ("demo", "--days", "2", "--workers", "2")


def _two_workers_of(demo: subprocess.Popen) -> list[int]:
    """The demo's worker processes, once it has two (at most 120 s)."""
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _children(demo.pid)
    assert len(workers) >= 2, "the demo never started its workers"
    return workers


def test_sigterm_leaves_no_worker_processes_and_no_started_runs(tmp_path):
    env = _demo_env(tmp_path, GHTRADER_SOURCE_LATENCY_SECONDS="120")
    demo = start_ghtrader(
        *TWO_WORKER_DEMO,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        workers = _two_workers_of(demo)
        # Let the runs start (they then sleep in the source's latency).
        time.sleep(8)
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err
    assert "interrupted" in err
    assert not _still_alive_after(workers, 15), "worker processes were orphaned"
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            unfinished = instance.get_runs(
                RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING])
            )
            assert unfinished == []
            assert instance.event_log_storage.get_concurrency_info(POOL).active_slot_count == 0
    finally:
        del os.environ["DAGSTER_HOME"]


SETUP = """
import os, sys
from pathlib import Path
from ghtrader_assets.runner import ensure_dagster_home, run_days, set_pool_limit
from dagster import DagsterInstance
home = ensure_dagster_home(Path(sys.argv[1]))
set_pool_limit("simulated", 4)
with DagsterInstance.get() as instance:
    instance.get_runs()
print(instance.event_log_storage is not None)
"""


def test_four_first_time_set_ups_do_not_race(tmp_path):
    home = tmp_path / "fresh_home"
    env = cli_env()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SETUP, str(home)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [p.communicate(timeout=180) for p in procs]
    for proc, (_, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert "UNIQUE constraint" not in err and "already exists" not in err
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            assert instance.event_log_storage.get_concurrency_info(POOL).slot_count == 4
    finally:
        del os.environ["DAGSTER_HOME"]


def test_demo_reports_even_when_nothing_was_stored_and_coverage_fails(
    home, tmp_path, monkeypatch, capsys
):
    """No validation summary (KeyError 'symbol' before), a failing coverage run (a
    traceback and no summary before): the demo prints what ran, what failed and where the
    data is, and exits 1."""
    import ghtrader_assets.assets.coverage as coverage_asset

    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GHTRADER_UNIVERSE", "KQ.m@SHFE.cu,KQ.m@DCE.m")

    def failed_runs(days, workers, **kwargs):
        return [DayRun(d, False, f"run-{d}") for d in days]

    def broken_report(*args, **kwargs):
        raise RuntimeError("coverage store unreachable")

    monkeypatch.setattr(cli, "run_days", failed_runs)
    monkeypatch.setattr(coverage_asset, "coverage_report", broken_report)
    assert cli.main(["demo", "--days", "2"]) == 1
    out = capsys.readouterr().out
    rows = symbol_rows(out)
    assert len(rows) == 4 and all("not stored" in r for r in rows)
    assert out.count("FAILED") >= 3  # two runs and the coverage report
    assert "coverage report not refreshed" in out and "coverage store unreachable" in out
    assert str(tmp_path / "data" / "store") in out and "dagster dev" in out


def test_summary_says_when_a_manifest_is_the_old_one(tmp_path):
    """After a failed re-run, the day's manifest is the earlier one: shown as kept."""
    from ghtrader_assets.config import Settings
    from ghtrader_assets.definitions import INGEST_JOB, build_definitions
    from ghtrader_assets.symbols import parse_universe

    settings = Settings(
        data_dir=tmp_path, universe=tuple(parse_universe("KQ.m@DCE.m")), start_date="2026-01-05"
    )
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def(INGEST_JOB)
        assert job.execute_in_process(partition_key="2026-03-02", instance=instance).success
    store = defs.resources["store"].get_store()
    before = cli._demo_summary(
        store, settings, ["2026-03-02"], pd.Timestamp("2000-01-01", tz="UTC")
    )
    assert list(before["manifest"]) == ["yes"]
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1)
    after = cli._demo_summary(store, settings, ["2026-03-02", "2026-03-03"], later)
    assert after.at[0, "manifest"].startswith("kept (")
    assert after.at[1, "manifest"] == "no" and after.at[1, "checks_failed"] == "not stored"


def test_kill_9_of_the_demo_leaves_no_worker_running(tmp_path):
    """The demo killed outright cannot clean up; its workers must still go (Linux)."""
    from ghtrader_assets.runner import ORPHAN_GRACE_SECONDS

    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal and /proc are Linux facilities")
    env = _demo_env(tmp_path, GHTRADER_SOURCE_LATENCY_SECONDS="120")
    demo = start_ghtrader(
        *TWO_WORKER_DEMO,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        workers = _two_workers_of(demo)
        time.sleep(8)  # the runs are inside the source's latency now
    finally:
        demo.kill()
        demo.wait()
    left = _still_alive_after(workers, ORPHAN_GRACE_SECONDS + 20, poll=0.5)
    for pid in left:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived the killed demo"


def _die_or_linger(day: str) -> DayRun:
    """Day "kill" dies as kill -9 would; the other day's worker ignores SIGTERM (as a worker
    inside a Dagster run does) and lingers."""
    if day == "kill":
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return _sleep_forever(day)


def test_a_killed_worker_does_not_hang_the_runner(home, tmp_path, monkeypatch):
    pidfile = tmp_path / "worker.pid"
    monkeypatch.setenv("GHTRADER_TEST_PIDFILE", str(pidfile))

    def hung(*_args):
        raise AssertionError("run_days hung after a worker was killed")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # a regression fails the test instead of hanging the suite
    try:
        started = time.monotonic()
        results = run_days(
            ["kill", "linger"],
            2,
            timeout=300,
            report_every=0.5,
            say=lambda _l: None,
            run=_die_or_linger,
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 60
    assert [r.trading_day for r in results] == ["kill", "linger"]
    assert not any(r.success for r in results)
    assert all("BrokenProcessPool" in r.error for r in results)
    worker = int(pidfile.read_text())
    assert not _still_alive_after([worker], 10, poll=0.1), "the lingering worker was left running"


def _one_second(day: str) -> DayRun:
    time.sleep(1.0)
    return DayRun(day, True, f"run-{day}")


def test_the_timeout_is_for_a_stall_not_for_a_long_backfill(home):
    """Four 1 s days in a row on one worker take over 4 s; with a 2.5 s timeout none of
    them is a stall, so nothing gives up."""
    done: list[str] = []
    results = run_days(
        ["d1", "d2", "d3", "d4"],
        1,
        timeout=2.5,
        report_every=0.3,
        say=lambda _l: None,
        run=_one_second,
        on_done=lambda r: done.append(r.trading_day),
    )
    assert all(r.success for r in results) and sorted(done) == ["d1", "d2", "d3", "d4"]

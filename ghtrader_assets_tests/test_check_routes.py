"""Every route a run takes records each day's check results under that day (issue 13.1).

Routes: a UI launch of one partition, a UI backfill (Dagster's own backfill daemon
iteration, one day per run and several days per run), the daily automation's run requests,
the universe sensor's run requests, a run tagged with a one-day partition *range*, and
``ghtrader demo``. Each test reads what the instance stored, which is what the check's
*Partitions* tab shows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import instance_for_test

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.automation import plan_universe_backfill
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets.validation import CHECKS
from ghtrader_assets_tests.cli_process import cli_env, run_ghtrader

CU = parse_main_symbol("KQ.m@SHFE.cu")
TICKS = SymbolAssetKeys.of(CU).ticks
START = "2026-02-02"
DAYS = [d.isoformat() for d in calendar.trading_days(dt.date(2026, 3, 2), dt.date(2026, 3, 4))]
ALL_CHECKS = {c.name for c in CHECKS}


def recorded(instance: DagsterInstance, asset_key: AssetKey = TICKS) -> dict[str, dict]:
    """``{check name: {partition: passed}}`` of every check evaluation the instance stored."""
    out: dict[str, dict] = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.asset_check_evaluation_data
            if evaluation.asset_key == asset_key:
                out.setdefault(evaluation.check_name, {})[evaluation.partition] = evaluation.passed
    return out


def every_check_under(days, instance, failing: dict[str, str] | None = None) -> None:
    """All nine checks recorded once per day, under that day; ``failing``: check -> day."""
    failing = failing or {}
    stored = recorded(instance)
    assert set(stored) == ALL_CHECKS
    for name, by_day in stored.items():
        assert by_day == {d: failing.get(name) != d for d in days}, name


@pytest.fixture()
def instance():
    with instance_for_test() as inst:
        yield inst


def _defs(tmp_path, days_per_run: int = 1, **overrides):
    settings = Settings(
        data_dir=tmp_path, universe=(CU,), start_date=START, days_per_run=days_per_run
    )
    return build_definitions(settings, **overrides)


def test_ui_launch_of_one_partition(tmp_path, instance):
    defs = _defs(tmp_path)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "SHFE"]
    assert job.execute_in_process(
        instance=instance, partition_key=DAYS[0], asset_selection=keys
    ).success
    every_check_under(DAYS[:1], instance)


def test_range_tagged_one_day_run(tmp_path, instance):
    """A run tagged with a one-day range, as multi-run backfills and
    ``dagster asset materialize --partition-range D...D`` launch it."""
    defs = _defs(tmp_path)
    tags = {ASSET_PARTITION_RANGE_START_TAG: DAYS[1], ASSET_PARTITION_RANGE_END_TAG: DAYS[1]}
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(instance=instance, tags=tags)
    assert result.success
    every_check_under(DAYS[1:2], instance)


def test_range_run_with_a_blocking_failure_names_the_day(tmp_path, instance):
    bad = DAYS[1]
    source = SourceResource(simulated_defects={CU.raw: {bad: {"crossed_book": True}}})
    defs = _defs(tmp_path, days_per_run=3, source=source)
    tags = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[-1]}
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )
    assert not result.success  # the blocking failure fails the run, naming the day
    every_check_under(DAYS, instance, failing={"book_integrity": bad})
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["SHFE__cu_manifest"]
    assert f"{bad} (blocking checks failed: book_integrity)" in (
        failures[0].step_failure_data.user_failure_data.description
    )
    # Each day stands alone: the bad day gets no manifest, the others do.
    manifest = SymbolAssetKeys.of(CU).manifest
    materialized = {
        e.partition
        for e in result.all_events
        if e.is_step_materialization and e.asset_key == manifest
    }
    assert materialized == {DAYS[0], DAYS[2]}
    manifests = tmp_path / "manifests" / CU.key
    assert sorted(f.stem for f in manifests.glob("*.json")) == [DAYS[0], DAYS[2]]


def _module(tmp_path: Path, days_per_run: int) -> Path:
    """A code location file that builds the definitions for this test's settings."""
    path = tmp_path / "location.py"
    path.write_text(
        "from ghtrader_assets.config import Settings\n"
        "from ghtrader_assets.definitions import build_definitions\n"
        "from ghtrader_assets.symbols import parse_main_symbol\n"
        f"defs = build_definitions(Settings(data_dir={str(tmp_path)!r}, "
        f"universe=(parse_main_symbol({CU.raw!r}),), start_date={START!r}, "
        f"days_per_run={days_per_run}))\n"
    )
    return path


#: Launch a submitted run at once, in this process (the daemon's queue and a subprocess
#: launcher in production; what matters here is which runs the backfill creates).
SYNC_LAUNCH = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    },
    "run_launcher": {
        "module": "dagster._core.launcher.sync_in_memory_run_launcher",
        "class": "SyncInMemoryRunLauncher",
    },
}


@pytest.mark.parametrize("days_per_run", [1, 2])
def test_ui_backfill(tmp_path, days_per_run):
    """A backfill as the UI submits it, driven by Dagster's own backfill daemon iteration."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._time import get_current_timestamp

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(_module(tmp_path, days_per_run)), attribute="defs")
    )
    target = InProcessTestWorkspaceLoadTarget(origin)
    with (
        instance_for_test(overrides=SYNC_LAUNCH) as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        graph = context.create_request_context().asset_graph
        keys = [k for k in graph.get_all_asset_keys() if k.path[0] == "SHFE"]
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id="ui-backfill",
            asset_graph=graph,
            partition_names=DAYS,
            asset_selection=keys,
            backfill_timestamp=get_current_timestamp(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
        logger = logging.getLogger("test_ui_backfill")
        for _ in range(12):
            list(execute_backfill_iteration(context, logger))
            if instance.get_backfill("ui-backfill").status.value != "REQUESTED":
                break
        runs = instance.get_runs()
        assert runs and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        # One run per day (tagged with the day), or one per two days (range tags).
        assert len(runs) == (len(DAYS) if days_per_run == 1 else 2)
        every_check_under(DAYS, instance)


def test_automation_run_requests(tmp_path, instance):
    """The runs the automation daemon would launch for the requested partitions."""
    from dagster import evaluate_automation_conditions
    from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests

    defs = _defs(tmp_path)
    before = dt.datetime(2026, 3, 4, 12, 0, tzinfo=calendar.TZ)
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=before)
    result = evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        evaluation_time=before.replace(hour=15, minute=31),
        cursor=first.cursor,
    )
    requests = build_run_requests(
        list(result._requested_subsets), defs.resolve_asset_graph(), {}, emit_backfills=False
    )
    job = defs.resolve_implicit_global_asset_job_def()
    requests = [r for r in requests if r.partition_key]
    assert requests
    for request in requests:
        assert job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            tags=dict(request.tags or {}),
            asset_selection=list(request.asset_selection or []),
        ).success
    every_check_under(DAYS[-1:], instance)


@pytest.mark.parametrize("days_per_run", [1, 3])
def test_universe_sensor_run_requests(tmp_path, instance, days_per_run):
    defs = _defs(tmp_path, days_per_run=days_per_run)
    parts = trading_day_partitions(DAYS[0])
    now = dt.datetime(2026, 3, 4, 16, 0, tzinfo=calendar.TZ)
    plan = plan_universe_backfill(None, (), parts, instance, now=now, days_per_run=days_per_run)
    plan = plan_universe_backfill(
        plan.cursor, (CU,), parts, instance, now=now, days_per_run=days_per_run
    )
    assert plan.run_requests
    job = defs.resolve_implicit_global_asset_job_def()
    for request in plan.run_requests:
        assert job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key
            if ASSET_PARTITION_RANGE_START_TAG not in (request.tags or {})
            else None,
            tags=dict(request.tags or {}),
            asset_selection=list(request.asset_selection or []),
        ).success
    every_check_under(DAYS, instance)


def test_ghtrader_demo(tmp_path):
    env = cli_env(GHTRADER_DATA_DIR=str(tmp_path / "data"), GHTRADER_UNIVERSE=CU.raw)
    proc = run_ghtrader("demo", "--days", "2", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    days = re.findall(r"^\s+run \S+ \((\d{4}-\d\d-\d\d)\): success$", proc.stdout, re.M)
    (bad,) = re.findall(r"^\s+run \S+ \((\d{4}-\d\d-\d\d)\): FAILED as planned", proc.stdout, re.M)
    assert len(days) == 1, proc.stdout  # the other day is the demo's defective day
    os.environ["DAGSTER_HOME"] = str(tmp_path / "data" / "dagster_home")
    try:
        with DagsterInstance.get() as instance:
            every_check_under(
                sorted([*days, bad]), instance, failing={"book_integrity": bad, "gaps": bad}
            )
    finally:
        del os.environ["DAGSTER_HOME"]

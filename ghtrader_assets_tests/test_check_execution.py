"""Checks only run with their day (issue 13, item 4): no unpartitioned checks-only run.

The Dagster UI's *Execute all* on a ticks asset's Checks tab launches the checks alone and
without a partition. Ticks, checks and summary are one non-subsettable step, so the UI
greys the button out ("cannot execute without materializing the asset") and a checks-only
selection cannot even be built into a job; re-checking stored days is the
``revalidate_from_store`` job, which records each day's results under that day.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from dagster import AssetCheckKey, instance_for_test
from dagster._core.errors import DagsterInvalidSubsetError
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql, infer_repository_selector

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.assets.ingest import REVALIDATE_TAG
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, REVALIDATE_JOB, build_definitions
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY
from ghtrader_assets.symbols import parse_universe
from ghtrader_assets.validation import CHECKS

CU, M = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m")
DAY = calendar.trading_days(pd.Timestamp("2026-03-02").date(), pd.Timestamp("2026-03-02").date())
DAY = DAY[0].isoformat()


def _settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, universe=(CU, M), start_date="2026-01-05")


CHECKS_QUERY = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually jobNames } } }
    }
  }
}"""

LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on InvalidSubsetError { message }
    ... on PythonError { message }
    ... on LaunchRunSuccess { run { runId } }
  }
}"""


def test_execute_all_on_the_checks_tab_is_disabled_and_refused():
    """The UI's own GraphQL, against the code location ``dagster dev`` loads."""
    origin = LoadableTargetOrigin(module_name="ghtrader_assets.definitions", attribute="defs")
    with instance_for_test() as instance, in_process_test_workspace(instance, origin) as ctx:
        found = execute_dagster_graphql(ctx, CHECKS_QUERY, {"key": {"path": ["SHFE", "cu_ticks"]}})
        checks = found.data["assetNodeOrError"]["assetChecksOrError"]["checks"]
        assert {c["name"] for c in checks} == {c.name for c in CHECKS}
        # ExecuteChecksButton enables itself only for CAN_EXECUTE checks; otherwise it is
        # greyed out with "This check cannot execute without materializing the asset."
        assert {c["canExecuteIndividually"] for c in checks} == {"REQUIRES_MATERIALIZATION"}
        # The request the button would send (checks only, no partition) is refused: no run.
        params = {
            "mode": "default",
            "executionMetadata": {},
            "runConfigData": "{}",
            "selector": {
                **infer_repository_selector(ctx),
                "jobName": checks[0]["jobNames"][0],
                "assetSelection": [],
                "assetCheckSelection": [
                    {"assetKey": {"path": ["SHFE", "cu_ticks"]}, "name": c["name"]} for c in checks
                ],
            },
        }
        launched = execute_dagster_graphql(ctx, LAUNCH, {"params": params})
        outcome = launched.data["launchPipelineExecution"]
        assert outcome["__typename"] == "InvalidSubsetError"
        assert "does not support subsetting" in outcome["message"]
        assert instance.get_runs() == []


def test_a_checks_only_selection_is_refused_before_any_run(tmp_path):
    defs = build_definitions(_settings(tmp_path))
    job = defs.resolve_implicit_global_asset_job_def()
    checks = {AssetCheckKey(SymbolAssetKeys.of(CU).ticks, c.name) for c in CHECKS}
    with pytest.raises(DagsterInvalidSubsetError, match="cu_ticks"):
        job.get_subset(asset_selection=set(), asset_check_selection=checks)


def test_step_names_follow_one_scheme(tmp_path):
    defs = build_definitions(_settings(tmp_path))
    job = defs.resolve_job_def(INGEST_JOB)
    names = {node.name for node in job.graph.nodes}
    assert names == {
        f"{s.exchange}__{s.product}_{asset}"
        for s in (CU, M)
        for asset in ("roll_schedule", "ticks", "manifest")
    }
    assert all(re.fullmatch(r"[A-Z]+__[A-Za-z]+_[a-z_]+", n) for n in names)


def test_revalidate_rechecks_stored_days_under_their_partition(tmp_path, instance, monkeypatch):
    defects = {CU.raw: {DAY: {"gap": {"seconds": 20}}}}
    defs = build_definitions(_settings(tmp_path), source=SourceResource(simulated_defects=defects))
    first = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        partition_key=DAY, instance=instance
    )
    assert first.success
    store = defs.resources["store"].get_store()
    stored_ticks = store.read_partition(TICKS, CU.raw, DAY)
    gaps = [e for e in first.get_asset_check_evaluations() if e.check_name == "gaps"]
    cu_gaps = next(e for e in gaps if e.asset_key == SymbolAssetKeys.of(CU).ticks)
    assert not cu_gaps.passed and cu_gaps.severity.value == "WARN"

    # A stricter threshold, and a source that fails if asked for anything.
    monkeypatch.setenv("GHTRADER_VALIDATION_GAP_ERROR_ABOVE", "10")
    offline = build_definitions(
        _settings(tmp_path), source=SourceResource(kind="csv", csv_dir=str(tmp_path / "none"))
    )
    keys = SymbolAssetKeys.of(CU)
    job = offline.resolve_job_def(REVALIDATE_JOB)
    assert job.tags[REVALIDATE_TAG] == "true"
    result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    # The gap now fails at ERROR, a blocking check: Dagster fails the step, as on ingestion.
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == [keys.ticks.to_python_identifier()]
    assert "gaps" in str(failures[0].event_specific_data.error)
    keys = SymbolAssetKeys.of(CU)
    mats = result.asset_materializations_for_node(keys.ticks.to_python_identifier())
    assert [m.asset_key for m in mats] == [keys.validation_summary]  # ticks left as stored
    assert mats[0].metadata["recomputed_from_store"].value is True
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key == keys.ticks]
    assert {e.check_name for e in evaluations} == {c.name for c in CHECKS}
    assert {e.partition for e in evaluations} == {DAY}  # recorded under the day
    gap = next(e for e in evaluations if e.check_name == "gaps")
    assert not gap.passed and gap.severity.value == "ERROR"
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU.raw, DAY), stored_ticks)
    summary = store.read_partition(VALIDATION_SUMMARY, CU.raw, DAY)
    assert summary.at[0, "verdict_overall"] == "error"


def test_revalidating_a_day_never_ingested_is_refused(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    # The roll schedules of the day exist (so the step gets that far), the ticks never did.
    rolls = [SymbolAssetKeys.of(s).roll_schedule for s in (CU, M)]
    assert (
        defs.resolve_implicit_global_asset_job_def()
        .execute_in_process(partition_key=DAY, instance=instance, asset_selection=rolls)
        .success
    )
    job = defs.resolve_job_def(REVALIDATE_JOB)
    result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and all(
        f"nothing stored to re-validate on {DAY}" in str(e.event_specific_data.error)
        for e in failures
    )
    store = defs.resources["store"].get_store()
    assert store.read_partition(VALIDATION_SUMMARY, CU.raw, DAY).empty  # nothing invented

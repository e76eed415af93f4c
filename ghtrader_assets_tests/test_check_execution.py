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
from dagster import AssetCheckKey, DagsterInstance
from dagster._core.errors import DagsterInvalidSubsetError
from dagster._core.remote_representation.external import RemoteRepository
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._core.remote_representation.handle import RepositoryHandle
from dagster_graphql.schema.asset_checks import (
    GrapheneAssetCheck,
    GrapheneAssetCheckCanExecuteIndividually,
)

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


@pytest.fixture()
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, universe=(CU, M), start_date="2026-01-05")


def _remote_repository(defs) -> RemoteRepository:
    repo = defs.get_repository_def()
    return RemoteRepository(
        RepositorySnap.from_def(repo),
        repository_handle=RepositoryHandle.for_test(repository_name=repo.name),
        auto_materialize_use_sensors=True,
    )


def test_ui_cannot_execute_ticks_checks_on_their_own(tmp_path):
    remote = _remote_repository(build_definitions(_settings(tmp_path)))
    graph = remote.asset_graph
    for symbol in (CU, M):
        ticks = SymbolAssetKeys.of(symbol).ticks
        for check in CHECKS:
            node = graph.remote_asset_check_nodes_by_key[AssetCheckKey(ticks, check.name)]
            # What the Checks tab's Execute / Execute all buttons read (disabled unless
            # CAN_EXECUTE): the check shares an execution set with its asset.
            assert (
                GrapheneAssetCheck(node).resolve_canExecuteIndividually(None)
                == GrapheneAssetCheckCanExecuteIndividually.REQUIRES_MATERIALIZATION
            )
            assert ticks in node.execution_set_entity_keys


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

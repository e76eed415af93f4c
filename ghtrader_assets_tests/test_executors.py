"""The executor choice: in-process by default, still capped by the source pool across runs."""

from __future__ import annotations

import threading
import time

import pytest
from dagster import execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.test_utils import instance_for_test

from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.definitions import INGEST_JOB, backfill_policy, build_definitions
from ghtrader_assets.executors import PRELOAD_MODULES, build_executor, executor_kind
from ghtrader_assets.schema import TICKS
from ghtrader_assets.symbols import parse_main_symbol

CU = parse_main_symbol("KQ.m@SHFE.cu")
DAY = "2026-03-03"


def test_executor_setting_is_validated_when_definitions_load(monkeypatch, tmp_path):
    assert executor_kind({}) == "in_process"
    assert executor_kind({"GHTRADER_EXECUTOR": " ForkServer "}) == "forkserver"
    monkeypatch.setenv("GHTRADER_EXECUTOR", "threads")
    with pytest.raises(SettingsError, match="GHTRADER_EXECUTOR='threads'"):
        build_definitions(Settings(data_dir=tmp_path, universe=(CU,)))


def test_every_job_runs_in_process_by_default(tmp_path):
    defs = build_definitions(Settings(data_dir=tmp_path, universe=(CU,)))
    assert defs.resolve_job_def(INGEST_JOB).executor_def.name == "in_process"
    # The implicit asset job is what UI launches, backfills and the automation run.
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"


def test_forkserver_preloads_the_code_location():
    executor = build_executor("forkserver", max_concurrent=2)
    config = executor.config_schema.resolve_config({}).value["config"]  # fixed by .configured
    assert config["start_method"] == {"forkserver": {"preload_modules": PRELOAD_MODULES}}
    assert config["max_concurrent"] == 2


def test_one_day_per_run_backfills_without_a_policy():
    """No policy: Dagster tags each backfill run with its one partition (issue 13.1)."""
    assert backfill_policy(1) is None
    assert backfill_policy(5).max_partitions_per_run == 5


def test_in_process_runs_wait_for_the_source_pool(tmp_path):
    """A run launched with the job's own executor (as ``dagster api execute_run`` does for the
    UI, backfills and automation) does not call the source while another run holds the
    pool's only slot, and proceeds once it is freed."""
    location = tmp_path / "location.py"
    location.write_text(
        "from ghtrader_assets.config import Settings\n"
        "from ghtrader_assets.definitions import build_definitions\n"
        "from ghtrader_assets.symbols import parse_main_symbol\n"
        f"defs = build_definitions(Settings(data_dir={str(tmp_path)!r}, "
        f"universe=(parse_main_symbol({CU.raw!r}),), start_date='2026-01-05'))\n"
        f"job = defs.resolve_job_def({INGEST_JOB!r})\n"
    )
    with instance_for_test() as instance:
        slots = instance.event_log_storage
        slots.set_concurrency_slots("simulated", 1)
        assert slots.claim_concurrency_slot("simulated", "other-run", "other-step").is_claimed
        outcome: dict[str, bool] = {}

        def launch() -> None:
            result = execute_job(
                ReconstructableJob.for_file(str(location), "job"),
                instance=instance,
                tags={"dagster/partition": DAY},
            )
            outcome["success"] = result.success

        worker = threading.Thread(target=launch)
        worker.start()
        from ghtrader_assets.stores.embedded import EmbeddedStore

        store = EmbeddedStore(tmp_path / "store", cache=False)
        deadline = time.monotonic() + 60
        while slots.get_concurrency_info("simulated").pending_step_count == 0:
            assert time.monotonic() < deadline, "the run never asked the pool for a slot"
            time.sleep(0.2)
        time.sleep(2)
        assert worker.is_alive() and store.partitions(TICKS, CU.raw) == []  # still waiting
        slots.free_concurrency_slot_for_step("other-run", "other-step")
        worker.join(120)
        assert outcome == {"success": True}
        assert store.partitions(TICKS, CU.raw) == [DAY]


def test_definitions_follow_the_environment_and_are_built_once(monkeypatch, tmp_path):
    """The day runner loads the definitions before forking; a process that changed its
    ``GHTRADER_*`` variables since import (a benchmark's second run) must not get stale ones."""
    from ghtrader_assets import definitions

    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GHTRADER_UNIVERSE", "KQ.m@DCE.m")
    first = definitions.current_definitions()
    assert definitions.current_definitions() is first
    keys = {k.path[0] for k in first.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"DCE", "coverage_report"}
    monkeypatch.setenv("GHTRADER_UNIVERSE", "KQ.m@SHFE.cu")
    second = definitions.current_definitions()
    assert second is not first
    assert definitions.ingest_job().name == INGEST_JOB
    assert SymbolAssetKeys.of(CU).ticks in second.resolve_asset_graph().get_all_asset_keys()

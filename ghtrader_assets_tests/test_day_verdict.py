"""A day that failed blocking checks says so on its own materializations (issue 13.2).

The ticks and validation-summary materializations of each day carry that day's verdict
(pass / warn / blocked), the reason code, the action hint and the largest gap, also when one
run covers several days (each day gets its own values, not the run's worst).
"""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.event_log.base import AssetRecordsFilter
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.test_utils import instance_for_test

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets.validation.verdict import day_status, day_verdict, status_from_summary

CU = parse_main_symbol("KQ.m@SHFE.cu")
KEYS = SymbolAssetKeys.of(CU)
DAYS = [d.isoformat() for d in calendar.trading_days(dt.date(2026, 3, 2), dt.date(2026, 3, 4))]


def day_metadata(instance: DagsterInstance, key: AssetKey, day: str) -> dict[str, object]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    assert records, f"{key.to_user_string()} {day} not materialized"
    mat = records[0].asset_materialization
    assert mat is not None
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.fixture()
def instance():
    with instance_for_test() as inst:
        yield inst


def _run(tmp_path, instance, days_per_run, bad, tags):
    settings = Settings(
        data_dir=tmp_path, universe=(CU,), start_date="2026-02-02", days_per_run=days_per_run
    )
    source = SourceResource(
        simulated_defects={CU.raw: {bad: {"crossed_book": True, "gap": {"seconds": 45}}}}
    )
    defs = build_definitions(settings, source=source)
    return defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )


def test_each_day_of_a_range_run_carries_its_own_verdict(tmp_path, instance):
    bad = DAYS[1]
    tags = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[-1]}
    result = _run(tmp_path, instance, 3, bad, tags)
    assert not result.success  # the blocking check fails the step: no manifest
    for key in KEYS.validated_day:
        blocked = day_metadata(instance, key, bad)
        assert blocked["verdict"] == "blocked"
        assert blocked["verdict_reason"] not in ("", "OK")
        assert blocked["action_hint"] not in ("", "no action")
        assert "book_integrity" in str(blocked["blocking_failures"])
        assert int(blocked["max_gap_seconds"]) >= 40  # 45 s hole: 44 empty seconds
        # the verdict is the first thing the UI lists
        assert next(iter(blocked)) == "verdict"
        for good in (DAYS[0], DAYS[2]):
            clean = day_metadata(instance, key, good)
            assert clean["verdict"] in ("pass", "warn"), (good, clean["verdict"])
            assert clean["blocking_failures"] == "none"
            assert int(clean["max_gap_seconds"]) < 40


def test_a_single_day_run_carries_the_verdict(tmp_path, instance):
    bad = DAYS[0]
    result = _run(tmp_path, instance, 1, bad, {"dagster/partition": bad})
    assert not result.success
    meta = day_metadata(instance, KEYS.ticks, bad)
    assert meta["verdict"] == "blocked"
    assert meta["checks_failed"] >= 1


def test_day_status_rules():
    assert day_status([], []) == "pass"
    assert day_status(["outliers"], []) == "warn"
    assert day_status(["gaps", "book_integrity"], ["book_integrity"]) == "blocked"
    assert status_from_summary("error", True) == "blocked"
    assert status_from_summary("error", False) == "warn"  # non-blocking ERROR
    assert status_from_summary("ok", False) == "pass"


def test_a_clean_day_reads_ok_whatever_the_summary_says():
    row = {"reason_overall": "GAP_SECONDS", "hint_overall": "backfill", "max_gap_seconds": 3}
    v = day_verdict("2026-03-02", row, [], [])
    assert (v.status, v.reason, v.hint, v.max_gap_seconds) == ("pass", "OK", "no action", 3)
    w = day_verdict("2026-03-02", row, ["gaps"], [])
    assert (w.status, w.reason, w.hint) == ("warn", "GAP_SECONDS", "backfill")


def test_a_rejected_download_keeps_the_stored_days_verdict(tmp_path, instance):
    """A failing re-download of a passing day is refused: the day's materialization (the
    stored day, written back) reads pass, and names the rejected download apart."""
    day = DAYS[0]
    settings = Settings(data_dir=tmp_path, universe=(CU,), start_date="2026-02-02")
    job = build_definitions(settings).resolve_job_def(INGEST_JOB)
    assert job.execute_in_process(partition_key=day, instance=instance).success
    result = _run(tmp_path, instance, 1, day, {"dagster/partition": day})
    assert not result.success  # the rejected download's checks fail the step
    meta = day_metadata(instance, KEYS.ticks, day)
    assert meta["verdict"] == "pass" and meta["blocking_failures"] == "none"
    assert day in str(meta["rejected_downloads (stored day kept)"])

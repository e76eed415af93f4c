"""End-to-end: real Dagster materializations of several partitions through Definitions."""

from __future__ import annotations

import json

import pandas as pd
from dagster import AssetKey, DagsterInstance

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, REVALIDATE_JOB, build_definitions
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import MANIFESTS, TICKS, VALIDATION_GAPS, VALIDATION_SUMMARY
from ghtrader_assets.symbols import parse_universe

CU, M = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m")
DAYS = [
    d.isoformat()
    for d in calendar.trading_days(
        pd.Timestamp("2026-03-02").date(), pd.Timestamp("2026-03-04").date()
    )
]


def _settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, universe=(CU, M), start_date="2026-01-05")


def _run(defs, day: str, instance: DagsterInstance, **kwargs):
    job = defs.resolve_job_def(INGEST_JOB)
    return job.execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False, **kwargs
    )


def test_materializes_several_partitions(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    for day in DAYS:
        assert _run(defs, day, instance).success
    store = defs.resources["store"].get_store()
    for sym in (CU, M):
        assert store.partitions(TICKS, sym.raw) == DAYS
        ticks = store.read_partition(TICKS, sym.raw, DAYS[-1])
        assert len(ticks) > 10_000
        assert set(ticks["trading_day"]) == {DAYS[-1]}
        assert set(ticks["source"]) == {"simulated"}
        manifests = store.read_table(MANIFESTS, symbols=[sym.raw])
        assert sorted(manifests["trading_day"]) == DAYS
        doc = json.loads((tmp_path / "manifests" / sym.key / f"{DAYS[0]}.json").read_text())
        assert doc["rows"] == len(store.read_partition(TICKS, sym.raw, DAYS[0]))
        assert doc["source"] == "simulated"
        assert doc["checks_failed"] == 0
    keys = SymbolAssetKeys.of(CU)
    event = instance.get_latest_materialization_event(keys.ticks)
    meta = event.asset_materialization.metadata
    assert meta["dagster/row_count"].value == len(store.read_partition(TICKS, CU.raw, DAYS[-1]))
    assert meta["download_rows_per_second"].value > 0
    assert meta["checks_failed"].value == 0 and meta["blocking_failures"].value == "none"
    assert meta["first_tick"].value.endswith("+08:00")
    assert "gap_count" in meta
    checks = instance.event_log_storage.get_asset_check_execution_history(
        check_key=next(iter(defs.resolve_assets_def(keys.ticks).check_keys)), limit=10
    )
    assert len(checks) == len(DAYS)


def test_rematerializing_leaves_one_copy(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    assert _run(defs, DAYS[0], instance).success
    store = defs.resources["store"].get_store()
    first = store.read_partition(TICKS, CU.raw, DAYS[0])
    assert _run(defs, DAYS[0], instance).success
    again = store.read_partition(TICKS, CU.raw, DAYS[0])
    pd.testing.assert_frame_equal(first, again)
    files = list((tmp_path / "store" / TICKS.name).rglob("*.parquet"))
    assert len(files) == 2  # one per symbol, not per run
    assert len(store.read_table(MANIFESTS, symbols=[CU.raw])) == 1


def test_blocking_failure_keeps_manifest_from_being_written(tmp_path, instance):
    bad_day = DAYS[1]
    source = SourceResource(simulated_defects={CU.raw: {bad_day: {"crossed_book": True}}})
    defs = build_definitions(_settings(tmp_path), source=source)
    result = _run(defs, bad_day, instance)
    keys = SymbolAssetKeys.of(CU)
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key == keys.ticks]
    failed = {e.check_name for e in evaluations if not e.passed}
    assert failed == {"book_integrity"}
    store = defs.resources["store"].get_store()
    # The day's ticks and summary are stored (they document the failure) ...
    assert store.partitions(TICKS, CU.raw) == [bad_day]
    summary = store.read_partition(VALIDATION_SUMMARY, CU.raw, bad_day)
    assert summary.at[0, "verdict_overall"] == "error"
    # ... but no manifest for the bad symbol-day, while the clean symbol got its manifest.
    assert store.read_table(MANIFESTS, symbols=[CU.raw]).empty
    assert list(store.read_table(MANIFESTS, symbols=[M.raw])["trading_day"]) == [bad_day]
    assert not (tmp_path / "manifests" / CU.key / f"{bad_day}.json").exists()


def test_summary_recomputes_from_stored_ticks_without_the_source(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    assert _run(defs, DAYS[0], instance).success
    keys = SymbolAssetKeys.of(CU)
    # A csv source pointing nowhere would fail if it were asked for anything.
    offline = build_definitions(
        _settings(tmp_path), source=SourceResource(kind="csv", csv_dir=str(tmp_path / "none"))
    )
    job = offline.resolve_job_def(REVALIDATE_JOB)
    result = job.execute_in_process(partition_key=DAYS[0], instance=instance)
    assert result.success
    mats = result.asset_materializations_for_node(keys.ticks.to_python_identifier())
    assert [m.asset_key for m in mats] == [keys.validation_summary]
    assert mats[0].metadata["recomputed_from_store"].value is True


def test_coverage_report_asset(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    for day in DAYS[:2]:
        assert _run(defs, day, instance).success
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=[AssetKey("coverage_report")]
    )
    assert result.success
    report = json.loads((tmp_path / "reports" / "coverage.json").read_text())["symbols"]
    by_symbol = {r["symbol"]: r for r in report}
    assert by_symbol[CU.raw]["days_present"] == 2
    # expected days count from GHTRADER_START_DATE, as Dagster counts partitions
    assert by_symbol[CU.raw]["days_expected"] > 2
    assert by_symbol[CU.raw]["missing_days"] == by_symbol[CU.raw]["days_expected"] - 2
    assert by_symbol[CU.raw]["first_day"] == DAYS[0]


def test_gaps_stored_and_duplicate_count_survives_recompute(tmp_path, instance):
    day = DAYS[0]
    defects = {CU.raw: {day: {"duplicates": {"rows": 4}, "gap": {"seconds": 20}}}}
    defs = build_definitions(_settings(tmp_path), source=SourceResource(simulated_defects=defects))
    _run(defs, day, instance)
    store = defs.resources["store"].get_store()
    gaps = store.read_partition(VALIDATION_GAPS, CU.raw, day)
    assert len(gaps) >= 1 and gaps["seconds"].max() >= 15
    first = store.read_partition(VALIDATION_SUMMARY, CU.raw, day)
    assert first.at[0, "duplicates_dropped"] == 4
    job = defs.resolve_job_def(REVALIDATE_JOB)
    job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
    again = store.read_partition(VALIDATION_SUMMARY, CU.raw, day)
    assert again.at[0, "duplicates_dropped"] == 4
    assert again.at[0, "max_gap_seconds"] == first.at[0, "max_gap_seconds"]


class _CountingSource(SourceResource):
    """The simulated source, counting how often each day's ticks are downloaded."""

    def open(self, symbol):
        source = super().open(symbol)
        inner = source.ticks

        def ticks(entry):
            DOWNLOADS.append((symbol.raw, entry.trading_day.isoformat()))
            return inner(entry)

        source.ticks = ticks
        return source


DOWNLOADS: list[tuple[str, str]] = []


def test_gap_attribution_asks_the_source_again_when_enabled(tmp_path, instance, monkeypatch):
    day = DAYS[0]
    defects = {CU.raw: {day: {"gap": {"seconds": 20}}}}
    source = _CountingSource(simulated_defects=defects)
    DOWNLOADS.clear()
    defs = build_definitions(_settings(tmp_path), source=source)
    assert _run(defs, day, instance).success  # a 20 s gap warns, it does not block
    store = defs.resources["store"].get_store()
    assert set(store.read_partition(VALIDATION_GAPS, CU.raw, day)["attribution"]) == {
        "unattributed"
    }
    assert DOWNLOADS.count((CU.raw, day)) == 1
    monkeypatch.setenv("GHTRADER_VALIDATION_ATTRIBUTION_ENABLED", "true")
    assert _run(defs, day, instance).success
    # The simulated provider has the same hole, so the gap is the provider's.
    gaps = store.read_partition(VALIDATION_GAPS, CU.raw, day)
    assert set(gaps["attribution"]) == {"provider_missing"}
    assert DOWNLOADS.count((CU.raw, day)) == 3  # two ingests + one re-ask for attribution
    assert DOWNLOADS.count((M.raw, day)) == 2  # a day without gaps is not re-asked


def test_empty_redownload_does_not_replace_a_stored_day(tmp_path, instance):
    day = DAYS[0]
    assert _run(build_definitions(_settings(tmp_path)), day, instance).success
    empty = SourceResource(simulated_defects={CU.raw: {day: {"empty_day": True}}})
    defs = build_definitions(_settings(tmp_path), source=empty)
    store = defs.resources["store"].get_store()
    before = store.read_partition(TICKS, CU.raw, day)
    result = _run(defs, day, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "refusing to replace" in failure.event_specific_data.error.message
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU.raw, day), before)
    assert len(store.read_partition(MANIFESTS, CU.raw, day)) == 1  # still vouches for it
    # Told explicitly (shrinking, and replacing a good day with one that fails), the day is
    # replaced; the empty day fails completeness, so its manifest is withdrawn from the
    # table and the JSON files.
    forced = _run(
        defs,
        day,
        instance,
        tags={"ghtrader/allow_shrink": "true", "ghtrader/allow_failing_replacement": "true"},
    )
    assert not forced.success
    assert store.read_partition(TICKS, CU.raw, day).empty
    assert store.read_partition(MANIFESTS, CU.raw, day).empty
    assert not (tmp_path / "manifests" / CU.key / f"{day}.json").exists()
    assert len(store.read_partition(MANIFESTS, M.raw, day)) == 1  # other symbols untouched


def test_a_day_that_now_fails_loses_its_manifest(tmp_path, instance):
    """Replacing a good day by a failing one (only with the override tag; without it the
    good day is kept, see test_replacement.py) withdraws the manifest."""
    day = DAYS[0]
    assert _run(build_definitions(_settings(tmp_path)), day, instance).success
    assert (tmp_path / "manifests" / CU.key / f"{day}.json").exists()
    crossed = SourceResource(simulated_defects={CU.raw: {day: {"crossed_book": True}}})
    defs = build_definitions(_settings(tmp_path), source=crossed)
    tags = {"ghtrader/allow_failing_replacement": "true"}
    assert not _run(defs, day, instance, tags=tags).success
    store = defs.resources["store"].get_store()
    assert store.read_partition(MANIFESTS, CU.raw, day).empty
    assert not (tmp_path / "manifests" / CU.key / f"{day}.json").exists()

"""Backfill behaviour of the Dagster layer: multi-day runs, roll changes, skipped days."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, REVALIDATE_JOB, build_definitions
from ghtrader_assets.reports import coverage_report
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import MANIFESTS, SKIP_LEDGER, TICKS
from ghtrader_assets.sources.base import RollEntry, TickSource, UnknownSymbolError
from ghtrader_assets.sources.csv import write_downloader_csv, write_roll_schedule
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.sources.skip_ledger import DaySkippedError
from ghtrader_assets.symbols import parse_main_symbol

CU = parse_main_symbol("KQ.m@SHFE.cu")
DAYS = [d.isoformat() for d in calendar.trading_days(dt.date(2026, 3, 2), dt.date(2026, 3, 6))]


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path, universe=(CU,), start_date="2026-01-05", **kw)


def _run_range(defs, first: str, last: str, instance):
    job = defs.resolve_job_def(INGEST_JOB)
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def test_one_run_covers_several_days(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path, days_per_run=5))
    result = _run_range(defs, DAYS[0], DAYS[-1], instance)
    assert result.success
    store = defs.resources["store"].get_store()
    assert store.partitions(TICKS, CU.raw) == DAYS
    for day in DAYS:  # each day stored alone, not the whole range under one day
        assert set(store.read_partition(TICKS, CU.raw, day)["trading_day"]) == {day}
    assert sorted(store.read_table(MANIFESTS, symbols=[CU.raw])["trading_day"]) == DAYS
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} >= {"field_quality", "gaps"}
    assert all(e.passed for e in evaluations)
    # Each day's results are recorded under that day, not folded into one unpartitioned result.
    for name in ("field_quality", "gaps"):
        assert sorted(e.partition for e in evaluations if e.check_name == name) == DAYS


def test_multi_day_run_names_the_failing_day(tmp_path, instance):
    bad = DAYS[2]
    source = SourceResource(simulated_defects={CU.raw: {bad: {"crossed_book": True}}})
    defs = build_definitions(_settings(tmp_path, days_per_run=5), source=source)
    result = _run_range(defs, DAYS[0], DAYS[-1], instance)
    assert not result.success
    book = [e for e in result.get_asset_check_evaluations() if e.check_name == "book_integrity"]
    assert {e.partition: e.passed for e in book} == {d: d != bad for d in DAYS}
    failing = next(e for e in book if not e.passed)
    assert failing.severity.value == "ERROR"
    # Gated per day by the manifest step, not per step by Dagster: the other days keep
    # their manifests and only the bad day is refused (ghtrader_assets.assets.day_checks).
    assert not failing.blocking
    store = defs.resources["store"].get_store()
    manifests = store.read_table(MANIFESTS, symbols=[CU.raw])
    assert sorted(manifests["trading_day"]) == [d for d in DAYS if d != bad]


def _csv_root(tmp_path, underlying: str):
    """A CSV source directory holding the simulated day of DAYS[0] under ``underlying``."""
    root = tmp_path / "csv"
    day = dt.date.fromisoformat(DAYS[0])
    sim = SimulatedSource()
    entry = sim.roll_entry(CU, day)
    ticks = sim.ticks(entry)
    ticks["underlying"] = underlying
    write_downloader_csv(ticks, root / underlying / f"{DAYS[0]}.csv", underlying=underlying)
    write_roll_schedule([RollEntry(CU, day, underlying, "csv")], root)
    return root


def _status(instance, graph, key, day):
    """What the UI shows as stale/fresh for one partition."""
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return resolver.get_status(key, day)


def test_changed_roll_marks_the_days_ticks_stale(tmp_path, instance):
    root = _csv_root(tmp_path, "SHFE.cu2604")
    source = SourceResource(kind="csv", csv_dir=str(root))
    defs = build_definitions(_settings(tmp_path), source=source)
    job = defs.resolve_job_def(INGEST_JOB)
    assert job.execute_in_process(partition_key=DAYS[0], instance=instance).success
    keys = SymbolAssetKeys.of(CU)
    graph = defs.resolve_asset_graph()
    fresh = _status(instance, graph, keys.ticks, DAYS[0])
    assert fresh == StaleStatus.FRESH
    # The provider revises its roll: the same day now maps to another contract.
    write_roll_schedule([RollEntry(CU, dt.date.fromisoformat(DAYS[0]), "SHFE.cu2605", "csv")], root)
    roll_only = defs.resolve_implicit_global_asset_job_def()
    assert roll_only.execute_in_process(
        partition_key=DAYS[0], instance=instance, asset_selection=[keys.roll_schedule]
    ).success
    stale = _status(instance, graph, keys.ticks, DAYS[0])
    assert stale == StaleStatus.STALE


class _SkippingSource(TickSource):
    name = "skipping"

    def roll_entry(self, symbol, trading_day):
        return RollEntry(symbol, trading_day, "SHFE.cu2604", self.name)

    def ticks(self, entry):
        raise DaySkippedError(entry.symbol, entry.trading_day, "no_l5", "only level-1 rows")


class SkippingSourceResource(SourceResource):
    def open(self, symbol):
        return _SkippingSource()


class UnknownSourceResource(SourceResource):
    def open(self, symbol):
        source = SimulatedSource()

        def fail(*_args):
            raise UnknownSymbolError(f"unknown contract for {symbol.raw}")

        source.roll_entry = fail
        return source


def test_skipped_day_goes_to_the_ledger_and_the_coverage_report(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path), source=SkippingSourceResource(kind="simulated"))
    job = defs.resolve_job_def(INGEST_JOB)
    result = job.execute_in_process(partition_key=DAYS[0], instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "no_l5" in failure.event_specific_data.error.message
    store = defs.resources["store"].get_store()
    ledger = store.read_partition(SKIP_LEDGER, CU.raw, DAYS[0])
    assert list(ledger["reason"]) == ["no_l5"]
    report = coverage_report(store, [CU], as_of=dt.date.fromisoformat(DAYS[-1]))
    assert report.at[0, "skipped_days"] == 1
    assert report.at[0, "skip_reasons"] == "no_l5 x1"
    assert store.partitions(TICKS, CU.raw) == []  # nothing half-stored


def test_source_error_fails_with_symbol_and_day(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path), source=UnknownSourceResource(kind="simulated"))
    job = defs.resolve_job_def(INGEST_JOB)
    result = job.execute_in_process(partition_key=DAYS[0], instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "KQ.m@SHFE.cu" in message and DAYS[0] in message and "UnknownSymbolError" in message


def test_manifest_json_matches_stored_manifest(tmp_path, instance):
    defs = build_definitions(_settings(tmp_path))
    job = defs.resolve_job_def(INGEST_JOB)
    assert job.execute_in_process(partition_key=DAYS[0], instance=instance).success
    store = defs.resources["store"].get_store()
    stored = store.read_partition(MANIFESTS, CU.raw, DAYS[0])
    doc = json.loads((tmp_path / "manifests" / CU.key / f"{DAYS[0]}.json").read_text())
    assert doc["schema_hash"] == stored.at[0, "schema_hash"]
    assert doc["code_version"] == stored.at[0, "code_version"]
    assert pd.Timestamp(doc["first_tick"]) == stored.at[0, "first_tick"]
    assert set(doc["check_outcomes"]) >= {"field_quality", "book_integrity", "gaps"}


OPENED: list[str] = []


class OpenCountingResource(SourceResource):
    def open(self, symbol):
        OPENED.append(symbol.raw)
        return super().open(symbol)


def test_a_step_opens_one_source_for_all_its_days(tmp_path, instance):
    OPENED.clear()
    defs = build_definitions(
        _settings(tmp_path, days_per_run=5), source=OpenCountingResource(kind="simulated")
    )
    assert _run_range(defs, DAYS[0], DAYS[-1], instance).success
    assert [CU.raw, CU.raw] == OPENED  # the roll-schedule step and the ticks step, 5 days each
    OPENED.clear()
    job = defs.resolve_job_def(REVALIDATE_JOB)
    assert job.execute_in_process(partition_key=DAYS[0], instance=instance).success
    assert OPENED == []  # recomputing a summary never opens the source

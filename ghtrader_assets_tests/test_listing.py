"""Days before a product's listing (or while it is delisted) are not work: the automation and
backfills do not request them, coverage does not count them, and materializing one explicitly
says why it is empty."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import Definitions, evaluate_automation_conditions

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys, build_symbol_assets
from ghtrader_assets.automation import (
    UniverseCursor,
    listing_lookback,
    plan_universe_backfill,
    with_automation,
)
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions, build_resources
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.reports import coverage_report
from ghtrader_assets.schema import SKIP_LEDGER, TICKS
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.sources.skip_ledger import DaySkippedError
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.symbols import parse_universe

CU, BZ, LR, FU = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.bz,KQ.m@CZCE.LR,KQ.m@SHFE.fu")
BZ_LISTED = "2025-07-08"  # DCE pure benzene
LOOKBACK = dt.timedelta(days=14)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=calendar.TZ)


# --- automation -------------------------------------------------------------------------


def _automated(symbols, start: str, loaded_at: str) -> Definitions:
    parts = trading_day_partitions(start, "15:30")
    assets = [a for s in symbols for a in build_symbol_assets(s, parts, pool="simulated")]
    assets = with_automation(assets, LOOKBACK, now=at(loaded_at))
    return Definitions(assets=assets, resources=build_resources(Settings()))


def _requested(defs: Definitions, instance, times: list[str]) -> dict[str, set]:
    cursor, out = None, {}
    for when in times:
        result = evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=at(when), cursor=cursor
        )
        cursor = result.cursor
        for key in defs.resolve_asset_graph().get_all_asset_keys():
            got = set(result.get_requested_partitions(key))
            if got:
                out.setdefault(key.to_user_string(), set()).update(got)
    return out


def test_automation_requests_nothing_for_a_delisted_product(instance):
    # CZCE LR stopped trading on 2025-01-27; SHFE cu trades on
    defs = _automated([CU, LR], "2025-02-03", loaded_at="2025-03-03T12:00")
    got = _requested(defs, instance, ["2025-03-03T12:00", "2025-03-03T15:31"])
    assert got == {
        k.to_user_string(): {"2025-03-03"}
        for k in (
            SymbolAssetKeys.of(CU).roll_schedule,
            SymbolAssetKeys.of(CU).ticks,
            SymbolAssetKeys.of(CU).validation_summary,
            SymbolAssetKeys.of(CU).manifest,
        )
    }


def test_automation_waits_for_a_listing_and_never_looks_back_before_it(instance):
    parts = trading_day_partitions("2025-06-02", "15:30")
    # loaded before the listing: nothing, even after the close
    assert listing_lookback(BZ, parts, LOOKBACK, at("2025-07-04T16:00")) is None
    defs = _automated([BZ], "2025-06-02", loaded_at="2025-07-04T16:00")
    assert _requested(defs, instance, ["2025-07-04T12:00", "2025-07-04T15:31"]) == {}
    # loaded two days after the listing: the lookback stops at the listing day
    lookback = listing_lookback(BZ, parts, LOOKBACK, at("2025-07-10T16:00"))
    assert lookback is not None and lookback < LOOKBACK
    window_start = parts.time_window_for_partition_key("2025-07-10").end - lookback
    assert window_start == parts.time_window_for_partition_key(BZ_LISTED).start
    # long listed: the full lookback
    assert listing_lookback(CU, parts, LOOKBACK, at("2025-07-10T16:00")) == LOOKBACK


# --- universe backfill --------------------------------------------------------------------


def test_universe_backfill_starts_at_the_listing(instance):
    parts = trading_day_partitions("2025-06-23", "15:30")
    cursor = UniverseCursor(known=[CU.raw])
    plan = plan_universe_backfill(cursor, (CU, BZ), parts, instance, now=at("2025-07-15T16:00"))
    days = [r.partition_key for r in plan.run_requests]
    listed = calendar.trading_days(dt.date(2025, 7, 8), dt.date(2025, 7, 15))
    assert days == [d.isoformat() for d in reversed(listed)]  # newest first, none before
    assert plan.cursor.pending == {}


# --- coverage -----------------------------------------------------------------------------


def _store_days(store: EmbeddedStore, symbol, days: list[str]) -> None:
    src = SimulatedSource(cadence_ms=60_000)
    for day in days:
        d = dt.date.fromisoformat(day)
        store.write_partition(TICKS, symbol.raw, day, src.ticks(src.roll_entry(symbol, d)))


def test_coverage_does_not_count_delisted_days_as_missing_or_behind(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    # SHFE fu: the old contract stopped on 2018-06-27, the new one listed on 2018-07-16
    _store_days(store, FU, ["2018-06-25", "2018-06-26", "2018-07-16"])
    # CZCE LR: stopped trading on 2025-01-27
    _store_days(store, LR, ["2025-01-23", "2025-01-24"])
    report = coverage_report(store, [FU, LR], as_of=dt.date(2025, 3, 3)).set_index("symbol")
    assert report.at[FU.raw, "days_expected"] == 3 and report.at[FU.raw, "missing_days"] == 0
    assert report.at[LR.raw, "days_behind"] == 0  # nothing to catch up after the delisting


# --- explicit materialization -------------------------------------------------------------


def test_simulator_refuses_a_day_before_the_listing():
    with pytest.raises(DaySkippedError) as info:
        SimulatedSource().roll_entry(BZ, dt.date(2025, 7, 7))
    assert info.value.reason == "not_listed" and BZ_LISTED in str(info.value)


def test_materializing_a_day_before_the_listing_says_why(tmp_path, instance):
    defs = build_definitions(
        Settings(data_dir=tmp_path, universe=(BZ,), start_date="2025-07-01"),
    )
    job = defs.resolve_job_def(INGEST_JOB)
    result = job.execute_in_process(
        partition_key="2025-07-07", instance=instance, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "not_listed" in message and "listed 2025-07-08" in message
    store = defs.resources["store"].get_store()
    ledger = store.read_partition(SKIP_LEDGER, BZ.raw, "2025-07-07")
    assert list(ledger["reason"]) == ["not_listed"]
    assert store.partitions(TICKS, BZ.raw) == []
    # the listing day itself ingests, day session only
    assert job.execute_in_process(partition_key=BZ_LISTED, instance=instance).success
    ticks = store.read_partition(TICKS, BZ.raw, BZ_LISTED)
    assert len(ticks) and ticks["ts"].min().tz_convert(calendar.TZ).hour == 9

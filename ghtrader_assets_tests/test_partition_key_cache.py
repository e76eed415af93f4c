"""Trading-day partition keys listed once per definition and last window: the same keys
Dagster lists, and the coverage report's step no longer lists them once per upstream."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import (
    AssetKey,
    DailyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    partition_loading_context,
)
from dagster._core.test_utils import instance_for_test

from ghtrader_assets import partition_key_cache
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.partitions import TZ, trading_day_partitions
from ghtrader_assets.symbols import parse_universe


@pytest.fixture
def listings(monkeypatch):
    """Counts the listings Dagster's own ``get_partition_keys`` makes (cache misses)."""
    partition_key_cache.install()
    partition_key_cache.clear()
    original = partition_key_cache._ORIGINAL
    calls: list[object] = []

    def counted(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(partition_key_cache, "_ORIGINAL", counted)
    yield calls
    partition_key_cache.clear()


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


def test_keys_are_dagsters_own_at_any_time(listings):
    partitions = trading_day_partitions("2026-01-05")
    for when in (
        _at(dt.date(2026, 3, 3), 10),
        _at(dt.date(2026, 3, 3), 16),
        _at(dt.date(2026, 12, 2), 9),
    ):
        with partition_loading_context(effective_dt=when):
            cached = partitions.get_partition_keys()
            again = partitions.get_partition_keys()
            listed = partition_key_cache._ORIGINAL(partitions)
        assert cached == again == listed, when
    assert len(listings) == 3 + 3  # one miss per last window, plus the direct listings


def test_a_new_trading_day_after_the_close_is_listed(listings):
    partitions = trading_day_partitions("2026-01-05")
    with partition_loading_context(effective_dt=_at(dt.date(2026, 3, 3), 10)):
        before = partitions.get_partition_keys()
    with partition_loading_context(effective_dt=_at(dt.date(2026, 3, 3), 16)):
        after = partitions.get_partition_keys()
    assert after == [*before, "2026-03-03"]
    assert before[-1] == "2026-03-02"


def test_equal_definitions_share_a_listing_and_others_do_not(listings):
    when = _at(dt.date(2026, 3, 3), 16)
    with partition_loading_context(effective_dt=when):
        a = trading_day_partitions("2026-01-05").get_partition_keys()
        b = trading_day_partitions("2026-01-05").get_partition_keys()
        later = trading_day_partitions("2026-02-02").get_partition_keys()
        daily = DailyPartitionsDefinition(start_date="2026-01-05").get_partition_keys()
    assert a == b and len(listings) == 3
    assert later[0] == "2026-02-02" and a[0] == "2026-01-05"
    assert "2026-01-10" in daily and "2026-01-10" not in a  # a Saturday


def test_a_caller_changing_its_list_changes_no_other(listings):
    partitions = trading_day_partitions("2026-01-05")
    with partition_loading_context(effective_dt=_at(dt.date(2026, 3, 3), 16)):
        first = partitions.get_partition_keys()
        first.clear()
        assert partitions.get_partition_keys()[-1] == "2026-03-03"


def test_the_coverage_report_lists_the_partitions_once_not_per_upstream(
    listings, tmp_path, monkeypatch
):
    """Dagster looks up the data versions of the report's upstream assets (two per symbol)
    before its step runs, asking for every materialized upstream's partition keys: two
    symbols, four or more requests, one listing."""
    requests: list[object] = []
    cached = TimeWindowPartitionsDefinition.get_partition_keys

    def counted(self, *args, **kwargs):
        requests.append(self)
        return cached(self, *args, **kwargs)

    monkeypatch.setattr(TimeWindowPartitionsDefinition, "get_partition_keys", counted)
    universe = parse_universe("KQ.m@SHFE.cu,KQ.m@CZCE.SR")
    start = "2026-01-05"
    defs = build_definitions(Settings(data_dir=tmp_path, universe=universe, start_date=start))
    with instance_for_test() as instance:
        day = trading_day_partitions(start).get_partition_keys()[-1]
        ingest = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            partition_key=day, instance=instance
        )
        assert ingest.success
        listings.clear()
        requests.clear()
        partition_key_cache.clear()
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[AssetKey("coverage_report")]
        )
    assert result.success
    assert len(requests) >= 2 * len(universe)
    assert len(listings) == 1, f"{len(listings)} listings for {2 * len(universe)} upstream assets"

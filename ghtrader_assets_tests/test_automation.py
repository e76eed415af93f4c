"""Automation driven by Dagster's own test utilities at chosen times.

``evaluate_automation_conditions`` runs the declarative conditions the daemon runs;
``build_sensor_context`` runs the universe sensor. Times are Asia/Shanghai wall clock.
The autumn of 2025 has a weekend, the National Day holiday (2025-10-01..08, trading again
on Thursday 2025-10-09) and ordinary weeks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.assets.coverage import COVERAGE_REPORT_KEY
from ghtrader_assets.automation import (
    AUTOMATION_SENSOR,
    RANGE_END_TAG,
    RANGE_START_TAG,
    UNIVERSE_SENSOR,
    UNIVERSE_TAG,
    AutomationSettings,
    UniverseCursor,
    plan_universe_backfill,
)
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.definitions import build_definitions
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.schema import MANIFESTS
from ghtrader_assets.symbols import parse_universe

CU, M = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m")
START = "2025-09-01"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=calendar.TZ)


def chain(symbol) -> list[AssetKey]:
    k = SymbolAssetKeys.of(symbol)
    return [k.roll_schedule, k.ticks, k.validation_summary, k.manifest]


class Clock:
    """Evaluates the automation at chosen times, carrying the cursor like the daemon.

    The unpartitioned coverage report cannot share a run with daily partitions, so Dagster
    requests it at the first evaluation after the day's manifests landed; :meth:`day`
    plays both evaluations.
    """

    def __init__(self, defs, instance: DagsterInstance, symbols=(CU, M)) -> None:
        self.defs, self.instance, self.symbols, self.cursor = defs, instance, symbols, None

    def tick(self, when: str) -> dict[AssetKey, set]:
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, evaluation_time=at(when), cursor=self.cursor
        )
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        requested = {k: set(result.get_requested_partitions(k)) for k in graph.get_all_asset_keys()}
        return {k: v for k, v in requested.items() if v}

    def day(self, when: str, days: Iterable[str]) -> None:
        """At ``when`` exactly ``days`` of every chain are requested; the runs land; one
        minute later the coverage report follows, and then nothing is left to do."""
        requested = self.tick(when)
        assert requested == expect(days, self.symbols), when
        self.materialize(requested)
        later = (dt.datetime.fromisoformat(when) + dt.timedelta(minutes=1)).isoformat()
        assert self.tick(later) == REPORT, later
        self.materialize(REPORT)
        assert self.tick(later) == {}, later

    def materialize(self, requested: dict[AssetKey, set]) -> None:
        """Record what a run would have materialized, upstream first."""
        order = [*chain(CU), *chain(M), COVERAGE_REPORT_KEY]
        for key in sorted(requested, key=order.index):
            for partition in sorted(requested[key], key=str):
                self.instance.report_runless_asset_event(
                    AssetMaterialization(asset_key=key, partition=partition)
                )


def expect(days: Iterable[str], symbols=(CU, M)) -> dict[AssetKey, set]:
    return {k: set(days) for s in symbols for k in chain(s)}


REPORT = {COVERAGE_REPORT_KEY: {None}}


@pytest.fixture()
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture()
def defs(tmp_path):
    return build_definitions(Settings(data_dir=tmp_path, universe=(CU, M), start_date=START))


def test_new_trading_day_after_close_holidays_and_weekends_request_nothing(tmp_path, instance):
    # One symbol keeps this long timeline fast; the other tests show every symbol follows.
    defs = build_definitions(Settings(data_dir=tmp_path, universe=(CU,), start_date=START))
    clock = Clock(defs, instance, symbols=(CU,))
    # First evaluation: history is not the automation's business.
    assert clock.tick("2025-09-29T10:00") == {}
    assert clock.tick("2025-09-29T15:29") == {}  # before the close: Monday has no key yet
    clock.day("2025-09-29T15:31", ["2025-09-29"])  # every symbol's chain, then the report
    assert clock.tick("2025-09-29T18:00") == {}
    clock.day("2025-09-30T15:45", ["2025-09-30"])
    for when in ("2025-10-01T15:31", "2025-10-03T16:00", "2025-10-04T15:31", "2025-10-05T20:00"):
        assert clock.tick(when) == {}, when  # National Day holiday, then a weekend
    assert clock.tick("2025-10-09T15:29") == {}
    clock.day("2025-10-09T15:30", ["2025-10-09"])  # exactly at the close
    clock.day("2025-10-10T15:31", ["2025-10-10"])
    # Saturday 10-11 is a state make-up workday, but exchanges stay closed.
    assert clock.tick("2025-10-11T15:31") == {}
    assert clock.tick("2025-10-13T09:00") == {}


def test_missed_days_are_caught_up_once(defs, instance):
    clock = Clock(defs, instance)
    clock.tick("2025-10-09T12:00")
    clock.day("2025-10-09T15:31", ["2025-10-09"])
    # The daemon is down on Friday 10-10 and Monday 10-13; back on Tuesday after the close.
    caught_up = clock.tick("2025-10-14T16:00")
    assert caught_up == expect(["2025-10-10", "2025-10-13", "2025-10-14"])
    # Requested once: until the runs land, later evaluations do not ask again.
    assert clock.tick("2025-10-14T16:01") == {}
    clock.materialize(caught_up)
    assert clock.tick("2025-10-14T16:02") == REPORT


def test_a_failed_day_is_not_retried_every_evaluation(defs, instance):
    clock = Clock(defs, instance)
    clock.tick("2025-10-09T12:00")
    assert clock.tick("2025-10-09T15:31") == expect(["2025-10-09"])
    # The run failed: nothing was materialized. The next evaluations leave it to a human.
    assert clock.tick("2025-10-09T15:32") == {}
    assert clock.tick("2025-10-09T20:00") == {}


def test_downstream_follows_a_rematerialized_day(defs, instance):
    clock = Clock(defs, instance)
    clock.tick("2025-10-09T12:00")
    clock.day("2025-10-09T15:31", ["2025-10-09"])
    clock.day("2025-10-10T15:31", ["2025-10-10"])
    # Someone re-ingests Thursday's ticks of SHFE.cu (e.g. after a source fix); the ticks
    # step always writes the day's validation summary with them (it cannot be subset) ...
    k = SymbolAssetKeys.of(CU)
    for key in k.validated_day:
        instance.report_runless_asset_event(AssetMaterialization(key, partition="2025-10-09"))
    # ... and everything downstream of it follows; the roll schedule and DCE.m do not.
    followers = clock.tick("2025-10-10T15:40")
    # (the report reads the summary, so it follows at once)
    assert followers == {k.manifest: {"2025-10-09"}, **REPORT}
    clock.materialize(followers)
    assert clock.tick("2025-10-10T15:41") == {}


def test_close_time_is_configurable(tmp_path, instance):
    defs = build_definitions(
        Settings(data_dir=tmp_path, universe=(CU,), start_date=START, close_time="16:00")
    )
    clock = Clock(defs, instance, symbols=(CU,))
    clock.tick("2025-10-09T12:00")
    assert clock.tick("2025-10-09T15:45") == {}
    clock.day("2025-10-09T16:00", ["2025-10-09"])


def test_requested_run_materializes_the_new_day(defs, instance):
    """The requests are real: executing them stores the day and satisfies the automation."""
    clock = Clock(defs, instance)
    clock.tick("2025-10-09T12:00")
    requested = clock.tick("2025-10-09T15:31")
    job = defs.resolve_implicit_global_asset_job_def()
    ran = job.execute_in_process(
        instance=instance, partition_key="2025-10-09", asset_selection=list(requested)
    )
    assert ran.success
    store = defs.resources["store"].get_store()
    for symbol in (CU, M):
        assert store.partitions(MANIFESTS, symbol.raw) == ["2025-10-09"]
    assert clock.tick("2025-10-09T15:35") == REPORT
    assert job.execute_in_process(instance=instance, asset_selection=[COVERAGE_REPORT_KEY]).success
    assert clock.tick("2025-10-09T15:36") == {}


def test_sensors_ship_running_and_can_be_switched_off(tmp_path, monkeypatch):
    defs = build_definitions(Settings(data_dir=tmp_path, universe=(CU,)))
    status = {s.name: s.default_status for s in defs.sensors}
    assert status == {
        AUTOMATION_SENSOR: DefaultSensorStatus.RUNNING,
        UNIVERSE_SENSOR: DefaultSensorStatus.RUNNING,
    }
    monkeypatch.setenv("GHTRADER_AUTOMATION", "off")
    off = build_definitions(Settings(data_dir=tmp_path, universe=(CU,)))
    assert {s.default_status for s in off.sensors} == {DefaultSensorStatus.STOPPED}
    monkeypatch.setenv("GHTRADER_AUTOMATION", "sometimes")
    with pytest.raises(SettingsError, match="GHTRADER_AUTOMATION"):
        AutomationSettings.from_env()
    with pytest.raises(SettingsError, match="GHTRADER_AUTOMATION_LOOKBACK_DAYS"):
        AutomationSettings.from_env({"GHTRADER_AUTOMATION_LOOKBACK_DAYS": "0"})


# --------------------------------------------------------------------------- universe sensor

PARTS = trading_day_partitions(START)
NOW = at("2025-10-14T16:00")
DAYS = [d.isoformat() for d in calendar.trading_days(dt.date(2025, 9, 1), dt.date(2025, 10, 14))]


def test_first_evaluation_records_the_universe_without_backfilling(instance):
    plan = plan_universe_backfill(None, (CU,), PARTS, instance, now=NOW)
    assert plan.run_requests == []
    assert plan.cursor.known == [CU.raw] and plan.cursor.pending == {}


def test_added_symbol_is_backfilled_newest_first_in_bounded_slices(instance):
    cursor = UniverseCursor(known=[CU.raw])
    # Two days of DCE.m exist already (materialized by hand): they are not requested again.
    for day in DAYS[3:5]:
        instance.report_runless_asset_event(
            AssetMaterialization(SymbolAssetKeys.of(M).ticks, partition=day)
        )
    wanted = [d for d in reversed(DAYS) if d not in DAYS[3:5]]
    seen: list[str] = []
    for _ in range(10):
        plan = plan_universe_backfill(cursor, (CU, M), PARTS, instance, now=NOW, runs_per_tick=7)
        assert len(plan.run_requests) <= 7
        for request in plan.run_requests:
            assert list(request.asset_selection) == chain(M)
            assert request.tags[UNIVERSE_TAG] == "true"
            seen.append(request.partition_key)
        cursor = plan.cursor
        if not plan.run_requests:
            break
    assert seen == wanted  # newest first, each day exactly once, nothing of SHFE.cu
    assert seen[0] == DAYS[-1] and seen[-1] == DAYS[0]  # bounds kept: latest .. start
    assert cursor.pending == {} and set(cursor.known) == {CU.raw, M.raw}


def test_backfill_waits_while_too_many_runs_are_unfinished(instance):
    for _ in range(3):
        create_run_for_test(
            instance, job_name="x", status=DagsterRunStatus.STARTED, tags={UNIVERSE_TAG: "true"}
        )
    cursor = UniverseCursor(known=[CU.raw])
    plan = plan_universe_backfill(cursor, (CU, M), PARTS, instance, now=NOW, max_in_flight=3)
    assert plan.run_requests == []
    assert M.raw in plan.cursor.pending  # remembered, requested once runs finish
    later = plan_universe_backfill(plan.cursor, (CU, M), PARTS, instance, now=NOW, max_in_flight=5)
    assert [r.partition_key for r in later.run_requests] == [DAYS[-1], DAYS[-2]]


def test_backfill_runs_cover_consecutive_days_per_run(instance):
    instance.report_runless_asset_event(
        AssetMaterialization(SymbolAssetKeys.of(M).ticks, partition=DAYS[4])
    )
    cursor = UniverseCursor(known=[])
    plan = plan_universe_backfill(cursor, (M,), PARTS, instance, now=NOW, days_per_run=3)
    spans = [
        (r.tags.get(RANGE_START_TAG, r.partition_key), r.tags.get(RANGE_END_TAG, r.partition_key))
        for r in plan.run_requests
    ]
    # Runs of at most 3 consecutive trading days, newest first, never spanning the
    # materialized day; each run is a range in day order.
    assert len(DAYS) == 26
    assert spans == [
        *((DAYS[i - 2], DAYS[i]) for i in range(25, 6, -3)),  # 23..25, 20..22, ..., 5..7
        (DAYS[1], DAYS[3]),
        (DAYS[0], DAYS[0]),
    ]
    assert plan.run_requests[-1].partition_key == DAYS[0]  # a lone day is a plain partition
    assert RANGE_START_TAG not in plan.run_requests[-1].tags
    covered = sorted(d for start, end in spans for d in DAYS if start <= d <= end)
    assert covered == [d for d in DAYS if d != DAYS[4]]


def test_removed_symbol_drops_its_pending_backfill(instance):
    plan = plan_universe_backfill(
        UniverseCursor(known=[CU.raw]), (CU, M), PARTS, instance, now=NOW, runs_per_tick=1
    )
    assert M.raw in plan.cursor.pending
    gone = plan_universe_backfill(plan.cursor, (CU,), PARTS, instance, now=NOW)
    assert gone.run_requests == [] and gone.cursor.pending == {}
    assert any("left the universe" in n for n in gone.notes)


def test_universe_sensor_definition_round_trips_its_cursor(tmp_path, instance):
    defs = build_definitions(Settings(data_dir=tmp_path, universe=(CU,), start_date=START))
    sensor = defs.resolve_sensor_def(UNIVERSE_SENSOR)
    first = sensor(build_sensor_context(instance=instance, definitions=defs))
    assert first.run_requests == [] and json.loads(first.cursor)["known"] == [CU.raw]
    grown = build_definitions(Settings(data_dir=tmp_path, universe=(CU, M), start_date=START))
    second = grown.resolve_sensor_def(UNIVERSE_SENSOR)(
        build_sensor_context(instance=instance, definitions=grown, cursor=first.cursor)
    )
    assert second.run_requests
    assert {r.partition_key for r in second.run_requests} <= set(
        PARTS.get_partition_keys(current_time=dt.datetime.now(dt.UTC))
    )
    keys = PARTS.get_partition_keys(current_time=dt.datetime.now(dt.UTC))
    assert second.run_requests[0].partition_key == keys[-1]  # newest day first
    assert json.loads(second.cursor)["pending"][M.raw]["oldest_day"] == START  # back to start
    assert all(list(r.asset_selection) == chain(M) for r in second.run_requests)
    with pytest.raises(ValueError, match="universe cursor"):
        UniverseCursor.from_json('{"known": 3}')


def test_an_oldest_first_cursor_carries_on_newest_first(instance):
    # A backfill that a version-1 sensor had half requested (oldest first, up to DAYS[9]).
    v1 = json.dumps(
        {
            "version": 1,
            "known": [CU.raw, M.raw],
            "pending": {M.raw: {"next_day": DAYS[10], "end_day": DAYS[-1], "noticed": "t"}},
        }
    )
    cursor = UniverseCursor.from_json(v1)
    plan = plan_universe_backfill(cursor, (CU, M), PARTS, instance, now=NOW, runs_per_tick=2)
    assert [r.partition_key for r in plan.run_requests] == [DAYS[-1], DAYS[-2]]
    assert vars(plan.cursor.pending[M.raw]) == {
        "oldest_day": DAYS[10],  # the days v1 had already requested are not requested again
        "newest_day": DAYS[-3],
        "noticed": "t",
    }
    assert json.loads(plan.cursor.to_json())["version"] == 2

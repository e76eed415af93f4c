"""A good stored day survives a re-download that fails blocking checks (issue 10, item 1).

Reproduces the fault on both stores: a day is stored and passes, then a download that
fails a blocking check (a crossed book, a file cut at 70 % of its rows) is materialized.
The stored ticks, summary and manifest stay; the rejected download lands in the quarantine
tables; check metadata and the run log say so; only the override tag replaces the day.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pandas as pd
import pytest
from dagster import DagsterInstance

from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.assets.ingest import ALLOW_FAILING_TAG
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.quarantine import REJECTED_SUMMARY, REJECTED_TICKS
from ghtrader_assets.resources import SourceResource, StoreResource
from ghtrader_assets.schema import MANIFESTS, ROLL_SCHEDULE, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.symbols import parse_universe

(CU,) = parse_universe("KQ.m@SHFE.cu")
DAY = "2026-03-02"  # a Monday, a trading day


class _TruncatedSource(SourceResource):
    """The simulated market with each day's ticks cut at 70 % (a truncated download)."""

    def open(self, symbol):
        source = super().open(symbol)
        inner = source.ticks

        def ticks(entry):
            full = inner(entry)
            return full.iloc[: int(len(full) * 0.7)].reset_index(drop=True)

        source.ticks = ticks
        return source


def _settings(tmp_path, store: str = "embedded") -> Settings:
    return Settings(store=store, data_dir=tmp_path, universe=(CU,), start_date="2026-01-05")


def _run(defs, instance, **kwargs):
    return defs.resolve_job_def(INGEST_JOB).execute_in_process(
        partition_key=DAY, instance=instance, raise_on_error=False, **kwargs
    )


def _store_resource(kind: str, tmp_path):
    if kind == "embedded":
        return {}
    from ghtrader_assets_tests.test_questdb_pipeline import FakeQuestDBResource

    return {
        "store": FakeQuestDBResource(
            kind="questdb",
            data_dir=str(tmp_path),
            qdb_host=f"fake-{uuid.uuid4().hex[:6]}",
            qdb_transport="qwp",
        )
    }


def _assert_good_day_kept(tmp_path, store, before, manifest_before, result, instance):
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU.raw, DAY), before)
    summary = store.read_partition(VALIDATION_SUMMARY, CU.raw, DAY)
    assert summary.at[0, "rows"] == len(before)
    assert summary.at[0, "verdict_overall"] != "error"
    manifests = store.read_partition(MANIFESTS, CU.raw, DAY)
    assert len(manifests) == 1 and manifests.at[0, "rows"] == len(before)
    doc = json.loads((tmp_path / "manifests" / CU.key / f"{DAY}.json").read_text())
    assert doc["rows"] == len(before) and doc["created_at"] == manifest_before
    # The run failed (the download is bad) and says what it kept, in the log ...
    assert not result.success
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("kept the stored day" in m and ALLOW_FAILING_TAG in m for m in logs)
    # ... and in the failing check's metadata.
    keys = SymbolAssetKeys.of(CU)
    failing = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == keys.ticks and not e.passed
    ]
    assert failing
    for evaluation in failing:
        meta = evaluation.metadata
        assert meta["replacement"].value == "refused: stored day kept"
        assert meta["kept_rows"].value == len(before)
        assert evaluation.description.startswith("download rejected, stored day kept")


@pytest.mark.parametrize("store_kind", ["embedded", "questdb"])
def test_failing_download_never_replaces_a_good_day(tmp_path, store_kind):
    resources = _store_resource(store_kind, tmp_path)
    with DagsterInstance.ephemeral() as instance:
        good = build_definitions(_settings(tmp_path, store_kind), **resources)
        assert _run(good, instance).success
        store = good.resources["store"].get_store()
        before = store.read_partition(TICKS, CU.raw, DAY)
        manifest_before = json.loads((tmp_path / "manifests" / CU.key / f"{DAY}.json").read_text())[
            "created_at"
        ]

        crossed = SourceResource(simulated_defects={CU.raw: {DAY: {"crossed_book": True}}})
        bad = build_definitions(_settings(tmp_path, store_kind), source=crossed, **resources)
        result = _run(bad, instance)
        _assert_good_day_kept(tmp_path, store, before, manifest_before, result, instance)
        rejected = store.read_partition(REJECTED_TICKS, CU.raw, DAY)
        assert len(rejected) == len(before)
        assert (rejected["bid_price1"] >= rejected["ask_price1"]).any()
        outcomes = json.loads(
            store.read_partition(REJECTED_SUMMARY, CU.raw, DAY).at[0, "check_outcomes"]
        )
        assert not outcomes["book_integrity"]["passed"]

        # Only the explicit override replaces the day; it then loses its manifest.
        forced = _run(bad, instance, tags={ALLOW_FAILING_TAG: "true"})
        assert not forced.success
        after = store.read_partition(TICKS, CU.raw, DAY)
        assert (after["bid_price1"] >= after["ask_price1"]).any()
        assert store.read_partition(MANIFESTS, CU.raw, DAY).empty
        assert not (tmp_path / "manifests" / CU.key / f"{DAY}.json").exists()


def test_truncated_download_above_the_shrink_ratio_is_rejected(tmp_path):
    """A file cut at 70 % passes the shrink guard (> 50 %) but fails completeness."""
    with DagsterInstance.ephemeral() as instance:
        good = build_definitions(_settings(tmp_path))
        assert _run(good, instance).success
        store = good.resources["store"].get_store()
        before = store.read_partition(TICKS, CU.raw, DAY)
        manifest_before = json.loads((tmp_path / "manifests" / CU.key / f"{DAY}.json").read_text())[
            "created_at"
        ]
        cut = build_definitions(_settings(tmp_path), source=_TruncatedSource())
        result = _run(cut, instance)
        _assert_good_day_kept(tmp_path, store, before, manifest_before, result, instance)
        assert len(store.read_partition(REJECTED_TICKS, CU.raw, DAY)) == int(len(before) * 0.7)


def test_a_day_that_failed_before_is_replaced_without_override(tmp_path):
    """Nothing good to keep: a failing stored day is replaced by the new download."""
    with DagsterInstance.ephemeral() as instance:
        crossed = SourceResource(simulated_defects={CU.raw: {DAY: {"crossed_book": True}}})
        bad = build_definitions(_settings(tmp_path), source=crossed)
        assert not _run(bad, instance).success
        good = build_definitions(_settings(tmp_path))
        assert _run(good, instance).success
        store = good.resources["store"].get_store()
        ticks = store.read_partition(TICKS, CU.raw, DAY)
        assert not (ticks["bid_price1"] >= ticks["ask_price1"]).any()
        assert len(store.read_partition(MANIFESTS, CU.raw, DAY)) == 1
        assert store.read_partition(REJECTED_TICKS, CU.raw, DAY).empty


class _ManifestTableDown:
    """A store whose manifest table refuses writes (everything else passes through)."""

    def __init__(self, inner):
        self._inner = inner

    def write_partition(self, spec, symbol, trading_day, df):
        from ghtrader_assets.stores.base import StoreError

        if spec.name == MANIFESTS.name and len(df):
            raise StoreError(f"{spec.name} partition {symbol}/{trading_day}: disk full")
        return self._inner.write_partition(spec, symbol, trading_day, df)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _BrokenManifestStore(StoreResource):
    def get_store(self):
        return _ManifestTableDown(super().get_store())


def test_manifest_json_is_written_only_after_the_table_write(tmp_path):
    """Issue 10 item 11: the JSON file used to be written before the table write could fail,
    so a file vouched for a day the table did not."""
    json_path = tmp_path / "manifests" / CU.key / f"{DAY}.json"
    with DagsterInstance.ephemeral() as instance:
        broken = _BrokenManifestStore(kind="embedded", data_dir=str(tmp_path))
        defs = build_definitions(_settings(tmp_path), store=broken)
        result = _run(defs, instance)
        assert not result.success
        assert "disk full" in str(
            [e.step_failure_data.error for e in result.get_step_failure_events()]
        )
        store = defs.resources["store"].get_store()
        assert store.read_partition(MANIFESTS, CU.raw, DAY).empty
        assert not json_path.exists()
        # With the table back, the manifest lands in both, the JSON matching the table row.
        fixed = build_definitions(_settings(tmp_path))
        assert _run(fixed, instance).success
        row = fixed.resources["store"].get_store().read_partition(MANIFESTS, CU.raw, DAY)
        doc = json.loads(json_path.read_text())
        assert doc["rows"] == int(row.at[0, "rows"])
        assert doc["created_at"] == row.at[0, "created_at"].isoformat()


def test_multi_day_run_keeps_the_good_day_and_writes_the_new_one(tmp_path):
    """With several days per run the kept day is written back unchanged (the IO manager
    writes the run's frame by day), the other days are stored, and each day's check result,
    recorded under that day, says which download was refused."""
    days = ["2026-03-02", "2026-03-03"]
    with DagsterInstance.ephemeral() as instance:
        good = build_definitions(_settings(tmp_path))
        assert _run(good, instance).success  # 2026-03-02 stored and passing
        store = good.resources["store"].get_store()
        before = store.read_partition(TICKS, CU.raw, days[0])
        kept_created_at = json.loads(
            (tmp_path / "manifests" / CU.key / f"{days[0]}.json").read_text()
        )["created_at"]
        crossed = SourceResource(simulated_defects={CU.raw: {days[0]: {"crossed_book": True}}})
        settings = Settings(
            data_dir=tmp_path, universe=(CU,), start_date="2026-01-05", days_per_run=2
        )
        defs = build_definitions(settings, source=crossed)
        result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[1],
            },
            raise_on_error=False,
        )
        assert not result.success
        pd.testing.assert_frame_equal(store.read_partition(TICKS, CU.raw, days[0]), before)
        assert len(store.read_partition(TICKS, CU.raw, days[1])) > 10_000
        assert len(store.read_partition(MANIFESTS, CU.raw, days[0])) == 1
        book = {
            e.partition: e
            for e in result.get_asset_check_evaluations()
            if e.check_name == "book_integrity"
        }
        assert set(book) == set(days)
        assert not book[days[0]].passed and book[days[1]].passed
        assert book[days[0]].metadata["replacement"].value == "refused: stored day kept"
        assert "replacement" not in book[days[1]].metadata
        # Each day's outcome stands alone: the new day got its manifest (table and file),
        # the kept day's manifest is the one it had, and the run names the refused day.
        manifest_dir = tmp_path / "manifests" / CU.key
        assert len(store.read_partition(MANIFESTS, CU.raw, days[1])) == 1
        assert (manifest_dir / f"{days[1]}.json").exists()
        doc = json.loads((manifest_dir / f"{days[0]}.json").read_text())
        assert doc["created_at"] == kept_created_at
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert failure.step_key == "SHFE__cu_manifest"
        assert f"{days[0]} (download refused: stored day kept, manifest kept)" in (
            failure.step_failure_data.user_failure_data.description
        )


def test_multi_day_run_with_a_refused_shrink_still_stores_the_other_days(tmp_path):
    """Review finding: with several days per run, the shrink guard's refusal of one day
    aborted the whole step, so the other days were neither stored nor given manifests.
    Now the refused day keeps its stored ticks, summary and manifest, the other days are
    stored with manifests, and the run fails naming the refused day and the override."""
    days = ["2026-03-02", "2026-03-03", "2026-03-04"]
    with DagsterInstance.ephemeral() as instance:
        good = build_definitions(_settings(tmp_path))
        assert _run(good, instance).success  # 2026-03-02 stored and passing
        store = good.resources["store"].get_store()
        before = store.read_partition(TICKS, CU.raw, days[0])
        manifest_before = store.read_partition(MANIFESTS, CU.raw, days[0])

        class _ShrunkFirstDay(SourceResource):
            def open(self, symbol):
                source = super().open(symbol)
                inner = source.ticks

                def ticks(entry):
                    full = inner(entry)
                    if entry.trading_day.isoformat() == days[0]:
                        return full.iloc[: len(full) // 4].reset_index(drop=True)
                    return full

                source.ticks = ticks
                return source

        settings = Settings(
            data_dir=tmp_path, universe=(CU,), start_date="2026-01-05", days_per_run=3
        )
        defs = build_definitions(settings, source=_ShrunkFirstDay())
        result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": days[0],
                "dagster/asset_partition_range_end": days[-1],
            },
            raise_on_error=False,
        )
        assert not result.success
        pd.testing.assert_frame_equal(store.read_partition(TICKS, CU.raw, days[0]), before)
        pd.testing.assert_frame_equal(
            store.read_partition(MANIFESTS, CU.raw, days[0]), manifest_before
        )
        for day in days[1:]:
            assert len(store.read_partition(TICKS, CU.raw, day)) > 10_000
            assert len(store.read_partition(MANIFESTS, CU.raw, day)) == 1
        failures = [e for e in result.all_events if e.is_step_failure]
        assert [e.step_key for e in failures] == ["SHFE__cu_manifest"]
        message = failures[0].step_failure_data.user_failure_data.description
        assert f"{days[0]} (download refused (fewer rows): stored day kept" in message
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any("ghtrader/allow_shrink=true" in m and days[0] in m for m in logs)


class _UnreadableStore:
    def __init__(self, exc: Exception):
        self.exc = exc

    def read_partition(self, spec, symbol, trading_day):
        raise self.exc


def test_an_unreadable_stored_day_is_not_protected_but_an_unreachable_store_raises():
    from ghtrader_assets.assets.ingest import guard_replacement, stored_good_day
    from ghtrader_assets.stores.base import CorruptPartitionError, StoreError

    corrupt = _UnreadableStore(
        CorruptPartitionError("validation_summary partition: not a Parquet file")
    )
    assert stored_good_day(corrupt, CU, DAY) is None  # replacing it is the way out
    assert guard_replacement(corrupt, CU, DAY, 10, allow=False) is None
    # A store that does not answer says nothing about the stored day: both guards raise,
    # so the step fails and is retried instead of replacing a good day.
    for error in (
        TimeoutError("pgwire timed out"),
        StoreError("pool: couldn't get a connection after 3.00 sec"),  # what QuestDB raises
        OSError(24, "Too many open files"),
    ):
        with pytest.raises(type(error)):
            stored_good_day(_UnreadableStore(error), CU, DAY)
        with pytest.raises(type(error)):
            guard_replacement(_UnreadableStore(error), CU, DAY, 10, allow=False)


def test_a_transient_read_error_never_marks_a_good_partition_corrupt(tmp_path, monkeypatch):
    """EMFILE while reading the stored summary: the guard raises (retry), the partition is
    not marked corrupt, and the good day is still protected afterwards."""
    import pyarrow as pa

    from ghtrader_assets.assets.ingest import stored_good_day
    from ghtrader_assets.stores.base import StoreError
    from ghtrader_assets.stores.embedded import EmbeddedStore

    with DagsterInstance.ephemeral() as instance:
        defs = build_definitions(_settings(tmp_path))
        assert _run(defs, instance).success
    store = EmbeddedStore(tmp_path / "store")
    assert stored_good_day(store, CU, DAY) is not None
    real = pa.OSFile

    def emfile(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(pa, "OSFile", emfile)
    with pytest.raises(StoreError, match="could not be read now"):
        stored_good_day(store, CU, DAY)
    monkeypatch.setattr(pa, "OSFile", real)
    assert store.damaged().empty
    assert stored_good_day(store, CU, DAY) is not None


class _RolledAndCrossed(SourceResource):
    """The provider now names another main contract for the day, and its ticks are bad."""

    def open(self, symbol):
        src = super().open(symbol)
        inner = src.roll_entry
        src.roll_entry = lambda s, d: dataclasses.replace(inner(s, d), underlying="SHFE.cu2609")
        return src


def test_a_rejected_download_of_another_contract_keeps_the_roll_schedule(tmp_path):
    """Roll schedule, kept ticks and manifest keep naming the same (stored) contract."""
    with DagsterInstance.ephemeral() as instance:
        good = build_definitions(_settings(tmp_path))
        assert _run(good, instance).success
        store = good.resources["store"].get_store()
        before = store.read_partition(ROLL_SCHEDULE, CU.raw, DAY).at[0, "underlying"]
        assert before != "SHFE.cu2609"
        bad = _RolledAndCrossed(simulated_defects={CU.raw: {DAY: {"crossed_book": True}}})
        assert not _run(build_definitions(_settings(tmp_path), source=bad), instance).success
        assert store.read_partition(ROLL_SCHEDULE, CU.raw, DAY).at[0, "underlying"] == before
        assert set(store.read_partition(TICKS, CU.raw, DAY)["underlying"]) == {before}
        assert store.read_partition(MANIFESTS, CU.raw, DAY).at[0, "underlying"] == before

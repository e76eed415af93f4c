"""Metrics: figures in the store, query latency, and a Prometheus scrape."""

from __future__ import annotations

import math
import socket
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context
from prometheus_client.parser import text_string_to_metric_families

from ghtrader_assets import calendar, metrics
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.automation import EXPORTER_SENSOR
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.metrics import (
    INGEST_RATE,
    LatencyRecorder,
    TimedStore,
    exporter_settings,
    metrics_frame,
    record_metrics,
)
from ghtrader_assets.schema import METRICS, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.status import status_table
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.symbols import parse_universe

(CU,) = parse_universe("KQ.m@SHFE.cu")
DAY = "2026-03-02"


def _recent_days(n: int) -> list[str]:
    days = [calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))]
    while len(days) < n:
        days.append(calendar.previous_trading_day(days[-1]))
    return sorted(d.isoformat() for d in days)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Two recent trading days of SHFE.cu ingested through the real job, plus the report."""
    data = tmp_path_factory.mktemp("metrics")
    days = _recent_days(2)
    defs = build_definitions(Settings(data_dir=data, universe=(CU,), start_date=days[0]))
    with DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def(INGEST_JOB)
        for day in days:
            assert job.execute_in_process(partition_key=day, instance=instance).success
        report = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[AssetKey("coverage_report")]
        )
        assert report.success
        yield defs, instance, days


# --------------------------------------------------------------------------- latency


def test_latency_percentiles_from_many_threads():
    recorder = LatencyRecorder()
    rng = np.random.default_rng(7)
    chunks = [rng.exponential(0.01, 500) for _ in range(4)]

    def work(values):
        for v in values:
            recorder.observe("read_partition", "ticks_main_l5", float(v))

    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = recorder.summary("read_partition", "ticks_main_l5")
    everything = np.concatenate(chunks) * 1000
    assert summary.count == 2000
    assert summary.p50_ms == pytest.approx(np.percentile(everything, 50))
    assert summary.p95_ms == pytest.approx(np.percentile(everything, 95))
    assert summary.p99_ms == pytest.approx(np.percentile(everything, 99))
    assert summary.p50_ms <= summary.p95_ms <= summary.p99_ms <= summary.max_ms


def test_latency_window_keeps_the_latest_samples():
    recorder = LatencyRecorder(max_samples=10)
    for ms in range(1, 21):
        recorder.observe("coverage", "ticks_main_l5", ms / 1000)
    summary = recorder.summary("coverage", "ticks_main_l5")
    assert summary.count == 20  # every call counted ...
    assert summary.p50_ms == pytest.approx(np.percentile(np.arange(11, 21), 50))  # ... last 10 kept
    assert recorder.summary("coverage", "other") is None


def test_timed_store_times_every_call_and_passes_extras_through(tmp_path):
    recorder = LatencyRecorder()
    store = TimedStore(EmbeddedStore(tmp_path), recorder=recorder)
    assert store.kind == "embedded" and store.root == tmp_path.absolute()  # passthrough
    mark = store.write_mark()
    frame = metrics_frame(CU.raw, DAY, {"ticks": {"rows": 10.0}})
    stats = store.write_partition(METRICS, CU.raw, DAY, frame)
    assert store.writes_since(mark, METRICS.name, CU.raw, DAY) == stats
    assert store.writes_since(store.write_mark(), METRICS.name, CU.raw, DAY) is None
    store.read_partition(METRICS, CU.raw, DAY)
    store.partitions(METRICS, CU.raw)
    store.coverage([CU.raw])
    snap = recorder.snapshot().set_index(["method", "table"])
    for key in [
        ("write_partition", METRICS.name),
        ("read_partition", METRICS.name),
        ("partitions", METRICS.name),
        ("coverage", TICKS.name),
    ]:
        assert snap.at[key, "count"] == 1, key
    assert set(metrics.latency_metadata(recorder)) == {
        "query_count",
        "query_p50_ms",
        "query_p95_ms",
        "query_p99_ms",
    }
    assert metrics.latency_metadata(recorder)["query_count"] == 3  # writes are not queries


# --------------------------------------------------------------------------- metrics table


def test_record_metrics_replaces_only_the_given_assets(tmp_path):
    store = EmbeddedStore(tmp_path)
    record_metrics(store, CU.raw, DAY, {"ticks": {"rows": 100.0, "download_seconds": 2.0}})
    record_metrics(store, CU.raw, DAY, {"validation_summary": {"validation_seconds": 0.5}})
    record_metrics(
        store,
        CU.raw,
        DAY,
        {"validation_summary": {"validation_seconds": 0.25, "gap_count": math.nan}},
        run_id="run-2",
    )
    stored = store.read_partition(METRICS, CU.raw, DAY)
    values = {(r.asset, r.metric): (r.value, r.run_id) for r in stored.itertuples()}
    assert values == {
        ("ticks", "rows"): (100.0, ""),
        ("ticks", "download_seconds"): (2.0, ""),
        ("validation_summary", "validation_seconds"): (0.25, "run-2"),  # NaN gap_count dropped
    }
    with pytest.raises(TypeError, match="ticks.rows must be a number"):
        record_metrics(store, CU.raw, DAY, {"ticks": {"rows": "many"}})
    assert len(store.read_partition(METRICS, CU.raw, DAY)) == 3  # nothing lost


def test_concurrent_writers_of_one_day_keep_every_asset(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    assets = [f"asset{i}" for i in range(6)]

    def work(asset):
        record_metrics(store, CU.raw, DAY, {asset: {"x": 1.0}}, lock_dir=tmp_path / "locks")

    threads = [threading.Thread(target=work, args=(a,)) for a in assets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(store.read_partition(METRICS, CU.raw, DAY)["asset"]) == assets


def test_ingestion_records_figures_in_store_and_metadata(ingested):
    defs, instance, days = ingested
    store = defs.resources["store"].get_store()
    rows = store.read_table(METRICS, symbols=[CU.raw])
    assert sorted(set(rows["trading_day"])) == days
    keys = SymbolAssetKeys.of(CU)
    for day in days:
        got = rows[rows["trading_day"] == day].set_index(["asset", "metric"])["value"]
        ticks = store.read_partition(TICKS, CU.raw, day)
        summary = store.read_partition(VALIDATION_SUMMARY, CU.raw, day)
        assert got[("ticks", "rows")] == len(ticks)
        assert got[("ticks", "write_seconds")] > 0 and got[("ticks", "download_seconds")] > 0
        assert got[("ticks", INGEST_RATE)] == pytest.approx(
            len(ticks) / (got[("ticks", "download_seconds")] + got[("ticks", "write_seconds")])
        )
        assert got[("validation_summary", "gap_count")] == summary.at[0, "gap_count"]
        assert got[("validation_summary", "validation_seconds")] > 0
        # The same figures are the materialization metadata Dagster plots.
        event = instance.fetch_materializations(_records_filter(keys.ticks, day), limit=1).records[
            0
        ]
        meta = event.asset_materialization.metadata
        assert meta["bytes"].value == got[("ticks", "bytes")]
        assert meta["download_seconds"].value == round(got[("ticks", "download_seconds")], 4)


def _records_filter(key, day):
    from dagster import AssetRecordsFilter

    return AssetRecordsFilter(asset_key=key, asset_partitions=[day])


def test_coverage_report_plots_query_latency(ingested):
    _, instance, _ = ingested
    meta = instance.get_latest_materialization_event(
        AssetKey("coverage_report")
    ).asset_materialization.metadata
    p50, p95, p99 = (meta[f"query_{p}_ms"].value for p in ("p50", "p95", "p99"))
    assert 0 < p50 <= p95 <= p99
    assert meta["query_count"].value >= 2  # coverage + partitions + summaries


# --------------------------------------------------------------------------- Prometheus


def test_exporter_settings():
    assert exporter_settings({}) is None
    assert exporter_settings({"GHTRADER_PROMETHEUS_PORT": "9464"}) == (9464, "127.0.0.1")
    assert exporter_settings(
        {"GHTRADER_PROMETHEUS_PORT": "9464", "GHTRADER_PROMETHEUS_ADDR": "0.0.0.0"}
    ) == (9464, "0.0.0.0")
    for bad in ("http", "70000", "-1"):
        with pytest.raises(SettingsError, match="GHTRADER_PROMETHEUS_PORT"):
            exporter_settings({"GHTRADER_PROMETHEUS_PORT": bad})


def _scrape(port: int) -> dict[str, list]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_prometheus_endpoint_scrape(ingested, monkeypatch):
    defs, instance, days = ingested
    monkeypatch.setenv("GHTRADER_PROMETHEUS_PORT", "0")  # any free port
    settings = Settings(
        data_dir=defs.resources["store"].data_dir, universe=(CU,), start_date=days[0]
    )
    with_exporter = build_definitions(settings)
    sensor = with_exporter.resolve_sensor_def(EXPORTER_SENSOR)
    try:
        context = build_sensor_context(
            instance=instance, resources={"store": with_exporter.resources["store"]}
        )
        result = sensor(context)
        handle = metrics.ensure_exporter(0)  # the running one
        assert f":{handle.port}/metrics" in result.skip_message
        # The latency histogram is collected before the store collector reads the store, so
        # a scrape's own reads show in the next scrape (the store figures are cached).
        _scrape(handle.port)
        families = _scrape(handle.port)
    finally:
        metrics.stop_exporter()
    store = defs.resources["store"].get_store()
    stored = store.read_partition(METRICS, CU.raw, days[-1]).set_index(["asset", "metric"])
    status = status_table(store, (CU,)).set_index("symbol")

    def sample(family, name=None, **labels):
        for s in families[family]:
            if (name is None or s.name == name) and all(
                s.labels.get(k) == v for k, v in labels.items()
            ):
                return s.value
        raise AssertionError(f"no sample {family} {name} {labels}")

    assert sample("ghtrader_store_up") == 1
    assert sample("ghtrader_ingest_rows_per_second", symbol=CU.raw) == pytest.approx(
        stored.at[("ticks", INGEST_RATE), "value"]
    )
    assert sample("ghtrader_days_behind", symbol=CU.raw) == status.at[CU.raw, "days_behind"]
    assert sample("ghtrader_corrupt_days", symbol=CU.raw) == 0
    # Gauge-histograms over the recent days: one observation per ingested day.
    assert sample(
        "ghtrader_ingest_rate_rows_per_second",
        "ghtrader_ingest_rate_rows_per_second_bucket",
        symbol=CU.raw,
        le="+Inf",
    ) == len(days)
    assert sample(
        "ghtrader_validation_duration_seconds",
        "ghtrader_validation_duration_seconds_bucket",
        symbol=CU.raw,
        le="+Inf",
    ) == len(days)
    # The scrape's own store reads went through the timed store.
    assert (
        sample(
            "ghtrader_store_query_seconds",
            "ghtrader_store_query_seconds_count",
            method="coverage",
            table=TICKS.name,
        )
        >= 1
    )


def test_exporter_on_a_busy_port_reports_instead_of_failing():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert metrics.ensure_exporter(port) is None
    metrics.stop_exporter()

"""Metrics a team can watch: figures in the store, store query latency, a Prometheus endpoint.

* **Figures in the store.** Every ticks step records, per trading day, its ingestion figures
  (rows, download and write seconds, rows/s, write MB/s) and validation figures (duration,
  gap counts, failed checks) in the :data:`~ghtrader_assets.schema.METRICS` table, one row
  per metric, so trends are one query away outside Dagster. The same figures are the
  materialization metadata Dagster plots. A partition (symbol, day) holds every asset's
  rows; :func:`record_metrics` replaces only the rows of the assets it is given, under a
  file lock, so a summary recomputed alone keeps the day's ingestion figures.
* **Query latency.** :class:`TimedStore` wraps any :class:`TickStore` (the store resource
  hands one out) and times every call per method and table into :data:`LATENCY` (P50/P95/P99
  over the latest samples) and the Prometheus histogram ``ghtrader_store_query_seconds``.
  Write figures of each partition are kept briefly so the step that caused a write can
  record them (:meth:`TimedStore.writes_since`).
* **Prometheus.** With ``GHTRADER_PROMETHEUS_PORT`` set, :func:`ensure_exporter` serves
  :data:`REGISTRY`: the latency histogram of this process plus, read from the store at
  scrape time, per-symbol freshness, latest ingestion rate and validation duration, and
  gauge-histograms of both over recent days. Reading the store makes the figures
  independent of which process ingested them (Dagster runs each step in its own process).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from filelock import FileLock
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ghtrader_assets.calendar import day_start_utc
from ghtrader_assets.config import SettingsError
from ghtrader_assets.schema import METRICS, TICKS, VALIDATION_SUMMARY, TableSpec, conform
from ghtrader_assets.stores.base import StoreError, TickStore, WriteStats, read_for_replace

if TYPE_CHECKING:
    from ghtrader_assets.resources import StoreResource
    from ghtrader_assets.symbols import MainSymbol

logger = logging.getLogger(__name__)

TICKS_ASSET = "ticks"
SUMMARY_ASSET = "validation_summary"
#: End-to-end ingestion rate: rows / (download + write seconds). What ``status`` shows.
INGEST_RATE = "ingest_rows_per_second"
VALIDATION_SECONDS = "validation_seconds"

PORT_ENV = "GHTRADER_PROMETHEUS_PORT"
ADDR_ENV = "GHTRADER_PROMETHEUS_ADDR"

#: Everything this project exposes; a dedicated registry so a code reload cannot collide
#: with metrics already registered in the global one.
REGISTRY = CollectorRegistry(auto_describe=True)
QUERY_SECONDS = Histogram(
    "ghtrader_store_query_seconds",
    "Latency of store calls in this process, by store kind, method and table.",
    labelnames=("store", "method", "table"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
INGEST_RATE_BUCKETS = (1e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6)
VALIDATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


# --------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one (method, table) over the retained samples, in milliseconds."""

    method: str
    table: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


class LatencyRecorder:
    """Thread-safe latency samples per (method, table); keeps the latest ``max_samples``.

    A bounded window rather than a streaming sketch: a few thousand floats per key are
    cheap, exact, and follow the current behaviour (a cache warming up, a store moving).
    """

    def __init__(self, max_samples: int = 5_000) -> None:
        self._max = max_samples
        self._samples: dict[tuple[str, str], deque[float]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def observe(self, method: str, table: str, seconds: float) -> None:
        key = (method, table)
        with self._lock:
            self._samples.setdefault(key, deque(maxlen=self._max)).append(seconds)
            self._counts[key] = self._counts.get(key, 0) + 1

    def summary(self, method: str, table: str) -> LatencySummary | None:
        with self._lock:
            samples = np.array(self._samples.get((method, table), ()), dtype="float64")
            count = self._counts.get((method, table), 0)
        if not len(samples):
            return None
        p50, p95, p99 = np.percentile(samples, [50, 95, 99]) * 1000
        return LatencySummary(
            method, table, count, float(p50), float(p95), float(p99), float(samples.max() * 1000)
        )

    def overall(self, exclude_methods: Sequence[str] = ()) -> dict[str, float]:
        """Count and P50/P95/P99 (ms) over the retained samples of every key whose method
        is not excluded; empty when there are none."""
        with self._lock:
            samples = [
                s
                for (method, _), values in self._samples.items()
                if method not in exclude_methods
                for s in values
            ]
        if not samples:
            return {}
        p50, p95, p99 = np.percentile(np.array(samples, dtype="float64"), [50, 95, 99]) * 1000
        return {"count": float(len(samples)), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}

    def snapshot(self) -> pd.DataFrame:
        """One row per (method, table): count and P50/P95/P99/max in ms."""
        with self._lock:
            keys = sorted(self._samples)
        rows = [s for k in keys if (s := self.summary(*k)) is not None]
        columns = ["method", "table", "count", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
        return pd.DataFrame([vars(r) for r in rows], columns=columns)

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self._counts.clear()


#: The recorder every :class:`TimedStore` of this process reports to.
LATENCY = LatencyRecorder()


class TimedStore(TickStore):
    """A :class:`TickStore` proxy that times every call and remembers recent writes.

    Anything not part of the interface (``sql``, ``root``, ...) is passed through to the
    wrapped store, so callers keep store-specific extras.
    """

    def __init__(
        self, inner: TickStore, recorder: LatencyRecorder = LATENCY, write_log_size: int = 4096
    ) -> None:
        self._inner = inner
        self.kind = inner.kind
        self._recorder = recorder
        self._writes: OrderedDict[tuple[str, str, str], tuple[int, WriteStats]] = OrderedDict()
        self._write_log_size = write_log_size
        self._seq = itertools.count(1)
        self._mark = 0
        self._lock = threading.Lock()

    @property
    def inner(self) -> TickStore:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not yet set (copy/unpickle): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"TimedStore({self._inner!r})"

    @contextlib.contextmanager
    def _timed(self, method: str, table: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self._recorder.observe(method, table, seconds)
        QUERY_SECONDS.labels(self.kind, method, table).observe(seconds)

    def write_partition(
        self, spec: TableSpec, symbol: str, trading_day: str, df: pd.DataFrame
    ) -> WriteStats:
        with self._timed("write_partition", spec.name):
            stats = self._inner.write_partition(spec, symbol, trading_day, df)
        with self._lock:
            seq = next(self._seq)
            self._mark = seq
            key = (spec.name, symbol, str(trading_day))
            self._writes.pop(key, None)
            self._writes[key] = (seq, stats)
            while len(self._writes) > self._write_log_size:
                self._writes.popitem(last=False)
        return stats

    def write_mark(self) -> int:
        """A position in the write log; pass it to :meth:`writes_since`."""
        with self._lock:
            return self._mark

    def writes_since(
        self, mark: int, table: str, symbol: str, trading_day: str
    ) -> WriteStats | None:
        """The latest write of that partition made after ``mark``, if this process made one."""
        with self._lock:
            found = self._writes.get((table, symbol, trading_day))
        return found[1] if found and found[0] > mark else None

    def read_partition(self, spec: TableSpec, symbol: str, trading_day: str) -> pd.DataFrame:
        with self._timed("read_partition", spec.name):
            return self._inner.read_partition(spec, symbol, trading_day)

    def read_table(
        self,
        spec: TableSpec,
        symbols: Sequence[str] | None = None,
        start_day: str | None = None,
        end_day: str | None = None,
    ) -> pd.DataFrame:
        with self._timed("read_table", spec.name):
            return self._inner.read_table(spec, symbols, start_day, end_day)

    def partitions(self, spec: TableSpec, symbol: str) -> list[str]:
        with self._timed("partitions", spec.name):
            return self._inner.partitions(spec, symbol)

    def coverage(self, symbols: Sequence[str]) -> pd.DataFrame:
        with self._timed("coverage", TICKS.name):
            return self._inner.coverage(symbols)

    def latest(self, symbols: Sequence[str]) -> pd.DataFrame:
        with self._timed("latest", TICKS.name):
            return self._inner.latest(symbols)

    def catalog_rows(
        self,
        spec: TableSpec,
        symbols: Sequence[str],
        *,
        start_day: str | None = None,
        end_day: str | None = None,
        days: Sequence[str] | None = None,
    ) -> pd.DataFrame | None:
        with self._timed("catalog_rows", spec.name):
            return self._inner.catalog_rows(
                spec, symbols, start_day=start_day, end_day=end_day, days=days
            )

    def catalog_summary(self, spec: TableSpec, symbols: Sequence[str]) -> pd.DataFrame | None:
        with self._timed("catalog_summary", spec.name):
            return self._inner.catalog_summary(spec, symbols)

    def damaged(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        with self._timed("damaged", "*"):
            return self._inner.damaged(symbols)

    def settle(self) -> None:
        with self._timed("settle", "*"):
            self._inner.settle()

    def close(self) -> None:
        self._inner.close()


def scoped_timing(store: TickStore) -> tuple[TimedStore, LatencyRecorder]:
    """A timed view of ``store`` with its own recorder, to report one step's queries.

    Calls still feed the Prometheus histogram; the returned recorder sees only the calls
    made through the returned store.
    """
    recorder = LatencyRecorder()
    inner = store.inner if isinstance(store, TimedStore) else store
    return TimedStore(inner, recorder=recorder), recorder


def latency_metadata(recorder: LatencyRecorder = LATENCY) -> dict[str, float]:
    """P50/P95/P99 (ms) of all read calls of this process, for Dagster metadata plots."""
    overall = recorder.overall(exclude_methods=("write_partition",))
    return {f"query_{k}": round(float(v), 3) for k, v in overall.items()}


# --------------------------------------------------------------------------- figures


class DayFigures(Protocol):
    """What :func:`record_day_metrics` reads from one ingested day (``assets.ingest.DayIngest``)."""

    trading_day: str
    ticks: pd.DataFrame
    summary: pd.DataFrame
    download_seconds: float
    duplicates_dropped: int

    @property
    def validation(self) -> Any: ...


def _rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else math.nan


def ingest_figures(
    rows: int, download_seconds: float, duplicates_dropped: int, write: WriteStats | None
) -> dict[str, float]:
    """Figures of one day's download and write (write ones only when known)."""
    out = {
        "rows": float(rows),
        "download_seconds": download_seconds,
        "download_rows_per_second": _rate(rows, download_seconds),
        "duplicates_dropped": float(duplicates_dropped),
    }
    if write is not None:
        out.update(
            {
                "write_seconds": write.seconds,
                "write_rows_per_second": _rate(write.rows, write.seconds),
                "write_mb_per_second": _rate(write.bytes / 1e6, write.seconds),
                "bytes": float(write.bytes),
                INGEST_RATE: _rate(rows, download_seconds + write.seconds),
            }
        )
    return out


def validation_figures(
    rows: int, seconds: float, summary: pd.DataFrame, write: WriteStats | None
) -> dict[str, float]:
    """Figures of one day's validation: duration, rate, gap counts, failed checks."""
    out = {
        VALIDATION_SECONDS: seconds,
        "validation_rows_per_second": _rate(rows, seconds),
    }
    if len(summary):
        row = summary.iloc[0]
        for name in ("gap_count", "gaps_over_threshold", "gap_seconds_total", "max_gap_seconds"):
            if name in row.index and pd.notna(row[name]):
                out[name] = float(row[name])
        if "checks_failed" in row.index and pd.notna(row["checks_failed"]):
            out["checks_failed"] = float(row["checks_failed"])
    if write is not None:
        out["write_seconds"] = write.seconds
    return out


def metrics_frame(
    symbol: str,
    trading_day: str,
    figures: Mapping[str, Mapping[str, float]],
    *,
    run_id: str = "",
    recorded_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Rows of :data:`METRICS` for one symbol-day; NaN figures (unknown) are left out."""
    ts = day_start_utc(trading_day)
    stamp = recorded_at if recorded_at is not None else pd.Timestamp.now(tz="UTC")
    rows = []
    for asset, values in figures.items():
        for metric, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(
                    f"{METRICS.name} {symbol} {trading_day}: {asset}.{metric} must be a number, "
                    f"got {type(value).__name__}"
                )
            if math.isnan(value):
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "trading_day": trading_day,
                    "ts": ts,
                    "asset": asset,
                    "metric": metric,
                    "value": float(value),
                    "run_id": run_id,
                    "recorded_at": stamp,
                }
            )
    frame = pd.DataFrame(rows, columns=METRICS.columns)
    return conform(frame, METRICS)


_RECORD_LOCK = threading.Lock()


def _lock_name(symbol: str, trading_day: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", f"{symbol}_{trading_day}") + ".lock"


def record_metrics(
    store: TickStore,
    symbol: str,
    trading_day: str,
    figures: Mapping[str, Mapping[str, float]],
    *,
    run_id: str = "",
    lock_dir: Path | None = None,
) -> int:
    """Replace the rows of ``figures``' assets in the symbol-day's metrics partition.

    Rows of other assets in the partition are kept. ``lock_dir`` (on the machine that runs
    the steps) serialises writers across processes; the read-modify-write is then safe.
    Returns the number of rows written for ``figures``.
    """
    new = metrics_frame(symbol, trading_day, figures, run_id=run_id)
    file_lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if lock_dir is not None:
        lock_dir.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(str(lock_dir / _lock_name(symbol, trading_day)), timeout=60)
    with _RECORD_LOCK, file_lock:
        old = read_for_replace(store, METRICS, symbol, trading_day)
        keep = old[~old["asset"].isin(list(figures))]
        merged = pd.concat([keep, new], ignore_index=True) if len(keep) else new
        store.write_partition(METRICS, symbol, trading_day, merged)
    return len(new)


def write_mark(store: TickStore) -> int:
    """Where the write log of ``store`` stands (0 for a store that is not timed)."""
    return store.write_mark() if isinstance(store, TimedStore) else 0


def record_day_metrics(
    store_resource: StoreResource,
    symbol: MainSymbol,
    days: Sequence[DayFigures],
    *,
    ingested: bool,
    summarized: bool,
    mark: int,
    run_id: str,
    log: logging.Logger | Any = logger,
) -> int:
    """Record the ticks step's figures of each day; a failure is logged, never raised.

    Metrics must not fail an ingestion that succeeded, so store errors here become a
    warning in the run's log. ``mark`` is :func:`write_mark` taken before the step wrote.
    """
    store = store_resource.get_store()
    lock_dir = Path(store_resource.data_dir) / ".locks" / METRICS.name
    written = 0
    for day in days:
        figures: dict[str, dict[str, float]] = {}

        def write_of(spec: TableSpec, day: DayFigures = day) -> WriteStats | None:
            if not isinstance(store, TimedStore):
                return None
            return store.writes_since(mark, spec.name, symbol.raw, day.trading_day)

        rows = len(day.ticks)
        if ingested:
            figures[TICKS_ASSET] = ingest_figures(
                rows, day.download_seconds, day.duplicates_dropped, write_of(TICKS)
            )
        if summarized or ingested:
            figures[SUMMARY_ASSET] = validation_figures(
                rows,
                float(day.validation.duration_seconds),
                day.summary,
                write_of(VALIDATION_SUMMARY) if summarized else None,
            )
        try:
            written += record_metrics(
                store,
                symbol.raw,
                day.trading_day,
                figures,
                run_id=run_id,
                lock_dir=lock_dir if store_resource.data_dir else None,
            )
        except (StoreError, OSError, TimeoutError) as exc:
            log.warning(f"{METRICS.name} {symbol.raw} {day.trading_day}: not recorded: {exc}")
    return written


# --------------------------------------------------------------------------- Prometheus


def exporter_settings(env: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """``(port, addr)`` from ``GHTRADER_PROMETHEUS_PORT``/``_ADDR``; ``None`` when unset."""
    env = os.environ if env is None else env
    text = env.get(PORT_ENV, "").strip()
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SettingsError(f"{PORT_ENV}={text!r} must be a TCP port number (0-65535)")
    return port, env.get(ADDR_ENV, "").strip() or "127.0.0.1"


class StoreStatusCollector:
    """Per-symbol status and recent figures, read from the store at scrape time.

    Results are cached for ``ttl_seconds`` so frequent scrapes (or several Prometheus
    servers) cost one store read per period.
    """

    def __init__(
        self,
        store_factory: Callable[[], TickStore],
        universe: Sequence[MainSymbol],
        *,
        window_days: int = 20,
        ttl_seconds: float = 15.0,
    ) -> None:
        self._store_factory = store_factory
        self._universe = tuple(universe)
        self._window = window_days
        self._ttl = ttl_seconds
        self._cached: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # no store read when the collector is registered

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self._ttl:
                self._cached = (time.monotonic(), self._build())
            yield from self._cached[1]

    def _build(self) -> list[Metric]:
        from ghtrader_assets.status import recent_metrics, status_table

        up = GaugeMetricFamily("ghtrader_store_up", "1 when the last status read succeeded.")
        try:
            store = self._store_factory()
            table = status_table(store, self._universe)
            recent = recent_metrics(store, self._universe, days=self._window)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer, not crash
            logger.warning("prometheus status read failed: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        out: list[Metric] = [up]
        gauges = {
            "days_behind": ("ghtrader_days_behind", "Trading days since the last stored day."),
            "ingest_rows_per_second": (
                "ghtrader_ingest_rows_per_second",
                "End-to-end ingestion rate (rows / download+write seconds) of the last day.",
            ),
            "validation_seconds": (
                "ghtrader_validation_seconds_last",
                "Validation duration of the last stored day.",
            ),
            "checks_failed": ("ghtrader_checks_failed", "Checks failed on the last stored day."),
            "corrupt_days": (
                "ghtrader_corrupt_days",
                "Stored days with a partition found corrupt or unreadable (replace them).",
            ),
        }
        for column, (name, doc) in gauges.items():
            family = GaugeMetricFamily(name, doc, labels=["symbol"])
            for rec in table.itertuples(index=False):
                value = getattr(rec, column)
                if pd.notna(value):
                    family.add_metric([rec.symbol], float(value))
            out.append(family)
        out.append(
            _gauge_histogram(
                "ghtrader_ingest_rate_rows_per_second",
                f"Ingestion rate of the last {self._window} trading days, per symbol-day.",
                recent[(recent["asset"] == TICKS_ASSET) & (recent["metric"] == INGEST_RATE)],
                INGEST_RATE_BUCKETS,
            )
        )
        out.append(
            _gauge_histogram(
                "ghtrader_validation_duration_seconds",
                f"Validation duration of the last {self._window} trading days, per symbol-day.",
                recent[
                    (recent["asset"] == SUMMARY_ASSET) & (recent["metric"] == VALIDATION_SECONDS)
                ],
                VALIDATION_BUCKETS,
            )
        )
        return out


def _gauge_histogram(
    name: str, doc: str, rows: pd.DataFrame, buckets: Sequence[float]
) -> GaugeHistogramMetricFamily:
    family = GaugeHistogramMetricFamily(name, doc, labels=["symbol"])
    for symbol, group in rows.groupby("symbol", sort=True):
        values = group["value"].to_numpy(dtype="float64")
        counts = [(floatToGoString(b), float((values <= b).sum())) for b in buckets]
        counts.append(("+Inf", float(len(values))))
        family.add_metric([str(symbol)], counts, float(values.sum()))
    return family


@dataclass
class ExporterHandle:
    """A running endpoint; ``stop()`` shuts it down (tests, reloads)."""

    server: Any
    thread: threading.Thread
    addr: str
    port: int

    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_EXPORTER: ExporterHandle | None = None
_EXPORTER_LOCK = threading.Lock()
_STATUS_COLLECTOR: StoreStatusCollector | None = None


def ensure_exporter(
    port: int,
    *,
    addr: str = "127.0.0.1",
    store_factory: Callable[[], TickStore] | None = None,
    universe: Sequence[MainSymbol] = (),
) -> ExporterHandle | None:
    """Serve :data:`REGISTRY` on ``addr:port`` once per process; ``None`` if the port is busy.

    With a ``store_factory``, the per-symbol status collector is (re)registered for
    ``universe``. ``port=0`` picks a free port (see ``handle.port``).
    """
    global _EXPORTER, _STATUS_COLLECTOR
    with _EXPORTER_LOCK:
        if store_factory is not None:
            if _STATUS_COLLECTOR is not None:
                REGISTRY.unregister(_STATUS_COLLECTOR)
            _STATUS_COLLECTOR = StoreStatusCollector(store_factory, universe)
            REGISTRY.register(_STATUS_COLLECTOR)
        if _EXPORTER is not None and _EXPORTER.alive():
            return _EXPORTER
        try:
            server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
        except OSError as exc:
            logger.warning("prometheus endpoint %s:%s not started: %s", addr, port, exc)
            return None
        _EXPORTER = ExporterHandle(server, thread, addr, int(server.server_port))
        logger.info("prometheus endpoint serving http://%s:%s/metrics", addr, _EXPORTER.port)
        return _EXPORTER


def stop_exporter() -> None:
    """Stop this process's endpoint and drop the status collector (tests, shutdown)."""
    global _EXPORTER, _STATUS_COLLECTOR
    with _EXPORTER_LOCK:
        if _EXPORTER is not None:
            _EXPORTER.stop()
            _EXPORTER = None
        if _STATUS_COLLECTOR is not None:
            REGISTRY.unregister(_STATUS_COLLECTOR)
            _STATUS_COLLECTOR = None

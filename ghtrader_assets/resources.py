"""Dagster resources: the configured store and source.

Values come from ``GHTRADER_*`` variables through Dagster ``EnvVar`` (see
:func:`env_or`), so secrets never appear in run configs, the UI or logs. The store object is
cached per process and configuration: a step that writes many partitions (or several steps
run in one process) reuses one store, and with it one QuestDB sender and connection pool.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar

from ghtrader_assets.metrics import TimedStore
from ghtrader_assets.sources.base import TickSource
from ghtrader_assets.stores.base import TickStore
from ghtrader_assets.symbols import MainSymbol

_STORES: dict[tuple[Any, ...], TickStore] = {}
_STORES_LOCK = threading.Lock()


def env_or(name: str, default: Any) -> Any:
    """``EnvVar(name)`` when the variable is set, else the default.

    Dagster refuses an ``EnvVar`` whose variable is unset, but a fresh machine must run the
    demo with no configuration at all, hence the fallback.
    """
    return EnvVar(name) if os.environ.get(name, "").strip() else default


#: Resource fields that hold secrets: never shown by ``repr`` (logs, tracebacks).
SECRET_FIELDS = frozenset({"qdb_password", "qdb_token", "tq_password"})


class _HidesSecrets:
    """Mask secret fields in ``repr``: a resolved resource holds the real values."""

    def __repr_args__(self):  # pydantic's hook behind __repr__ and __str__
        for name, value in super().__repr_args__():  # type: ignore[misc]
            yield name, ("***" if name in SECRET_FIELDS and value else value)


class StoreResource(_HidesSecrets, ConfigurableResource):
    """Where tables live: ``embedded`` Parquet (default) or ``questdb``."""

    kind: str = "embedded"
    data_dir: str = ""
    cache_ttl_seconds: float = 30.0
    qdb_host: str = ""
    qdb_ilp_port: int = 9000
    qdb_pg_port: int = 8812
    qdb_user: str = "admin"
    qdb_password: str = ""
    qdb_token: str = ""
    qdb_tls: bool = False
    qdb_wal_timeout: float = 60.0
    qdb_transport: str = "auto"
    qdb_batch_rows: int = 75_000
    qdb_table_prefix: str = ""

    @property
    def _data_path(self) -> Path:
        """``data_dir``, or the default data directory when none is configured."""
        from ghtrader_assets.config import default_data_dir

        return Path(self.data_dir) if self.data_dir else default_data_dir()

    @property
    def manifest_dir(self) -> Path:
        """Manifests are also written as JSON files here, whatever the store kind."""
        return self._data_path / "manifests"

    @property
    def reports_dir(self) -> Path:
        return self._data_path / "reports"

    def get_store(self) -> TickStore:
        """The store for this configuration, created once per process.

        It is wrapped in :class:`~ghtrader_assets.metrics.TimedStore`, which times every
        call (query latency P50/P95/P99, Prometheus) and keeps recent write figures for the
        metrics table; everything else passes through to the real store.
        """
        key = (
            self.kind,
            self.data_dir,
            self.cache_ttl_seconds,
            self.qdb_host,
            self.qdb_ilp_port,
            self.qdb_pg_port,
            self.qdb_user,
            self.qdb_tls,
            self.qdb_transport,
            self.qdb_batch_rows,
            self.qdb_table_prefix,
            os.getpid(),
        )
        with _STORES_LOCK:
            store = _STORES.get(key)
            if store is None:
                store = _STORES[key] = TimedStore(self._create())
            return store

    def _create(self) -> TickStore:
        if self.kind == "embedded":
            from ghtrader_assets.stores.embedded import EmbeddedStore

            if not self.data_dir:
                raise ValueError("StoreResource.data_dir is required for the embedded store")
            return EmbeddedStore(
                Path(self.data_dir) / "store", cache_ttl_seconds=self.cache_ttl_seconds
            )
        if self.kind == "questdb":
            from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore

            if not self.qdb_host:
                raise ValueError("GHTRADER_STORE=questdb needs GHTRADER_QDB_HOST")
            settings = QuestDBSettings(
                host=self.qdb_host,
                ilp_port=self.qdb_ilp_port,
                pg_port=self.qdb_pg_port,
                user=self.qdb_user,
                password=self.qdb_password or None,
                token=self.qdb_token or None,
                tls=self.qdb_tls,
                wal_timeout=self.qdb_wal_timeout,
                transport=self.qdb_transport,
                batch_rows=self.qdb_batch_rows,
                cache_ttl=self.cache_ttl_seconds,
                table_prefix=self.qdb_table_prefix,
            )
            store = QuestDBStore(settings)
            store.ensure_tables()  # idempotent: CREATE TABLE IF NOT EXISTS + drift check
            return store
        raise ValueError(f"unknown store kind {self.kind!r}: expected 'embedded' or 'questdb'")


class SourceResource(_HidesSecrets, ConfigurableResource):
    """Where ticks come from: ``simulated`` (default), ``csv`` or ``tqsdk``.

    ``simulated_defects`` maps a main symbol to ``{trading day or "*": {defect: params}}``
    so demos and tests can inject known defects into chosen symbol-days.
    """

    kind: str = "simulated"
    seed: int = 0
    csv_dir: str = ""
    tq_user: str = ""
    tq_password: str = ""
    simulated_defects: dict[str, dict[str, dict[str, Any]]] = {}
    #: Extra seconds per day's download, to mimic TqSdk in benchmarks (0 = off).
    latency_seconds: float = 0.0

    def open(self, symbol: MainSymbol) -> TickSource:
        """A fresh source for one step, used for all its days and closed at its end.

        One step, one source: TqApi is not thread-safe and logging in per day would strain
        the account, so a step opens exactly one and nothing is shared between steps.
        """
        source = self._open(symbol)
        if self.latency_seconds > 0:
            from ghtrader_assets.sources.latency import LatencySource

            return LatencySource(source, self.latency_seconds)
        return source

    def _open(self, symbol: MainSymbol) -> TickSource:
        from ghtrader_assets.sources.registry import make_source

        if self.kind == "simulated":
            per_day = self.simulated_defects.get(symbol.raw)
            if per_day:
                from ghtrader_assets.sources.defects import DefectRouter

                return DefectRouter(self.seed, per_day)
            return make_source("simulated", seed=self.seed)
        if self.kind == "csv":
            if not self.csv_dir:
                raise ValueError("GHTRADER_SOURCE=csv needs GHTRADER_CSV_DIR")
            return make_source("csv", root=self.csv_dir)
        if self.kind == "tqsdk":
            return make_source("tqsdk", user=self.tq_user, password=self.tq_password)
        raise ValueError(f"unknown source kind {self.kind!r}: expected simulated, csv or tqsdk")

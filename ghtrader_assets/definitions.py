"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads :data:`defs`.

Everything is built from :class:`~ghtrader_assets.config.Settings` (``GHTRADER_*``
variables) so the same module serves the demo, tests and production; secrets enter only as
``EnvVar`` references on the resources.
"""

from __future__ import annotations

import os

from dagster import AssetSelection, BackfillPolicy, Definitions, define_asset_job

from ghtrader_assets.assets import SymbolAssetKeys, build_coverage_report_asset, build_symbol_assets
from ghtrader_assets.assets.ingest import REVALIDATE_TAG
from ghtrader_assets.automation import AutomationSettings, build_sensors, with_automation
from ghtrader_assets.config import Settings, check_environment
from ghtrader_assets.executors import build_executor, executor_kind
from ghtrader_assets.io_managers import StoreIOManager
from ghtrader_assets.metrics import exporter_settings
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.resources import (
    SourceResource,
    StoreResource,
    env_or,
    tq_account_configs,
)

INGEST_JOB = "ingest_daily"
REVALIDATE_JOB = "revalidate_from_store"


def build_resources(settings: Settings) -> dict[str, object]:
    """Store, source and IO manager resources; secrets only through ``EnvVar``."""
    # Non-secret QuestDB settings are parsed (and checked) once by QuestDBSettings; the
    # password and token stay EnvVar references that Dagster resolves at run time.
    from ghtrader_assets.stores.questdb.settings import QuestDBSettings

    qdb = QuestDBSettings.from_env()
    store = StoreResource(
        kind=settings.store,
        data_dir=str(settings.data_dir),
        qdb_host=env_or("GHTRADER_QDB_HOST", ""),
        qdb_ilp_port=qdb.ilp_port,
        qdb_pg_port=qdb.pg_port,
        qdb_user=qdb.user,
        qdb_password=env_or("GHTRADER_QDB_PASSWORD", ""),
        qdb_token=env_or("GHTRADER_QDB_TOKEN", ""),
        qdb_tls=qdb.tls,
        qdb_transport=qdb.transport,
        qdb_batch_rows=qdb.batch_rows,
        qdb_table_prefix=qdb.table_prefix,
        qdb_wal_timeout=qdb.wal_timeout,
        cache_ttl_seconds=qdb.cache_ttl if qdb.cache_ttl is not None else 30.0,
    )
    source = SourceResource(
        kind=settings.source,
        csv_dir=str(settings.csv_dir or ""),
        tq_user=env_or("GHTRADER_TQ_USER", ""),
        tq_password=env_or("GHTRADER_TQ_PASSWORD", ""),
        tq_accounts=tq_account_configs(settings.tq_accounts),
        latency_seconds=settings.source_latency_seconds,
    )
    return {"store": store, "source": source, "store_io_manager": StoreIOManager(store=store)}


def backfill_policy(days_per_run: int) -> BackfillPolicy | None:
    """How a backfill splits into runs.

    One day per run (the default) uses no policy at all: Dagster then launches one run per
    partition tagged ``dagster/partition``, the tag under which it records each day's check
    results, and the UI lists the run under its day. A policy (``multi_run(n)``) is only set
    when several days per run are asked for; those runs carry partition-range tags, and the
    ticks step then records its check results per day itself
    (:mod:`ghtrader_assets.assets.day_checks`).
    """
    return None if days_per_run == 1 else BackfillPolicy.multi_run(days_per_run)


def build_definitions(
    settings: Settings | None = None,
    *,
    executor: str | None = None,
    **resource_overrides: object,
) -> Definitions:
    """The full code location for ``settings`` (default: from the environment).

    ``executor`` (default ``$GHTRADER_EXECUTOR``, else in-process) runs the steps of every
    job, including the asset jobs the UI, backfills and automation launch; see
    :mod:`ghtrader_assets.executors` for why in-process is the default.
    """
    settings = settings or Settings.from_env()
    # Every other GHTRADER_* setting too, so a bad value fails here, not inside a run.
    check_environment()
    executor_def = build_executor(executor or executor_kind())
    partitions_def = trading_day_partitions(settings.start_date, settings.close_time)
    automation = AutomationSettings.from_env()
    policy = backfill_policy(settings.days_per_run)
    assets: list = []
    # The coverage report reads manifests and validation summaries; depending on both keeps
    # it fresh after a day that fails its blocking checks (no manifest then).
    report_inputs = []
    for symbol in settings.universe:
        assets.extend(
            build_symbol_assets(
                symbol,
                partitions_def,
                pool=settings.pool_of(symbol),  # the symbol's TqSdk account, or the source
                backfill_policy=policy,
            )
        )
        keys = SymbolAssetKeys.of(symbol)
        report_inputs.extend([keys.validation_summary, keys.manifest])
    assets.append(build_coverage_report_asset(settings.universe, report_inputs, partitions_def))
    assets = with_automation(assets, automation.lookback)
    sensors = build_sensors(
        settings.universe,
        partitions_def,
        automation,
        days_per_run=settings.days_per_run,
        exporter=exporter_settings(),
    )
    ingest = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.all() - AssetSelection.assets("coverage_report"),
        description="Roll schedule, ticks (with checks), validation summary and manifest of "
        "every symbol for one trading day.",
    )
    revalidate = define_asset_job(
        REVALIDATE_JOB,
        selection=AssetSelection.assets(
            *(k for s in settings.universe for k in SymbolAssetKeys.of(s).validated_day)
        ),
        tags={REVALIDATE_TAG: "true"},
        partitions_def=partitions_def,
        description="Re-validate stored ticks (after a GHTRADER_VALIDATION_* change): checks "
        "and validation summary recomputed per day, ticks left as stored, the source never "
        "opened. Launch a backfill over the days to re-check.",
    )
    resources = {**build_resources(settings), **resource_overrides}
    if "store" in resource_overrides and "store_io_manager" not in resource_overrides:
        # The IO manager must write through the same (overridden) store.
        resources["store_io_manager"] = StoreIOManager(store=resources["store"])
    return Definitions(
        assets=assets,
        jobs=[ingest, revalidate],
        sensors=sensors,
        resources=resources,
        executor=executor_def,
    )


def _environment() -> tuple[tuple[str, str], ...]:
    """The ``GHTRADER_*`` variables the definitions are built from."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("GHTRADER_")))


defs = build_definitions()
_built: dict[tuple[tuple[str, str], ...], Definitions] = {_environment(): defs}


def current_definitions() -> Definitions:
    """The definitions for the current ``GHTRADER_*`` environment, built once per environment.

    :data:`defs` is built from the environment at import; a process that changes the
    environment afterwards (a benchmark, a test) gets definitions that match it. The day
    runner loads them *before* forking its workers, so a worker starts with the code
    location in memory instead of importing and building it again for every run.
    """
    key = _environment()
    if key not in _built:
        _built[key] = build_definitions()
    return _built[key]


def ingest_job():
    """The ingest job for the current environment, as a module-level function so Dagster
    can reconstruct it in other processes (``reconstructable(ingest_job)``)."""
    return current_definitions().resolve_job_def(INGEST_JOB)

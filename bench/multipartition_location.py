"""Prototype code location for the comparison in ``bench/overhead.py --partitioning``.

The same chain (roll schedule -> ticks + validation summary with the nine checks ->
manifest) as *one* set of assets partitioned by symbol x trading day
(``MultiPartitionsDefinition``), instead of one chain per symbol. The steps do the real work
(simulate, validate, write to the embedded store) so a run's CPU compares with the
per-symbol chain; lineage details the real assets add (manifests' JSON, metrics table) are
left out, so this prototype is, if anything, cheaper per run than a full port would be.

Load with ``GHTRADER_UNIVERSE`` set, e.g. ``dagster asset materialize -m
multipartition_location --select '*' --partition 'SHFE.cu|2026-03-03'``.
"""

import datetime as dt
import warnings

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    Definitions,
    MaterializeResult,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    in_process_executor,
    multi_asset,
)
from dagster._utils.warnings import PreviewWarning

from ghtrader_assets.config import Settings
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.schema import ROLL_SCHEDULE, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.validation import CHECKS, ValidationConfig, drop_exact_duplicates, validate_day

settings = Settings.from_env()
SYMBOLS = {f"{s.exchange}.{s.product}": s for s in settings.universe}
partitions = MultiPartitionsDefinition(
    {
        "symbol": StaticPartitionsDefinition(sorted(SYMBOLS)),
        "day": trading_day_partitions(settings.start_date, settings.close_time),
    }
)
ROLL, TICKS_KEY, SUMMARY, MANIFEST = (
    AssetKey(n) for n in ("roll_schedule", "ticks", "validation_summary", "manifest")
)


def _key(context: AssetExecutionContext):
    keys = context.partition_key.keys_by_dimension
    return SYMBOLS[keys["symbol"]], keys["day"]


def _store() -> EmbeddedStore:
    return EmbeddedStore(settings.store_dir)


@asset(key=ROLL, partitions_def=partitions, pool=settings.source)
def roll_schedule(context: AssetExecutionContext) -> MaterializeResult:
    from ghtrader_assets.assets.ingest import roll_frame

    symbol, day = _key(context)
    entry = SimulatedSource().roll_entry(symbol, dt.date.fromisoformat(day))
    frame = roll_frame(symbol, day, entry.underlying, entry.source)
    _store().write_partition(ROLL_SCHEDULE, symbol.raw, day, frame)
    return MaterializeResult(metadata={"underlying": entry.underlying})


with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    CHECK_SPECS = [
        AssetCheckSpec(c.name, asset=TICKS_KEY, blocking=c.blocking, partitions_def=partitions)
        for c in CHECKS
    ]


@multi_asset(
    outs={
        "ticks": AssetOut(key=TICKS_KEY, is_required=False),
        "validation_summary": AssetOut(key=SUMMARY, is_required=False),
    },
    deps=[ROLL],
    check_specs=CHECK_SPECS,
    partitions_def=partitions,
    can_subset=True,
    pool=settings.source,
)
def ticks_and_validation(context: AssetExecutionContext):
    from ghtrader_assets.assets.ingest import DayIngest, check_results

    symbol, day = _key(context)
    source = SimulatedSource()
    entry = source.roll_entry(symbol, dt.date.fromisoformat(day))
    ticks, dropped = drop_exact_duplicates(source.ticks(entry))
    result = validate_day(ticks, symbol, dt.date.fromisoformat(day), ValidationConfig.from_env())
    summary = result.summary.assign(underlying=entry.underlying, source=entry.source)
    store = _store()
    store.write_partition(TICKS, symbol.raw, day, ticks)
    store.write_partition(VALIDATION_SUMMARY, symbol.raw, day, summary)
    yield MaterializeResult(asset_key=TICKS_KEY, metadata={"rows": len(ticks)})
    yield MaterializeResult(
        asset_key=SUMMARY, metadata={"gap_count": int(summary.at[0, "gap_count"])}
    )
    selected = {k.name for k in context.selected_asset_check_keys}
    yield from check_results(
        TICKS_KEY, [DayIngest(day, ticks, result, summary, 0.0, dropped)], selected
    )


@asset(key=MANIFEST, partitions_def=partitions, deps=[SUMMARY])
def manifest(context: AssetExecutionContext) -> MaterializeResult:
    symbol, day = _key(context)
    summary = _store().read_partition(VALIDATION_SUMMARY, symbol.raw, day)
    return MaterializeResult(metadata={"rows": int(summary.at[0, "rows"])})


defs = Definitions(
    assets=[roll_schedule, ticks_and_validation, manifest], executor=in_process_executor
)

"""Prototype code location for ``bench/overhead.py --steps``: does fusing steps pay?

Per symbol, the same work (roll entry, simulate, validate with the nine checks, write ticks
and summary, read back the summary for the manifest) either as three steps like the real
chain (roll schedule -> ticks + summary -> manifest) or as one step that materializes all
four assets (``GHTRADER_BENCH_FUSED=1``). Both write through the store directly (no IO
manager), so the difference is Dagster's cost per step.
"""

import datetime as dt
import os
import warnings

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    Definitions,
    MaterializeResult,
    asset,
    in_process_executor,
    multi_asset,
)
from dagster._utils.warnings import PreviewWarning

from ghtrader_assets.assets.ingest import DayIngest, check_results, roll_frame
from ghtrader_assets.config import Settings
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.schema import ROLL_SCHEDULE, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.validation import CHECKS, ValidationConfig, drop_exact_duplicates, validate_day

settings = Settings.from_env()
partitions = trading_day_partitions(settings.start_date, settings.close_time)
FUSED = os.environ.get("GHTRADER_BENCH_FUSED") == "1"
#: ``GHTRADER_BENCH_ONE_CHECK=1``: one check per day whose metadata holds the nine outcomes,
#: instead of nine checks (what recording less per symbol-day would save).
ONE_CHECK = os.environ.get("GHTRADER_BENCH_ONE_CHECK") == "1"


def _keys(symbol):
    return [
        AssetKey([symbol.exchange, f"{symbol.product}_{n}"])
        for n in ("roll_schedule", "ticks", "validation_summary", "manifest")
    ]


def _checks(ticks_key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        if ONE_CHECK:
            return [AssetCheckSpec("validation", asset=ticks_key, partitions_def=partitions)]
        return [
            AssetCheckSpec(c.name, asset=ticks_key, blocking=c.blocking, partitions_def=partitions)
            for c in CHECKS
        ]


def _results(ticks_key, ingest):
    results = list(check_results(ticks_key, [ingest], {c.name for c in CHECKS}))
    if not ONE_CHECK:
        yield from results
        return
    yield AssetCheckResult(
        asset_key=ticks_key,
        check_name="validation",
        passed=all(r.passed for r in results),
        metadata={str(r.check_name): "passed" if r.passed else "failed" for r in results},
    )


def _roll(symbol, day: str):
    entry = SimulatedSource().roll_entry(symbol, dt.date.fromisoformat(day))
    frame = roll_frame(symbol, day, entry.underlying, entry.source)
    EmbeddedStore(settings.store_dir).write_partition(ROLL_SCHEDULE, symbol.raw, day, frame)
    return entry


def _ticks(symbol, day: str, entry):
    source = SimulatedSource()
    ticks, dropped = drop_exact_duplicates(source.ticks(entry))
    result = validate_day(ticks, symbol, dt.date.fromisoformat(day), ValidationConfig.from_env())
    summary = result.summary.assign(underlying=entry.underlying, source=entry.source)
    store = EmbeddedStore(settings.store_dir)
    store.write_partition(TICKS, symbol.raw, day, ticks)
    store.write_partition(VALIDATION_SUMMARY, symbol.raw, day, summary)
    return DayIngest(day, ticks, result, summary, 0.0, dropped)


def _manifest_rows(symbol, day: str) -> int:
    summary = EmbeddedStore(settings.store_dir).read_partition(VALIDATION_SUMMARY, symbol.raw, day)
    return int(summary.at[0, "rows"])


def three_steps(symbol):
    roll_k, ticks_k, summary_k, manifest_k = _keys(symbol)

    @asset(key=roll_k, partitions_def=partitions, pool=settings.source)
    def roll_schedule(context: AssetExecutionContext):
        entry = _roll(symbol, context.partition_key)
        return MaterializeResult(metadata={"underlying": entry.underlying})

    @multi_asset(
        name=f"{symbol.key}_ticks",
        outs={"ticks": AssetOut(key=ticks_k), "validation_summary": AssetOut(key=summary_k)},
        deps=[roll_k],
        check_specs=_checks(ticks_k),
        partitions_def=partitions,
        pool=settings.source,
    )
    def ticks_and_validation(context: AssetExecutionContext):
        day = context.partition_key
        entry = SimulatedSource().roll_entry(symbol, dt.date.fromisoformat(day))
        ingest = _ticks(symbol, day, entry)
        yield MaterializeResult(asset_key=ticks_k, metadata={"rows": len(ingest.ticks)})
        yield MaterializeResult(asset_key=summary_k)
        yield from _results(ticks_k, ingest)

    @asset(key=manifest_k, partitions_def=partitions, deps=[summary_k])
    def manifest(context: AssetExecutionContext):
        return MaterializeResult(metadata={"rows": _manifest_rows(symbol, context.partition_key)})

    return [roll_schedule, ticks_and_validation, manifest]


def one_step(symbol):
    roll_k, ticks_k, summary_k, manifest_k = _keys(symbol)

    @multi_asset(
        name=f"{symbol.key}_chain",
        outs={
            "roll": AssetOut(key=roll_k),
            "ticks": AssetOut(key=ticks_k),
            "validation_summary": AssetOut(key=summary_k),
            "manifest": AssetOut(key=manifest_k),
        },
        internal_asset_deps={
            "roll": set(),
            "ticks": {roll_k},
            "validation_summary": {ticks_k},
            "manifest": {summary_k},
        },
        check_specs=_checks(ticks_k),
        partitions_def=partitions,
        pool=settings.source,
    )
    def chain(context: AssetExecutionContext):
        day = context.partition_key
        entry = _roll(symbol, day)
        yield MaterializeResult(asset_key=roll_k, metadata={"underlying": entry.underlying})
        ingest = _ticks(symbol, day, entry)
        yield MaterializeResult(asset_key=ticks_k, metadata={"rows": len(ingest.ticks)})
        yield MaterializeResult(asset_key=summary_k)
        yield from check_results(ticks_k, [ingest], {c.name for c in CHECKS})
        yield MaterializeResult(
            asset_key=manifest_k, metadata={"rows": _manifest_rows(symbol, day)}
        )

    return [chain]


build = one_step if FUSED else three_steps
defs = Definitions(
    assets=[a for s in settings.universe for a in build(s)], executor=in_process_executor
)

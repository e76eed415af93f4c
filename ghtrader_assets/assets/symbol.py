"""The per-symbol asset chain: roll schedule -> ticks (+ checks) -> validation summary -> manifest.

One factory call per main symbol of the universe; assets are keyed
``<EXCHANGE>/<product>/<asset>`` and grouped by exchange so the asset graph reads like the
market. Ticks and the validation summary come from one step, so validation runs in the same
pass as ingestion with no second read; selecting the summary alone recomputes it from
stored ticks (after a threshold change) without touching the source.
"""

import datetime as dt
import hashlib
import json
import time
import warnings
from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    DataVersion,
    Failure,
    MetadataValue,
    Output,
    PartitionsDefinition,
    asset,
    multi_asset,
)
from dagster._utils.warnings import BetaWarning, PreviewWarning

from ghtrader_assets.calendar import TZ
from ghtrader_assets.io_managers import SYMBOL_METADATA_KEY
from ghtrader_assets.manifest import build_manifest, manifest_json, manifest_path, write_json_atomic
from ghtrader_assets.metadata import column_schema, sample_table
from ghtrader_assets.resources import SourceResource, StoreResource
from ghtrader_assets.schema import MANIFESTS, ROLL_SCHEDULE, TICKS, VALIDATION_SUMMARY, conform
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import (
    CHECKS,
    ValidationConfig,
    drop_exact_duplicates,
    validate_day,
)

IO_MANAGER_KEY = "store_io_manager"


@dataclass(frozen=True)
class SymbolAssetKeys:
    """The asset keys of one symbol's chain."""

    roll_schedule: AssetKey
    ticks: AssetKey
    validation_summary: AssetKey
    manifest: AssetKey

    @classmethod
    def of(cls, symbol: MainSymbol) -> "SymbolAssetKeys":
        prefix = [symbol.exchange, symbol.product]
        return cls(
            *(
                AssetKey([*prefix, name])
                for name in ("roll_schedule", "ticks", "validation_summary", "manifest")
            )
        )


def day_start_utc(trading_day: str) -> pd.Timestamp:
    """Midnight of the trading day in Shanghai, as UTC: the designated ``ts`` of per-day rows."""
    return pd.Timestamp(trading_day).tz_localize(TZ).tz_convert("UTC")


def roll_frame(symbol: MainSymbol, trading_day: str, underlying: str, source: str) -> pd.DataFrame:
    """The one-row roll-schedule partition with a hash of the mapping it states."""
    digest = hashlib.sha256(f"{symbol.raw}|{trading_day}|{underlying}".encode()).hexdigest()[:16]
    row = {
        "symbol": symbol.raw,
        "trading_day": trading_day,
        "ts": day_start_utc(trading_day),
        "underlying": underlying,
        "source": source,
        "schedule_hash": digest,
    }
    return conform(pd.DataFrame([row]), ROLL_SCHEDULE)


def _with_lineage(summary: pd.DataFrame, underlying: str, source: str) -> pd.DataFrame:
    """Fill underlying/source from the roll schedule when the day had no ticks to tell."""
    out = summary.copy()
    for column, value in (("underlying", underlying), ("source", source)):
        if not str(out.at[0, column] or "").strip() or pd.isna(out.at[0, column]):
            out.at[0, column] = value
    return out


def build_symbol_assets(
    symbol: MainSymbol,
    partitions_def: PartitionsDefinition,
    *,
    pool: str,
) -> list[AssetsDefinition]:
    """The four daily-partitioned assets (and ticks checks) of one main symbol."""
    keys = SymbolAssetKeys.of(symbol)
    group = symbol.exchange
    meta = {SYMBOL_METADATA_KEY: symbol.raw}
    tags = {"ghtrader/exchange": symbol.exchange, "ghtrader/product": symbol.product}

    @asset(
        key=keys.roll_schedule,
        partitions_def=partitions_def,
        group_name=group,
        metadata=meta,
        tags=tags,
        io_manager_key=IO_MANAGER_KEY,
        pool=pool,
        kinds={"pandas"},
        description=f"Which real contract is main for {symbol.raw} on each trading day. Its data "
        "version is the mapping's hash, so a changed roll marks that day's ticks stale.",
    )
    def roll_schedule(
        context: AssetExecutionContext, source: SourceResource
    ) -> Output[pd.DataFrame]:
        day = dt.date.fromisoformat(context.partition_key)
        with source.open(symbol, day) as src:
            entry = src.roll_entry(symbol, day)
        frame = roll_frame(symbol, context.partition_key, entry.underlying, entry.source)
        digest = str(frame.at[0, "schedule_hash"])
        # Data versions are a Dagster beta feature; they are what turns a changed roll into
        # "upstream data changed" on the day's ticks, so we opt in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BetaWarning)
            return Output(
                frame,
                data_version=DataVersion(digest),
                metadata={
                    "underlying": entry.underlying,
                    "source": entry.source,
                    "schedule_hash": digest,
                },
            )

    # Partitioned checks are a Dagster preview feature, and the one that gives each trading
    # day its own check result in the UI (instead of only the latest), so we opt in.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        check_specs = [
            AssetCheckSpec(
                c.name,
                asset=keys.ticks,
                description=c.description,
                blocking=c.blocking,
                partitions_def=partitions_def,
            )
            for c in CHECKS
        ]

    @multi_asset(
        name=f"{symbol.key}_ticks",
        outs={
            "ticks": AssetOut(
                key=keys.ticks,
                io_manager_key=IO_MANAGER_KEY,
                group_name=group,
                metadata={**meta, "dagster/column_schema": column_schema(TICKS)},
                tags=tags,
                is_required=False,
                kinds={"pandas"},
                description=f"Main-contract L5 ticks of {symbol.raw} for one trading day (night "
                "session of the evening before included), validated in the same pass.",
            ),
            "validation_summary": AssetOut(
                key=keys.validation_summary,
                io_manager_key=IO_MANAGER_KEY,
                group_name=group,
                metadata={**meta, "dagster/column_schema": column_schema(VALIDATION_SUMMARY)},
                tags=tags,
                is_required=False,
                kinds={"pandas"},
                description=f"Coverage and field-quality figures of {symbol.raw} for one day. "
                "Materialize it alone to recompute from stored ticks after a threshold change.",
            ),
        },
        ins={"roll": AssetIn(keys.roll_schedule)},
        internal_asset_deps={
            "ticks": {keys.roll_schedule},
            "validation_summary": {keys.ticks},
        },
        check_specs=check_specs,
        partitions_def=partitions_def,
        can_subset=True,
        pool=pool,
    )
    def ticks_and_validation(
        context: AssetExecutionContext,
        roll: pd.DataFrame,
        source: SourceResource,
        store: StoreResource,
    ):
        trading_day = context.partition_key
        day = dt.date.fromisoformat(trading_day)
        if roll.empty:
            raise Failure(
                f"{symbol.raw} {trading_day}: no roll-schedule entry; materialize the roll schedule first"
            )
        underlying = str(roll.at[0, "underlying"])
        ingest = keys.ticks in context.selected_asset_keys
        figures: dict[str, float] = {}
        if ingest:
            from ghtrader_assets.sources.base import RollEntry

            entry = RollEntry(symbol, day, underlying, str(roll.at[0, "source"]))
            started = time.perf_counter()
            with source.open(symbol, day) as src:
                raw = src.ticks(entry)
            figures["download_seconds"] = time.perf_counter() - started
            ticks, dropped = drop_exact_duplicates(raw)
        else:
            ticks = store.get_store().read_partition(TICKS, symbol.raw, trading_day)
            dropped = 0
        result = validate_day(
            ticks, symbol, day, ValidationConfig.from_env(), duplicates_dropped=dropped
        )
        summary = _with_lineage(result.summary, underlying, str(roll.at[0, "source"]))
        if ingest:
            seconds = max(figures["download_seconds"], 1e-9)
            yield Output(
                ticks,
                output_name="ticks",
                metadata={
                    "dagster/row_count": len(ticks),
                    "underlying": underlying,
                    "source": str(roll.at[0, "source"]),
                    "download_seconds": round(figures["download_seconds"], 4),
                    "rows_per_second": round(len(ticks) / seconds, 1),
                    "duplicates_dropped": dropped,
                    "gap_count": int(summary.at[0, "gap_count"]),
                    "validation_seconds": round(result.duration_seconds, 4),
                    "first_tick": str(ticks["ts"].min()) if len(ticks) else "",
                    "last_tick": str(ticks["ts"].max()) if len(ticks) else "",
                },
            )
        if keys.validation_summary in context.selected_asset_keys:
            yield Output(
                summary,
                output_name="validation_summary",
                metadata={
                    "dagster/row_count": len(ticks),
                    "gap_count": int(summary.at[0, "gap_count"]),
                    "validation_seconds": round(result.duration_seconds, 4),
                    "blocking_failures": ", ".join(result.blocking_failures) or "none",
                    "recomputed_from_store": not ingest,
                },
            )
        selected_checks = {k.name for k in context.selected_asset_check_keys}
        for outcome in result.checks:
            if outcome.name not in selected_checks:
                continue
            metadata: dict[str, object] = dict(outcome.metadata)
            if outcome.sample is not None and len(outcome.sample):
                metadata["sample"] = sample_table(outcome.sample)
            yield AssetCheckResult(
                asset_key=keys.ticks,
                check_name=outcome.name,
                passed=bool(outcome.passed),
                severity=AssetCheckSeverity(outcome.severity),
                description=outcome.description,
                metadata=metadata,
            )

    @asset(
        key=keys.manifest,
        partitions_def=partitions_def,
        group_name=group,
        metadata={**meta, "dagster/column_schema": column_schema(MANIFESTS)},
        tags=tags,
        io_manager_key=IO_MANAGER_KEY,
        ins={"summary": AssetIn(keys.validation_summary)},
        deps=[keys.ticks],
        kinds={"pandas", "json"},
        description=f"Lineage record of {symbol.raw} for one day: source, underlying, rows, "
        "first/last tick, schema hash, code version, check outcomes. Not written for a day "
        "whose blocking checks failed.",
    )
    def manifest(
        context: AssetExecutionContext, summary: pd.DataFrame, store: StoreResource
    ) -> Output[pd.DataFrame]:
        trading_day = context.partition_key
        if summary.empty:
            raise Failure(
                f"{symbol.raw} {trading_day}: no validation summary stored; materialize the ticks first"
            )
        row = summary.iloc[0]
        outcomes = json.loads(str(row["check_outcomes"]))
        blocked = sorted(n for n, o in outcomes.items() if o["blocking"] and not o["passed"])
        if blocked:
            raise Failure(
                f"{symbol.raw} {trading_day}: manifest not written because blocking checks failed: "
                f"{', '.join(blocked)}",
                metadata={"blocking_failures": ", ".join(blocked)},
            )
        frame = build_manifest(
            symbol=symbol.raw,
            trading_day=trading_day,
            day_start=day_start_utc(trading_day),
            underlying=str(row["underlying"]),
            source=str(row["source"]),
            rows=int(row["rows"]),
            first_tick=row["first_tick"] if pd.notna(row["first_tick"]) else None,
            last_tick=row["last_tick"] if pd.notna(row["last_tick"]) else None,
            check_outcomes=outcomes,
        )
        path = write_json_atomic(
            manifest_path(store.manifest_dir, symbol.key, trading_day), manifest_json(frame)
        )
        return Output(
            frame,
            metadata={
                "rows": int(row["rows"]),
                "schema_hash": str(frame.at[0, "schema_hash"]),
                "code_version": str(frame.at[0, "code_version"]),
                "checks_failed": int(frame.at[0, "checks_failed"]),
                "json": MetadataValue.path(str(path)),
            },
        )

    return [roll_schedule, ticks_and_validation, manifest]

"""The IO manager that stores asset outputs in the configured :class:`TickStore`.

Each partitioned asset maps to one table (by the last part of its asset key) and each
trading day to one partition of that table, written atomically and idempotently by the
store. An output spanning several partitions (a multi-day backfill run) is split by its
``trading_day`` column and written through the same store object, so a QuestDB store
sends the whole run through one sender in batches. Write figures (rows, bytes, seconds,
rows/s, location) are attached to the materialization so Dagster plots them.
"""

import time

import pandas as pd
from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
)

from ghtrader_assets.resources import StoreResource
from ghtrader_assets.schema import TableSpec, conform
from ghtrader_assets.stores.base import StoreError

#: Definition-metadata key naming the main symbol an asset belongs to.
SYMBOL_METADATA_KEY = "ghtrader/symbol"


def table_for(asset_name: str) -> TableSpec:
    """The table an asset (by the last part of its key) is stored in."""
    from ghtrader_assets import schema

    tables = {
        "roll_schedule": schema.ROLL_SCHEDULE,
        "ticks": schema.TICKS,
        "validation_summary": schema.VALIDATION_SUMMARY,
        "manifest": schema.MANIFESTS,
    }
    try:
        return tables[asset_name]
    except KeyError:
        raise StoreError(
            f"asset {asset_name!r} has no table: the store IO manager handles {sorted(tables)}"
        ) from None


class StoreIOManager(ConfigurableIOManager):
    """Reads and writes daily partitions of symbol tables through the store resource."""

    store: ResourceDependency[StoreResource]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        spec = table_for(context.asset_key.path[-1])
        symbol = self._symbol(context.definition_metadata, context.asset_key.to_user_string())
        days = list(context.asset_partition_keys) if context.has_asset_partitions else []
        if not days:
            raise StoreError(f"{spec.name}: the store IO manager only handles daily partitions")
        store = self.store.get_store()
        frame = conform(obj, spec)
        started = time.perf_counter()
        rows = nbytes = 0
        location = ""
        for day in days:
            part = frame[frame["trading_day"] == day] if len(days) > 1 else frame
            stats = store.write_partition(spec, symbol, day, part)
            rows += stats.rows
            nbytes += stats.bytes
            location = stats.location
        seconds = time.perf_counter() - started
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "write_seconds": round(seconds, 4),
                "write_rows_per_second": round(rows / seconds, 1) if seconds > 0 else 0.0,
                "bytes": nbytes,
                "write_mb_per_second": round(nbytes / 1e6 / seconds, 3) if seconds > 0 else 0.0,
                "store": store.kind,
                "location": MetadataValue.path(location) if store.kind == "embedded" else location,
            }
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        if upstream is None:
            raise StoreError("the store IO manager loads asset inputs only")
        spec = table_for(context.asset_key.path[-1])
        symbol = self._symbol(upstream.definition_metadata, context.asset_key.to_user_string())
        store = self.store.get_store()
        days = list(context.asset_partition_keys) if context.has_asset_partitions else []
        frames = [store.read_partition(spec, symbol, day) for day in days]
        if not frames:
            raise StoreError(f"{spec.name}: no partition to load for {symbol}")
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    @staticmethod
    def _symbol(metadata: object, asset: str) -> str:
        symbol = (metadata or {}).get(SYMBOL_METADATA_KEY) if isinstance(metadata, dict) else None
        if symbol is None and hasattr(metadata, "get"):
            symbol = metadata.get(SYMBOL_METADATA_KEY)  # type: ignore[union-attr]
        if hasattr(symbol, "value"):
            symbol = symbol.value
        if not isinstance(symbol, str):
            raise StoreError(f"asset {asset} has no {SYMBOL_METADATA_KEY!r} metadata")
        return symbol

"""The IO manager that stores asset outputs in the configured :class:`TickStore`.

Each partitioned asset maps to one table (by the last part of its asset key) and each
trading day to one partition of that table, written atomically and idempotently by the
store. An output spanning several partitions (a multi-day backfill run) is split by its
``trading_day`` column and written through the same store object, so a QuestDB store
sends the whole run through one sender in batches. Write figures (rows, bytes, seconds,
location; rows/s and MB/s for tables with many rows per day) are attached to the
materialization so Dagster plots them.

Manifests are also written as JSON files, here and only after the manifest's table write
succeeded: a JSON file never vouches for a day whose table row failed to land.
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
from ghtrader_assets.schema import MANIFESTS, TableSpec, conform, empty_frame
from ghtrader_assets.stores.base import StoreError

#: Definition-metadata key naming the main symbol an asset belongs to.
SYMBOL_METADATA_KEY = "ghtrader/symbol"


#: Definition-metadata key naming the table (a TableSpec name) an asset is stored in.
TABLE_METADATA_KEY = "ghtrader/table"


def table_for(metadata: object, asset: str) -> TableSpec:
    """The table an asset is stored in, named by its ``ghtrader/table`` metadata."""
    from ghtrader_assets.schema import all_tables

    name = _metadata_str(metadata, TABLE_METADATA_KEY)
    tables = {spec.name: spec for spec in all_tables()}
    if name not in tables:
        raise StoreError(
            f"asset {asset} names table {name!r} in its {TABLE_METADATA_KEY!r} metadata; "
            f"the store IO manager handles {sorted(tables)}"
        )
    return tables[name]


_LAYOUTS: dict[str, list[tuple[str, str]]] = {}


def conformed(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """``frame`` in the table's layout: as it is when it already has exactly the table's
    columns, order and dtypes (the ticks the pipeline built), else :func:`conform`-ed.

    Conforming a day of ticks again copies every column (about 10 ms per symbol-day);
    the store checks the values either way."""
    if spec.name not in _LAYOUTS:
        layout = conform(empty_frame(spec), spec).dtypes
        _LAYOUTS[spec.name] = [(str(n), str(t)) for n, t in layout.items()]
    have = [(str(n), str(t)) for n, t in frame.dtypes.items()]
    plain_index = isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    return frame if have == _LAYOUTS[spec.name] and plain_index else conform(frame, spec)


def _metadata_str(metadata: object, key: str) -> str | None:
    value = metadata.get(key) if hasattr(metadata, "get") else None  # type: ignore[union-attr]
    if hasattr(value, "value"):
        value = value.value
    return value if isinstance(value, str) else None


class StoreIOManager(ConfigurableIOManager):
    """Reads and writes daily partitions of symbol tables through the store resource."""

    store: ResourceDependency[StoreResource]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string()
        spec = table_for(context.definition_metadata, asset)
        symbol = self._symbol(context.definition_metadata, asset)
        days = list(context.asset_partition_keys) if context.has_asset_partitions else []
        if not days:
            raise StoreError(f"{spec.name}: the store IO manager only handles daily partitions")
        store = self.store.get_store()
        frame = conformed(obj, spec)
        started = time.perf_counter()
        rows = nbytes = 0
        location = ""
        json_paths = []
        manifests = []
        for day in days:
            part = frame[frame["trading_day"] == day] if len(days) > 1 else frame
            stats = store.write_partition(spec, symbol, day, part)
            rows += stats.rows
            nbytes += stats.bytes
            location = stats.location
            if spec.name == MANIFESTS.name and len(part):
                manifests.append((day, part))
        # The step's writes so far (this output's and any the step made itself) are
        # visible and verified before the step can succeed: a write the server lost fails
        # here, naming table, symbol and day. Manifest files vouch only for verified rows.
        store.settle()
        for day, part in manifests:
            json_paths.append(self._write_manifest_json(symbol, day, part))
        seconds = time.perf_counter() - started
        if json_paths:
            context.add_output_metadata({"json": MetadataValue.path(str(json_paths[-1]))})
        metadata: dict[str, object] = {
            "dagster/row_count": rows,
            "write_seconds": round(seconds, 4),
            "bytes": nbytes,
        }
        if rows > len(days):  # IO rates of a one-row-per-day table (summary, roll) mean nothing
            metadata["write_rows_per_second"] = round(rows / seconds, 1) if seconds > 0 else 0.0
            metadata["write_mb_per_second"] = (
                round(nbytes / 1e6 / seconds, 3) if seconds > 0 else 0.0
            )
        metadata["store"] = store.kind
        metadata["location"] = (
            MetadataValue.path(location) if store.kind == "embedded" else location
        )
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        if upstream is None:
            raise StoreError("the store IO manager loads asset inputs only")
        asset = context.asset_key.to_user_string()
        spec = table_for(upstream.definition_metadata, asset)
        symbol = self._symbol(upstream.definition_metadata, asset)
        store = self.store.get_store()
        days = list(context.asset_partition_keys) if context.has_asset_partitions else []
        frames = [store.read_partition(spec, symbol, day) for day in days]
        if not frames:
            raise StoreError(f"{spec.name}: no partition to load for {symbol}")
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def _write_manifest_json(self, symbol: str, day: str, frame: pd.DataFrame) -> str:
        """The day's manifest as JSON, after its table row was written."""
        from ghtrader_assets.manifest import manifest_json, manifest_path, write_json_atomic
        from ghtrader_assets.symbols import parse_main_symbol

        path = manifest_path(self.store.manifest_dir, parse_main_symbol(symbol).key, day)
        return str(write_json_atomic(path, manifest_json(frame.reset_index(drop=True))))

    @staticmethod
    def _symbol(metadata: object, asset: str) -> str:
        symbol = _metadata_str(metadata, SYMBOL_METADATA_KEY)
        if symbol is None:
            raise StoreError(f"asset {asset} has no {SYMBOL_METADATA_KEY!r} metadata")
        return symbol

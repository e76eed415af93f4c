"""What the Dagster UI shows a reader (issue 13, item 5): described columns, metadata keys
that say what and in which unit, no IO rates on one-row tables, explicit sampling."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pandera.pandas as pa
from dagster import TableSchema

from ghtrader_assets import calendar
from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.metadata import column_schema
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY, all_tables, schema_hash
from ghtrader_assets.symbols import parse_universe

(CU,) = parse_universe("KQ.m@SHFE.cu")
DAY = calendar.trading_days(pd.Timestamp("2026-03-03").date(), pd.Timestamp("2026-03-03").date())
DAY = DAY[0].isoformat()

#: The layouts data was stored with before columns had descriptions. A change here means
#: stored partitions and manifests no longer match: it must be a deliberate layout change.
STORED_HASHES = {
    "ticks_main_l5": "ce8cc570eda5a81a",
    "roll_schedule": "79425b6ef66c8ed5",
    "manifests": "b712e58d3f314268",
    "skip_ledger": "961992245ae5e4c7",
    "validation_summary": "43568286e9311e57",
    "validation_gaps": "d2659d3d82b99796",
    "ingest_metrics": "1953ae1bd1af046d",
}


def test_every_column_of_every_table_is_described():
    for spec in all_tables():
        for name, col in spec.schema.columns.items():
            assert col.description and len(col.description) > 15, (spec.name, name)
    assert len(VALIDATION_SUMMARY.columns) == 79
    ticks = TICKS.schema.columns
    assert "lots" in ticks["volume"].description and "CNY" in ticks["amount"].description
    assert "level 3" in ticks["ask_price3"].description
    summary = VALIDATION_SUMMARY.schema.columns
    assert "seconds" in summary["max_gap_seconds"].description
    assert "policy" in summary["verdict_policy"].description
    assert "crossed" not in summary["violations_bid_ladder"].description  # per rule, not generic


def test_descriptions_do_not_change_the_schema_hash():
    assert {spec.name: schema_hash(spec) for spec in all_tables()} == STORED_HASHES
    for spec in all_tables():
        reworded = {
            n: pa.Column(**{**c.properties, "description": f"reworded {n}"})
            for n, c in spec.schema.columns.items()
        }
        other = dataclasses.replace(
            spec, schema=pa.DataFrameSchema(reworded, strict=True, ordered=True, name=spec.name)
        )
        assert schema_hash(other) == schema_hash(spec), spec.name
    # ... while a layout change does change it (the hash is not blind).
    first, *rest = list(TICKS.schema.columns.items())
    renamed = {"symbol_renamed": first[1], **dict(rest)}
    changed = dataclasses.replace(TICKS, schema=pa.DataFrameSchema(renamed, name=TICKS.name))
    assert schema_hash(changed) != schema_hash(TICKS)


def test_assets_show_the_column_descriptions(tmp_path):
    defs = build_definitions(Settings(data_dir=tmp_path, universe=(CU,), start_date="2026-01-05"))
    graph = defs.resolve_asset_graph()
    keys = SymbolAssetKeys.of(CU)
    by_key = {
        keys.roll_schedule: "roll_schedule",
        keys.ticks: "ticks_main_l5",
        keys.validation_summary: "validation_summary",
        keys.manifest: "manifests",
    }
    specs = {spec.name: spec for spec in all_tables()}
    for key, table in by_key.items():
        shown = graph.get(key).metadata["dagster/column_schema"]
        schema = shown.schema if hasattr(shown, "schema") else shown
        assert isinstance(schema, TableSchema)
        spec = specs[table]
        assert [c.name for c in schema.columns] == spec.columns
        for column in schema.columns:
            assert column.description.startswith(spec.schema.columns[column.name].description)
    ts = {c.name: c for c in column_schema(TICKS).columns}
    assert "Row key (ts, symbol, id)" in ts["id"].description
    assert (
        ts["last_price"].constraints.nullable and "positive" in ts["last_price"].constraints.other
    )
    assert ts["symbol"].type == "string"


#: Numeric figures whose name is a count of things (the thing is the unit).
COUNTS = {
    "dagster/row_count",
    "days",
    "gap_count",
    "checks_failed",
    "tick_rows",
    "gaps_stored",
}
UNIT_SUFFIXES = ("_seconds", "_per_second", "bytes", "_ms", "_rows", "_fraction")


def test_materialization_metadata_names_its_units(tmp_path, instance):
    defects = {CU.raw: {DAY: {"gap": {"seconds": 12}}}}
    defs = build_definitions(
        Settings(data_dir=tmp_path, universe=(CU,), start_date="2026-01-05"),
        source=SourceResource(simulated_defects=defects),
    )
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        partition_key=DAY, instance=instance
    )
    assert result.success
    keys = SymbolAssetKeys.of(CU)
    mats = {
        m.asset_key: {k: v.value for k, v in m.metadata.items()}
        for node in ("SHFE__cu_roll_schedule", "SHFE__cu_ticks", "SHFE__cu_manifest")
        for m in result.asset_materializations_for_node(node)
    }
    assert set(mats) == set(SymbolAssetKeys.of(CU).__dict__.values())
    for key, meta in mats.items():
        for name, value in meta.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            assert name in COUNTS or name.endswith(UNIT_SUFFIXES), (key, name)
    ticks, summary = mats[keys.ticks], mats[keys.validation_summary]
    for meta in (ticks, summary):
        assert meta["max_gap_seconds"] >= 12 and "gap" not in meta
        assert meta["validation_sampled"] is False and meta["sample_fraction"] == 1.0
        assert "sampled" not in meta
    # IO rates only where a day has many rows: the ticks, not the one-row tables.
    assert ticks["write_rows_per_second"] > 0 and ticks["write_mb_per_second"] > 0
    for one_row in (keys.roll_schedule, keys.validation_summary, keys.manifest):
        assert not {"write_rows_per_second", "write_mb_per_second"} & set(mats[one_row])
        assert mats[one_row]["bytes"] > 0
    gaps = next(e for e in result.get_asset_check_evaluations() if e.check_name == "gaps")
    figures = {k: v.value for k, v in gaps.metadata.items()}
    assert figures["max_gap_seconds"] >= 12 and "gap" not in figures
    assert figures["gap_threshold"].startswith("warn>")  # thresholds keep the rule's name

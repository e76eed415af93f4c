"""The code location loads the way `dagster dev -w workspace.yaml` loads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.symbols import parse_universe

ROOT = Path(__file__).resolve().parent.parent


def test_workspace_loads_with_dagster_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GHTRADER_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ghtrader_assets" in proc.stdout + proc.stderr


def test_graph_shape_per_symbol(tmp_path):
    universe = tuple(parse_universe("KQ.m@SHFE.cu,KQ.m@CZCE.SR"))
    defs = build_definitions(Settings(data_dir=tmp_path, universe=universe))
    graph = defs.resolve_asset_graph()
    ticks = AssetKey(["SHFE", "cu_ticks"])
    assert graph.get(ticks).parent_keys == {AssetKey(["SHFE", "cu_roll_schedule"])}
    assert graph.get(AssetKey(["SHFE", "cu_validation_summary"])).parent_keys == {ticks}
    assert ticks in graph.get(AssetKey(["SHFE", "cu_manifest"])).parent_keys
    report = graph.get(AssetKey("coverage_report"))
    assert report.parent_keys == {
        AssetKey(["SHFE", "cu_manifest"]),
        AssetKey(["CZCE", "SR_manifest"]),
        AssetKey(["SHFE", "cu_validation_summary"]),
        AssetKey(["CZCE", "SR_validation_summary"]),
    }
    assert graph.get(ticks).group_name == "SHFE"
    assert graph.get(AssetKey(["CZCE", "SR_ticks"])).group_name == "CZCE"
    checks = {k.name for k in defs.resolve_assets_def(ticks).check_keys}
    assert {"field_quality", "duplicates", "gaps", "out_of_session"} <= checks
    job = defs.resolve_job_def(INGEST_JOB)
    keys = job.partitions_def.get_partition_keys()
    assert "2025-10-01" not in keys and "2025-10-09" in keys  # National Day holiday
    assert "2025-10-11" not in keys  # a Saturday


def test_markdown_tables_keep_symbols_from_becoming_mail_links():
    import pandas as pd

    from ghtrader_assets.metadata import markdown_table

    frame = pd.DataFrame({"symbol": ["KQ.m@SHFE.cu"], "rows": [3], "note": ["a|b"]})
    ui = markdown_table(frame)
    assert "| `KQ.m@SHFE.cu` | 3 | a\\|b |" in ui
    assert "| KQ.m@SHFE.cu | 3 | a\\|b |" in markdown_table(frame, for_ui=False)

"""Regression on real exchange ticks (April 2017, ``shared/realdata`` beside the repository).

``ghtrader import`` runs the ten real contract-days through Dagster exactly as a user would;
the test then asserts per day what was stored, which checks passed, warned or failed and
why, and whether a manifest was written. The files are read in place, never copied.

Expected outcome, and why (see README "Real vendor data"):

* every day stores its rows minus exact repeats (CZCE, SHFE) and, for CZCE, the one row
  stamped 23:29:59 on the trading day itself (left out, reported by ``out_of_session``);
* nine days earn a manifest: their warnings are vendor quirks and a quiet market (gaps
  across which nothing traded on the illiquid sn, empty half-seconds where the market did
  not move); event-driven CFFEX/CZCE streams pass cadence because their longer intervals
  carry less volume than their 500 ms ones (published on change, not thinned);
* SHFE.sn1705 2017-04-18 does not: at the day open the book updated every 500 ms until
  09:00:02, then nothing for 67 s, then a tick 250 yuan higher carrying 88 lots, more than
  any other tick of the day (p99 16): a hole in the feed, reported by ``gaps`` with its
  bounds and the volume that crossed it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ghtrader_assets.sources.base import RollEntry
from ghtrader_assets.sources.csv import CsvSource
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets.validation import drop_exact_duplicates, validate_day
from ghtrader_assets_tests.cli_process import IMPORT_DROPS, cli_env, run_ghtrader, symbol_rows


def find_realdata() -> Path | None:
    """``shared/realdata`` in the repository's parent or any folder above it."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "realdata"
        if candidate.is_dir():
            return candidate
    return None


REALDATA = find_realdata()
pytestmark = pytest.mark.skipif(
    REALDATA is None,
    reason="real exchange ticks not found: expected shared/realdata beside the repository "
    "(a folder above the checkout); they are never copied into it",
)

#: symbol, day, underlying, rows stored, checks failing at ERROR, at WARN, manifest
EXPECTED = [
    ("KQ.m@CFFEX.IF", "2017-04-20", "CFFEX.IF1704", 16120, set(),
     {"gaps", "outliers"}, True),
    ("KQ.m@CFFEX.IF", "2017-04-21", "CFFEX.IF1704", 9865, set(),
     {"gaps", "outliers"}, True),
    ("KQ.m@CZCE.CF", "2017-04-14", "CZCE.CF709", 20753, set(),
     {"duplicates", "gaps", "out_of_session", "outliers"}, True),
    ("KQ.m@DCE.pp", "2017-04-20", "DCE.pp1709", 21624, set(),
     {"gaps", "cadence", "outliers"}, True),
    ("KQ.m@DCE.pp", "2017-04-21", "DCE.pp1709", 20520, set(),
     {"gaps", "cadence", "outliers"}, True),
    ("KQ.m@SHFE.sn", "2017-04-14", "SHFE.sn1705", 17476, set(),
     {"nulls", "duplicates", "gaps", "cadence", "outliers"}, True),
    ("KQ.m@SHFE.sn", "2017-04-18", "SHFE.sn1705", 12108, {"gaps"},
     {"nulls", "duplicates", "outliers"}, False),
    ("KQ.m@SHFE.sn", "2017-04-19", "SHFE.sn1705", 16607, set(),
     {"nulls", "duplicates", "gaps", "outliers"}, True),
    ("KQ.m@SHFE.sn", "2017-04-20", "SHFE.sn1705", 16743, set(),
     {"nulls", "duplicates", "gaps", "cadence", "outliers"}, True),
    ("KQ.m@SHFE.sn", "2017-04-21", "SHFE.sn1705", 16018, set(),
     {"nulls", "duplicates", "gaps", "cadence", "outliers"}, True),
]  # fmt: skip


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``ghtrader import shared/realdata`` in a fresh process and data directory."""
    data = tmp_path_factory.mktemp("realdata")
    env = cli_env(drop=IMPORT_DROPS, GHTRADER_DATA_DIR=str(data))
    proc = run_ghtrader("import", str(REALDATA), "--workers", "2", env=env, cwd=data, timeout=900)
    return proc, data


def _store(data: Path):
    from ghtrader_assets.stores.embedded import EmbeddedStore

    return EmbeddedStore(data / "store")


def test_import_reports_every_day_and_exits_non_zero_for_the_defective_one(imported):
    proc, _ = imported
    assert "Traceback (most recent call last)" not in proc.stderr.split("dagster")[0]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = symbol_rows(proc.stdout)
    assert len(rows) == len(EXPECTED)
    table = {(r.split("|")[1].strip(), r.split("|")[2].strip()): r for r in rows}
    for symbol, day, _, stored, _, _, manifest in EXPECTED:
        line = table[(symbol, day)]
        assert f"| {stored} |" in line and line.rstrip().endswith("yes |" if manifest else "no |")


@pytest.mark.parametrize(
    "symbol, day, underlying, stored, errors, warnings, manifest",
    EXPECTED,
    ids=[f"{e[0]}-{e[1]}" for e in EXPECTED],
)
def test_each_real_day_stored_checked_and_certified(
    imported, symbol, day, underlying, stored, errors, warnings, manifest
):
    from ghtrader_assets.schema import MANIFESTS, TICKS, VALIDATION_SUMMARY

    _, data = imported
    store = _store(data)
    ticks = store.read_partition(TICKS, symbol, day)
    assert len(ticks) == stored
    assert (ticks["underlying"] == underlying).all() and ticks["id"].is_unique
    summary = store.read_partition(VALIDATION_SUMMARY, symbol, day)
    outcomes = json.loads(summary.at[0, "check_outcomes"])
    failed = {n for n, o in outcomes.items() if not o["passed"] and o["severity"] == "ERROR"}
    warned = {n for n, o in outcomes.items() if not o["passed"] and o["severity"] == "WARN"}
    assert (failed, warned) == (errors, warnings)
    has_manifest = not store.read_partition(MANIFESTS, symbol, day).empty
    sym = parse_main_symbol(symbol)
    json_file = data / "manifests" / f"{sym.exchange}_{sym.product}" / f"{day}.json"
    assert has_manifest is manifest and json_file.is_file() is manifest
    if manifest:
        written = json.loads(json_file.read_text())
        assert written["rows"] == stored and written["underlying"] == underlying


def _validate(symbol: str, day: str, underlying: str):
    src = CsvSource(REALDATA)
    sym = parse_main_symbol(symbol)
    entry = RollEntry(sym, dt.date.fromisoformat(day), underlying, "csv")
    ticks, dropped = drop_exact_duplicates(src.ticks(entry))
    return validate_day(
        ticks, sym, entry.trading_day, duplicates_dropped=dropped, excluded=src.left_out(entry)
    )


def test_the_blocking_gap_names_its_rows_and_why():
    """sn 2017-04-18: the metadata says which stretch, how long, what crossed it, why."""
    result = _validate("KQ.m@SHFE.sn", "2017-04-18", "SHFE.sn1705")
    gaps = result.check("gaps")
    assert not gaps.passed and gaps.severity == "ERROR" and gaps.blocking
    assert gaps.metadata["quiet_volume_per_tick"] == 16
    hole = gaps.sample[~gaps.sample["quiet"].astype(bool)].iloc[0]
    assert str(hole["start"]) == "2017-04-18 09:00:03+08:00"
    assert str(hole["end"]) == "2017-04-18 09:01:10+08:00"
    assert hole["seconds"] == 67 and hole["volume_across"] == 88
    # the other long silences of the night were quiet: reported, never blocking
    assert gaps.metadata["quiet_gaps_over_threshold"] == gaps.metadata["gaps_over_threshold"] - 1
    assert "holes in the session" in gaps.description


def test_the_misdated_czce_row_is_reported_with_file_and_line():
    result = _validate("KQ.m@CZCE.CF", "2017-04-14", "CZCE.CF709")
    oos = result.check("out_of_session")
    assert oos.severity == "WARN" and oos.metadata["misdated_rows_left_out"] == 1
    row = oos.sample.iloc[0]
    assert row["file"].endswith("CZCE.CF709_20170414_tick.csv.gz")
    assert row["datetime"].startswith("2017-04-14 23:29:59") and row["belongs_to"] == "2017-04-17"
    # the vendor's pre-open snapshots (19:31 the evening before) are snapshots, not trades
    assert oos.metadata["off_session_snapshots"] > 0 and oos.metadata["out_of_session_ticks"] == 0


def test_quiet_half_seconds_and_exact_repeats_do_not_block():
    pp = _validate("KQ.m@DCE.pp", "2017-04-21", "DCE.pp1709")
    cadence = pp.check("cadence")
    assert cadence.severity == "WARN" and cadence.metadata["missing_half_seconds_quiet"] == 1
    assert cadence.metadata["long_interval_volume_ratio"] < 1.0
    cf = _validate("KQ.m@CZCE.CF", "2017-04-14", "CZCE.CF709")
    assert cf.check("cadence").metadata["timestamp_resolution_seconds"] == 1
    assert cf.check("duplicates").metadata["duplicates_dropped"] == 18
    assert not pd.isna(cf.summary.at[0, "rows"])

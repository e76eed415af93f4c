"""``ghtrader import DIR``: discovery from the files, the derived roll schedule, and bad
files refused with file/line/column before anything is stored."""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ghtrader_assets.importer import derive_roll, scan
from ghtrader_assets.sources.base import RollEntry
from ghtrader_assets.sources.csv import write_downloader_csv, write_roll_schedule
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets_tests.cli_process import IMPORT_DROPS, cli_env, run_ghtrader, symbol_rows

CU = parse_main_symbol("KQ.m@SHFE.cu")
M = parse_main_symbol("KQ.m@DCE.m")
DAY = dt.date(2026, 1, 7)
NEXT = dt.date(2026, 1, 8)


def _day(symbol, day: dt.date, contract: str | None = None, oi_shift: float = 0.0):
    src = SimulatedSource(seed=11)
    entry = src.roll_entry(symbol, day)
    frame = src.ticks(entry)
    contract = contract or entry.underlying
    frame = frame.assign(underlying=contract, open_interest=frame["open_interest"] + oi_shift)
    return contract, frame


def _gz(frame: pd.DataFrame, path: Path) -> None:
    plain = path.with_name(path.name.removesuffix(".gz"))
    write_downloader_csv(frame, plain)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()


@pytest.fixture()
def folder(tmp_path) -> Path:
    """A download folder: cu per-day gz files of two contracts (the far one with less open
    interest), an m many-day file, names as a user chose them."""
    root = tmp_path / "downloads"
    for day in (DAY, NEXT):
        near, frame = _day(CU, day)
        _gz(frame, root / "cu" / f"{near}_{day:%Y%m%d}_tick.csv.gz")
        far = near[:-2] + f"{int(near[-2:]) + 1:02d}"
        _, other = _day(CU, day, far, oi_shift=-50_000)
        _gz(other, root / "cu" / f"{far}_{day:%Y%m%d}_tick.csv.gz")
    m1, d1 = _day(M, DAY)
    _, d2 = _day(M, NEXT, m1)
    write_downloader_csv(pd.concat([d1, d2]), root / "dce" / f"{m1}_all.csv")
    return root


def test_scan_finds_contract_days_from_the_files(folder):
    (folder / "klines.csv").write_text("datetime,SHFE.cu2602.open,SHFE.cu2602.close\n1,2,3\n")
    facts, errors, skipped = scan(folder)
    assert errors == [] and skipped == [folder / "klines.csv"]
    days = {(f.contract.split(".")[1][:2], f.trading_day) for f in facts}
    assert {d for _, d in days} == {DAY.isoformat(), NEXT.isoformat()}
    assert len(facts) == 6  # 2 cu contracts x 2 days + 1 m contract x 2 days
    assert all(f.rows > 0 for f in facts)


def test_derived_roll_picks_the_largest_open_interest(folder):
    facts, _, _ = scan(folder)
    entries = derive_roll(facts)
    by = {(e.symbol.raw, e.trading_day): e.underlying for e in entries}
    near = SimulatedSource(seed=11).roll_entry(CU, DAY).underlying
    assert by[(CU.raw, DAY)] == near and by[(CU.raw, NEXT)] == near
    assert {s for s, _ in by} == {CU.raw, M.raw}
    assert len(entries) == 4


def _ghtrader(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(drop=IMPORT_DROPS, GHTRADER_DATA_DIR=str(data))
    return run_ghtrader(*args, env=env, cwd=data.parent, timeout=600)


def test_import_materializes_then_refuses_a_bad_folder_without_touching_the_store(folder, tmp_path):
    data = tmp_path / "data"
    first = _ghtrader(data, "import", str(folder), "--workers", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "roll schedule: derived" in out and "[2/2]" in out
    rows = symbol_rows(out)
    assert len(rows) == 4 and all(line.rstrip().endswith("| yes |") for line in rows)
    store = data / "store"
    before = {p: p.read_bytes() for p in store.rglob("*.parquet")}
    assert any("symbol=SHFE_cu" in str(p) for p in before)

    # a GBK byte in one row of one new file: the whole import is refused up front
    bad = folder / "cu" / "SHFE.cu2612_20260109_tick.csv"
    _, frame = _day(CU, dt.date(2026, 1, 9), "SHFE.cu2612")
    write_downloader_csv(frame, bad)
    lines = bad.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b",", ",".join(["", "\xb2\xe2"]).encode("latin-1"), 1)
    bad.write_bytes(b"\n".join(lines))
    second = _ghtrader(data, "import", str(folder))
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"bad file: {bad}, line 5" in second.stdout and "not UTF-8" in second.stdout
    assert "nothing was imported" in second.stderr and "Traceback" not in second.stderr
    after = {p: p.read_bytes() for p in store.rglob("*.parquet")}
    assert after == before


def test_import_uses_the_folders_own_roll_schedule(folder, tmp_path):
    facts, _, _ = scan(folder)
    far = sorted({f.contract for f in facts if ".cu" in f.contract})[1]
    write_roll_schedule([RollEntry(CU, DAY, far, "csv")], folder)
    data = tmp_path / "data"
    proc = _ghtrader(data, "import", str(folder), "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"roll schedule: {folder / 'roll_schedule.csv'} (1 symbol-days)" in proc.stdout
    rows = symbol_rows(proc.stdout)
    assert len(rows) == 1 and f"| {far} |" in rows[0]


def test_import_of_an_empty_or_missing_folder_is_one_line(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "nowhere"):
        proc = _ghtrader(data, "import", str(target))
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr

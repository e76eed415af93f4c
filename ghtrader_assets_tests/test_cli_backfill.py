"""``ghtrader backfill``: the plan (days, symbols, listing), progress, summary, exit codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ghtrader_assets.backfill import BackfillError, parse_day, parse_symbols, plan_backfill
from ghtrader_assets.cli import main
from ghtrader_assets.config import Settings
from ghtrader_assets.runner import RunsStalledError
from ghtrader_assets.sources.csv import write_downloader_csv, write_roll_schedule
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets_tests.cli_process import cli_env, run_ghtrader, symbol_rows

NOW = pd.Timestamp("2026-11-30 20:00", tz="Asia/Shanghai")


def _settings(universe: str, start: str = "2025-01-02") -> Settings:
    return Settings.from_env({"GHTRADER_UNIVERSE": universe, "GHTRADER_START_DATE": start})


def test_plan_lists_trading_days_per_symbol():
    settings = _settings("KQ.m@SHFE.cu,KQ.m@DCE.m")
    plan = plan_backfill(
        settings, settings.universe, dt.date(2025, 9, 29), dt.date(2025, 10, 10), now=NOW
    )
    # National Day: 2025-10-01..08 are holidays
    assert list(plan.days) == ["2025-09-29", "2025-09-30", "2025-10-09", "2025-10-10"]
    assert all(s == ("KQ.m@SHFE.cu", "KQ.m@DCE.m") for s in plan.days.values())
    assert plan.symbol_days == 8


def test_days_before_a_listing_are_not_work():
    """GFEX.lc (lithium carbonate) listed 2023-07-21: earlier days are skipped, with why."""
    settings = _settings("KQ.m@GFEX.lc,KQ.m@SHFE.cu", start="2023-07-01")
    plan = plan_backfill(
        settings, settings.universe, dt.date(2023, 7, 19), dt.date(2023, 7, 24), now=NOW
    )
    assert plan.days["2023-07-19"] == ("KQ.m@SHFE.cu",)
    assert plan.days["2023-07-24"] == ("KQ.m@GFEX.lc", "KQ.m@SHFE.cu")
    skipped = {(s, d) for s, d, _ in plan.skipped}
    assert ("KQ.m@GFEX.lc", "2023-07-19") in skipped
    assert "not listed" in plan.skipped[0][2]


@pytest.mark.parametrize(
    "symbols, start, end, message",
    [
        ("KQ.m@SHFE.zn", "2025-03-03", "2025-03-04", "not in GHTRADER_UNIVERSE"),
        ("KQ.m@SHFE.cu", "2025-03-04", "2025-03-03", "before --start"),
        ("KQ.m@SHFE.cu", "2024-03-04", "2024-03-05", "before GHTRADER_START_DATE"),
        ("KQ.m@SHFE.cu", "2027-03-04", "2027-03-05", "after the last completed trading day"),
        ("KQ.m@SHFE.cu", "2025-03-08", "2025-03-09", "no trading day"),
    ],
)
def test_bad_requests_are_named(symbols, start, end, message):
    settings = _settings("KQ.m@SHFE.cu")
    with pytest.raises(BackfillError, match=message):
        chosen = parse_symbols(symbols, settings)
        plan_backfill(
            settings, chosen, parse_day(start, "--start"), parse_day(end, "--end"), now=NOW
        )


def test_bad_date_is_named():
    with pytest.raises(BackfillError, match="--start='2025-13-01' is not a date"):
        parse_day("2025-13-01", "--start")


def _ghtrader(tmp_path: Path, env_extra: dict[str, str], *args: str):
    env = cli_env(
        GHTRADER_DATA_DIR=str(tmp_path / "data"), GHTRADER_START_DATE="2025-01-02", **env_extra
    )
    return run_ghtrader(*args, env=env, cwd=tmp_path, timeout=600)


def test_backfill_runs_days_prints_progress_and_summary(tmp_path):
    proc = _ghtrader(
        tmp_path,
        {"GHTRADER_UNIVERSE": "KQ.m@SHFE.cu,KQ.m@DCE.m"},
        "backfill",
        "--symbols",
        "KQ.m@SHFE.cu",
        "--start",
        "2025-03-03",
        "--end",
        "2025-03-04",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[1/2]" in out and "[2/2]" in out
    rows = symbol_rows(out)
    assert len(rows) == 2 and all("KQ.m@SHFE.cu" in r for r in rows)
    assert all(r.rstrip().endswith("| yes |") and "| ok |" in r for r in rows)


def test_backfill_exits_non_zero_when_a_day_fails(tmp_path):
    """A csv root with the roll schedule for two days but ticks for one: the missing day's
    run fails, the summary says so, the exit code is 1."""
    cu = parse_main_symbol("KQ.m@SHFE.cu")
    src = SimulatedSource(seed=2)
    root = tmp_path / "csv"
    entries = [src.roll_entry(cu, dt.date(2025, 3, d)) for d in (3, 4)]
    write_roll_schedule(entries, root)
    write_downloader_csv(src.ticks(entries[0]), root / entries[0].underlying / "2025-03-03.csv")
    proc = _ghtrader(
        tmp_path,
        {
            "GHTRADER_UNIVERSE": "KQ.m@SHFE.cu",
            "GHTRADER_SOURCE": "csv",
            "GHTRADER_CSV_DIR": str(root),
        },
        "backfill",
        "--start",
        "2025-03-03",
        "--end",
        "2025-03-04",
        "--workers",
        "1",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {line.split("|")[2].strip(): line for line in symbol_rows(proc.stdout)}
    assert "| ok |" in rows["2025-03-03"] and rows["2025-03-03"].rstrip().endswith("| yes |")
    assert "| FAILED |" in rows["2025-03-04"] and rows["2025-03-04"].rstrip().endswith("| no |")


def test_unknown_symbol_is_one_line_exit_2(tmp_path):
    proc = _ghtrader(
        tmp_path,
        {"GHTRADER_UNIVERSE": "KQ.m@SHFE.cu"},
        "backfill",
        "--symbols",
        "KQ.m@SHFE.zn",
        "--start",
        "2025-03-03",
        "--end",
        "2025-03-04",
    )
    assert proc.returncode == 2
    assert "KQ.m@SHFE.zn is not in GHTRADER_UNIVERSE" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (RunsStalledError("gave up after 3600 s without a finished run"), 1, "gave up after"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_a_stalled_or_interrupted_backfill_ends_in_one_line(
    tmp_path, monkeypatch, capsys, error, code, said
):
    import ghtrader_assets.backfill as backfill_module

    def raise_it(*_args, **_kwargs):
        raise error

    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setattr(backfill_module, "run_days", raise_it)
    rc = main(
        ["backfill", "--symbols", "KQ.m@SHFE.cu", "--start", "2026-03-02", "--end", "2026-03-03"]
    )
    err = capsys.readouterr().err
    assert rc == code and said in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"GHTRADER_SOURCE": "csv"}, "GHTRADER_CSV_DIR"),
        ({"GHTRADER_SOURCE": "tqsdk"}, "GHTRADER_TQ_USER and GHTRADER_TQ_PASSWORD"),
    ],
)
def test_a_source_without_its_settings_fails_before_any_run(
    tmp_path, monkeypatch, capsys, env, said
):
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    for name in ("DAGSTER_HOME", "GHTRADER_CSV_DIR", "GHTRADER_TQ_USER", "GHTRADER_TQ_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in (
        ["demo", "--days", "1"],
        ["backfill", "--start", "2026-03-02", "--end", "2026-03-02"],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists()  # nothing ran

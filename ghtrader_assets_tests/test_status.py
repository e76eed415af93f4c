"""``ghtrader status``: freshness, last check outcomes and ingestion rate per symbol."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import DagsterInstance

from ghtrader_assets import calendar
from ghtrader_assets.cli import main
from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.metrics import INGEST_RATE
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import METRICS
from ghtrader_assets.status import days_behind, freshness, status_table
from ghtrader_assets.symbols import parse_universe

CU, M, AG = parse_universe("KQ.m@SHFE.cu,KQ.m@DCE.m,KQ.m@SHFE.ag")
DAYS = ["2026-03-03", "2026-03-04"]
UNIVERSE = "KQ.m@SHFE.cu,KQ.m@DCE.m,KQ.m@SHFE.ag"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """SHFE.cu and DCE.m ingested on two days; DCE.m's last day has a crossed book."""
    data = tmp_path_factory.mktemp("status")
    source = SourceResource(simulated_defects={M.raw: {DAYS[-1]: {"crossed_book": True}}})
    defs = build_definitions(
        Settings(data_dir=data, universe=(CU, M), start_date=DAYS[0]), source=source
    )
    with DagsterInstance.ephemeral() as instance:
        for day in DAYS:
            defs.resolve_job_def(INGEST_JOB).execute_in_process(
                partition_key=day, instance=instance, raise_on_error=False
            )
    return data, defs.resources["store"].get_store()


def test_status_per_symbol(store_dir):
    _, store = store_dir
    now = pd.Timestamp("2026-03-06 16:00", tz=calendar.TZ)  # Friday after the close
    table = status_table(store, (CU, M, AG), now=now).set_index("symbol")
    behind = len(calendar.trading_days(dt.date(2026, 3, 5), dt.date(2026, 3, 6)))
    for sym in (CU, M):
        row = table.loc[sym.raw]
        assert row["last_day"] == DAYS[-1]
        assert row["days_behind"] == behind
        assert row["freshness"] == f"{behind} trading days behind"
        metrics = store.read_partition(METRICS, sym.raw, DAYS[-1]).set_index(["asset", "metric"])
        assert row["ingest_rows_per_second"] == metrics.at[("ticks", INGEST_RATE), "value"]
        assert (
            row["validation_seconds"]
            == metrics.at[("validation_summary", "validation_seconds"), "value"]
        )
    assert table.loc[CU.raw, "checks"] == "ok" and table.loc[CU.raw, "checks_failed"] == 0
    assert table.loc[M.raw, "checks"].startswith("error: ")
    assert "book_integrity" in table.loc[M.raw, "checks"]
    assert table.loc[M.raw, "checks_failed"] >= 1
    assert table.loc[AG.raw, "freshness"] == "no data"
    assert table.loc[AG.raw, "last_day"] == ""
    # The same day's close makes the last stored day fresh.
    fresh = status_table(store, (CU,), now=pd.Timestamp("2026-03-04 15:31", tz=calendar.TZ))
    assert fresh.at[0, "freshness"] == "fresh" and fresh.at[0, "days_behind"] == 0


def test_freshness_words():
    assert days_behind("2025-09-30", dt.date(2025, 10, 9)) == 1  # National Day in between
    assert freshness(None) == "no data"
    assert freshness(0) == "fresh"
    assert freshness(1) == "1 trading day behind"


def test_cli_status_prints_every_symbol(store_dir, monkeypatch, capsys):
    data, _ = store_dir
    monkeypatch.setenv("GHTRADER_UNIVERSE", UNIVERSE)
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    assert main(["--data-dir", str(data), "status"]) == 0
    out = capsys.readouterr().out
    lines = {
        line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| KQ")
    }
    assert set(lines) == {CU.raw, M.raw, AG.raw}
    assert DAYS[-1] in lines[CU.raw] and "no data" in lines[AG.raw]
    assert "book_integrity" in lines[M.raw]

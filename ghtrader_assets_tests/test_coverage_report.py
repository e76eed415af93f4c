"""The coverage report as users read it in the UI (issue 13.2).

A real table (typed schema, blocked days and the worst day first), expected and missing
days counted from ``GHTRADER_START_DATE`` as Dagster counts partitions, and one table of
pass / warn / blocked per recent trading day and symbol.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import AssetKey, TableMetadataValue
from dagster._core.test_utils import instance_for_test

from ghtrader_assets.config import Settings
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.partitions import trading_day_partitions
from ghtrader_assets.reports import REPORT_COLUMNS, coverage_report, recent_verdicts
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.sessions import listed_days
from ghtrader_assets.symbols import parse_universe

CU, SR = parse_universe("KQ.m@SHFE.cu,KQ.m@CZCE.SR")
START = "2026-09-01"


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """Three latest trading days of cu (the middle one defective), none of SR, then the
    coverage report: the instance, the definitions, the partition keys and the bad day."""
    tmp = tmp_path_factory.mktemp("coverage")
    keys = trading_day_partitions(START).get_partition_keys()
    days, bad = keys[-3:], keys[-2]
    source = SourceResource(simulated_defects={CU.raw: {bad: {"crossed_book": True}}})
    defs = build_definitions(
        Settings(data_dir=tmp, universe=(CU, SR), start_date=START), source=source
    )
    cu_keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "SHFE"]
    with instance_for_test() as instance:
        job = defs.resolve_job_def(INGEST_JOB)
        for day in days:
            job.execute_in_process(
                partition_key=day,
                instance=instance,
                asset_selection=cu_keys,
                raise_on_error=False,
            )
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[AssetKey("coverage_report")]
        )
        assert result.success
        mat = result.asset_materializations_for_node("coverage_report")[0]
        yield {
            "defs": defs,
            "keys": keys,
            "days": days,
            "bad": bad,
            "meta": mat.metadata,
            "tmp": tmp,
        }


def test_report_is_a_typed_table_with_attention_columns_first(materialized):
    report = materialized["meta"]["report"]
    assert isinstance(report, TableMetadataValue)
    names = [c.name for c in report.schema.columns]
    assert names[:3] == ["symbol", "blocking_failure_days", "worst_day"]
    assert {c.name: c.type for c in report.schema.columns}["missing_days"] == "int"
    details = materialized["meta"]["report_details"]
    assert isinstance(details, TableMetadataValue)
    # every report column is in one of the two tables, the symbol in both
    assert sorted({*names, *(c.name for c in details.schema.columns)}) == sorted(REPORT_COLUMNS)
    assert [c.name for c in details.schema.columns][0] == "symbol"
    rows = {r.data["symbol"]: r.data for r in report.records}
    cu = rows[CU.raw]
    assert cu["blocking_failure_days"] == 1
    assert cu["worst_day"].startswith(f"{materialized['bad']} blocked")
    assert rows[SR.raw]["blocking_failure_days"] == 0 and rows[SR.raw]["worst_day"] == ""


def test_expected_and_missing_days_count_from_the_start_date(materialized):
    keys = materialized["keys"]
    rows: dict[str, dict] = {}
    for table in ("report", "report_details"):
        for r in materialized["meta"][table].records:
            rows.setdefault(r.data["symbol"], {}).update(r.data)
    listed = listed_days("SHFE", "cu", [dt.date.fromisoformat(k) for k in keys])
    assert rows[CU.raw]["days_expected"] == len(listed) == len(keys)
    assert rows[CU.raw]["missing_days"] == len(keys) - 3
    assert rows[CU.raw]["days_behind"] == 0
    assert rows[SR.raw]["missing_days"] == rows[SR.raw]["days_expected"] == len(keys)
    assert rows[SR.raw]["days_behind"] == len(keys)
    assert materialized["meta"]["missing_days"].value == 2 * len(keys) - 3


def test_recent_days_table_shows_each_day_and_symbol(materialized):
    table = materialized["meta"]["recent_days"]
    assert isinstance(table, TableMetadataValue)
    assert [c.name for c in table.schema.columns] == ["trading_day", CU.raw, SR.raw]
    by_day = {r.data["trading_day"]: r.data for r in table.records}
    assert list(by_day) == sorted(materialized["keys"][-10:], reverse=True)  # newest first
    assert by_day[materialized["bad"]][CU.raw].startswith("blocked ")
    for day in materialized["days"]:
        if day != materialized["bad"]:
            assert by_day[day][CU.raw] in ("pass",) or by_day[day][CU.raw].startswith("warn")
        assert by_day[day][SR.raw] == "missing"
    older = materialized["keys"][-4]
    assert by_day[older][CU.raw] == "missing"
    assert materialized["meta"]["recent_blocked"].value == 1
    doc = json.loads((materialized["tmp"] / "reports" / "coverage.json").read_text())
    assert len(doc["recent_days"]) == 10


def test_not_listed_days_are_neither_expected_nor_missing(materialized):
    store = materialized["defs"].resources["store"].get_store()
    # CZCE LR stopped trading on 2025-01-27: nothing after is expected of it
    (lr,) = parse_universe("KQ.m@CZCE.LR")
    report = coverage_report(store, [lr], partition_keys=["2025-03-03", "2025-03-04"])
    assert report.at[0, "days_expected"] == 0 and report.at[0, "missing_days"] == 0
    recent = recent_verdicts(store, [lr], ["2025-03-03"])
    assert recent.at[0, lr.raw] == "-"


def test_cli_partition_keys_are_dagsters(monkeypatch):
    """``ghtrader coverage`` counts days without importing Dagster: the same keys."""
    from ghtrader_assets.cli import partition_keys

    settings = Settings(universe=(CU,), start_date="2025-01-02")
    assert partition_keys(settings) == trading_day_partitions("2025-01-02").get_partition_keys()

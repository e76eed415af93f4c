"""Run-overhead levers that live in the code: the IO manager writes a frame already in the
table's layout as it is, and conforms anything else exactly as before."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ghtrader_assets.io_managers import conformed
from ghtrader_assets.schema import TICKS, conform
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import parse_main_symbol

CU = parse_main_symbol("KQ.m@SHFE.cu")


@pytest.fixture(scope="module")
def ticks() -> pd.DataFrame:
    source = SimulatedSource()
    return source.ticks(source.roll_entry(CU, dt.date(2026, 3, 3)))


def test_ticks_in_the_table_layout_are_written_without_a_copy(ticks):
    assert conformed(ticks, TICKS) is ticks
    again = conform(ticks, TICKS)
    assert conformed(again, TICKS) is again


def test_any_other_layout_is_conformed_as_before(ticks):
    cases = {
        "reordered": ticks[list(reversed(ticks.columns))],
        "other dtype": ticks.assign(id=ticks["id"].astype("float64")),
        "shifted index": ticks.set_axis(ticks.index + 5),
        "missing optional column": ticks.drop(columns=["bid_price5"]),
    }
    for name, frame in cases.items():
        out = conformed(frame, TICKS)
        assert out is not frame, name
        pd.testing.assert_frame_equal(out, conform(frame, TICKS), obj=name)
        assert list(out.columns) == list(TICKS.schema.columns), name
    with pytest.raises(KeyError, match="'symbol'"):
        conformed(ticks.drop(columns=["symbol"]), TICKS)


def test_a_process_opens_its_dagster_instance_once_per_home(tmp_path, monkeypatch):
    """Runs executed by one worker share one instance (storages, schema checks); another
    ``$DAGSTER_HOME`` gets its own, and the previous one is closed."""
    from ghtrader_assets import runner

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    first_home = runner.ensure_dagster_home(tmp_path / "first")  # exports DAGSTER_HOME
    first = runner.process_instance()
    assert runner.process_instance() is first
    assert first.root_directory == str(first_home)
    monkeypatch.delenv("DAGSTER_HOME")
    runner.ensure_dagster_home(tmp_path / "second")
    second = runner.process_instance()
    assert second is not first and second.root_directory == str(tmp_path / "second")
    runner._dispose_process_instance()
    assert runner._INSTANCE is None

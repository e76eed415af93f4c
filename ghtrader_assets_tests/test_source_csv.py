"""CsvSource: DataDownloader format, layout, round trip, and errors naming file/line/column."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.schema import TICKS
from ghtrader_assets.sources.base import (
    MalformedInputError,
    NoDataError,
    RollEntry,
    SourceError,
    UnknownSymbolError,
)
from ghtrader_assets.sources.csv import (
    CsvSource,
    downloader_columns,
    synthetic_tick_ids,
    write_downloader_csv,
    write_roll_schedule,
)
from ghtrader_assets.sources.registry import make_source
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets_tests.csv_files import (
    CU,
    DAY,
    NEXT,
    assert_names,
    simulated_day,
    write_day_file,
)

M = parse_main_symbol("KQ.m@DCE.m")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _drop_column(path: Path, column: str) -> None:
    lines = _lines(path)
    drop = lines[0].split(",").index(column)
    _write_lines(
        path, [",".join(c for i, c in enumerate(ln.split(",")) if i != drop) for ln in lines]
    )


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    lines = _lines(path)
    col = lines[0].split(",").index(column)
    cells = lines[line - 1].split(",")
    cells[col] = value
    lines[line - 1] = ",".join(cells)
    _write_lines(path, lines)


# -- format ------------------------------------------------------------------------------


@pytest.mark.parametrize("contract", ["SHFE.cu2602", "INE.sc2603", "DCE.m2605", "CZCE.SR605"])
def test_header_matches_tqsdk_data_downloader(contract):
    from tqsdk.tools.downloader import DataDownloader

    downloader = object.__new__(DataDownloader)  # only the header logic, no TqApi
    downloader._dur_nano = 0
    downloader._symbol_list = [contract]
    assert downloader_columns(contract) == downloader._get_headers()


def test_written_file_uses_local_time_and_nanos(tmp_path, cu_day):
    entry, frame = cu_day
    path = tmp_path / "x.csv"
    write_downloader_csv(frame.iloc[:3], path)
    lines = _lines(path)
    assert lines[0].split(",") == downloader_columns(entry.underlying)
    first = lines[1].split(",")
    # the night session of 2026-01-07 opens at 21:00 Shanghai time on 2026-01-06
    assert first[0] == "2026-01-06 21:00:00.000000000"
    assert int(first[1]) == frame["datetime"].iloc[0]
    assert lines[2].split(",")[0] == "2026-01-06 21:00:00.500000000"


# -- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", [CU, M])
def test_simulated_day_round_trips_through_csv(tmp_path, symbol):
    entry, frame = simulated_day(symbol)
    write_day_file(tmp_path, entry, frame)
    src = make_source("csv", root=tmp_path)
    assert isinstance(src, CsvSource)
    got_entry = src.roll_entry(symbol, DAY)
    assert got_entry == RollEntry(symbol, DAY, entry.underlying, "csv")
    got = src.ticks(got_entry)
    TICKS.schema.validate(got)
    assert (got["source"] == "csv").all()
    pd.testing.assert_frame_equal(got.drop(columns="source"), frame.drop(columns="source"))


def test_level_one_file_has_no_depth_columns(tmp_path):
    entry, frame = simulated_day(M)
    path = tmp_path / "m.csv"
    write_downloader_csv(frame.iloc[:5], path)
    header = _lines(path)[0]
    assert "ask_volume1" in header and "bid_price2" not in header


def test_many_day_file_is_split_by_trading_day(tmp_path):
    entry1, day1 = simulated_day(CU, DAY)
    entry2, day2 = simulated_day(CU, NEXT)
    assert entry1.underlying == entry2.underlying
    write_downloader_csv(pd.concat([day1, day2]), tmp_path / f"{entry1.underlying}.csv")
    write_roll_schedule([entry1, entry2], tmp_path)
    src = CsvSource(tmp_path)
    for day, frame in ((DAY, day1), (NEXT, day2)):
        got = src.ticks(src.roll_entry(CU, day))
        pd.testing.assert_frame_equal(got.drop(columns="source"), frame.drop(columns="source"))
    outside = RollEntry(CU, dt.date(2026, 1, 12), entry1.underlying, "csv")
    with pytest.raises(NoDataError, match="2026-01-07..2026-01-08"):
        src.ticks(outside)


def test_missing_values_and_file_order(small_csv):
    src, entry, path = small_csv
    _set_cell(path, 3, f"{entry.underlying}.last_price", "#N/A")
    _set_cell(path, 4, f"{entry.underlying}.bid_price1", "")
    lines = _lines(path)
    lines[5], lines[6] = lines[6], lines[5]  # two ticks out of order
    lines.insert(8, "")  # a blank line is skipped
    _write_lines(path, lines)
    got = src.ticks(entry)
    assert np.isnan(got["last_price"].iloc[1]) and np.isnan(got["bid_price1"].iloc[2])
    assert got["ts"].is_monotonic_increasing and len(got) == 30
    np.testing.assert_array_equal(got["id"], synthetic_tick_ids(DAY, 30))


def test_synthetic_ids_are_monotone_across_days():
    a, b = synthetic_tick_ids(DAY, 100_000), synthetic_tick_ids(NEXT, 3)
    assert (np.diff(a) == 1).all() and a[-1] < b[0]


def test_write_rejects_mixed_contracts(tmp_path, cu_day):
    _, frame = cu_day
    mixed = frame.iloc[:4].copy()
    mixed.loc[2, "underlying"] = "SHFE.cu2603"
    with pytest.raises(ValueError, match="one file holds one contract"):
        write_downloader_csv(mixed, tmp_path / "x.csv")


# -- malformed tick files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["amount", "ask_volume3"], ids=["missing_column", "incomplete_depth_level"]
)
def test_a_missing_column_is_named(small_csv, field):
    src, entry, path = small_csv
    _drop_column(path, f"{entry.underlying}.{field}")
    with pytest.raises(MalformedInputError) as err:
        src.ticks(entry)
    assert_names(err, path, 1, f"{entry.underlying}.{field}")


@pytest.mark.parametrize(
    "line, field, value",
    [(5, "bid_price1", "abc"), (2, "last_price", "1O.5"), (31, "open_interest", "--")],
)
def test_bad_number_names_file_line_and_column(small_csv, line, field, value):
    src, entry, path = small_csv
    column = f"{entry.underlying}.{field}"
    _set_cell(path, line, column, value)
    with pytest.raises(MalformedInputError, match=re.escape(repr(value))) as err:
        src.ticks(entry)
    assert_names(err, path, line, column)


def test_bad_number_after_a_blank_line_reports_the_physical_line(small_csv):
    src, entry, path = small_csv
    lines = _lines(path)
    lines.insert(3, "")
    _write_lines(path, lines)
    _set_cell(path, 10, f"{entry.underlying}.ask_price1", "x1")
    with pytest.raises(MalformedInputError) as err:
        src.ticks(entry)
    assert_names(err, path, 10, f"{entry.underlying}.ask_price1")


def test_missing_datetime_nano_names_it(small_csv):
    src, entry, path = small_csv
    _set_cell(path, 7, "datetime_nano", "")
    with pytest.raises(MalformedInputError) as err:
        src.ticks(entry)
    assert_names(err, path, 7, "datetime_nano")


def test_wrong_contract_names_the_column(small_csv):
    src, entry, path = small_csv
    lines = _lines(path)
    lines[0] = lines[0].replace(entry.underlying, "SHFE.cu2609")
    _write_lines(path, lines)
    with pytest.raises(MalformedInputError, match=entry.underlying) as err:
        src.ticks(entry)
    assert_names(err, path, 1, "SHFE.cu2609.last_price")


@pytest.mark.parametrize("value", ["2026-01-06 25:00:00.000000000", "yesterday", ""])
def test_unparsable_datetime_names_line_and_column(small_csv, value):
    src, entry, path = small_csv
    _set_cell(path, 12, "datetime", value)
    with pytest.raises(MalformedInputError) as err:
        src.ticks(entry)
    assert_names(err, path, 12, "datetime")


def test_datetime_disagreeing_with_nanos_is_rejected(small_csv):
    src, entry, path = small_csv
    _set_cell(path, 9, "datetime", "2026-01-06 22:00:00.000000000")
    with pytest.raises(MalformedInputError, match="does not match datetime_nano") as err:
        src.ticks(entry)
    assert_names(err, path, 9, "datetime")


@pytest.mark.parametrize("cut", [-2, 2], ids=["short", "long"])
def test_ragged_line_names_the_line(small_csv, cut):
    src, entry, path = small_csv
    lines = _lines(path)
    cells = lines[14].split(",")
    lines[14] = ",".join(cells[:cut] if cut < 0 else cells + ["1.0"] * cut)
    _write_lines(path, lines)
    with pytest.raises(MalformedInputError, match=f"saw {len(cells) + cut}$") as err:
        src.ticks(entry)
    assert_names(err, path, 15, None)


def test_empty_file_and_header_only(small_csv):
    src, entry, path = small_csv
    path.write_text("")
    with pytest.raises(MalformedInputError, match="empty file"):
        src.ticks(entry)
    _write_lines(path, [",".join(downloader_columns(entry.underlying))])
    got = src.ticks(entry)
    assert got.empty and list(got.columns) == TICKS.columns


def test_tick_of_another_day_in_a_day_file_is_rejected(small_csv, cu_day):
    src, entry, path = small_csv
    _, later = simulated_day(CU, NEXT)
    frame = pd.concat([cu_day[1].iloc[:30], later.iloc[:1]])
    write_downloader_csv(frame, path)
    with pytest.raises(MalformedInputError, match="belongs to trading day 2026-01-08") as err:
        src.ticks(entry)
    assert_names(err, path, 32, "datetime_nano")


def test_missing_tick_file_is_no_data(small_csv):
    src, entry, path = small_csv
    path.unlink()
    with pytest.raises(NoDataError, match=re.escape(str(path))):
        src.ticks(entry)


# -- roll schedule -------------------------------------------------------------------------


def test_roll_entry_for_a_day_not_listed_names_symbol_and_day(small_csv):
    src, _, _ = small_csv
    with pytest.raises(NoDataError, match=r"KQ\.m@SHFE\.cu: no roll entry for 2026-01-09"):
        src.roll_entry(CU, dt.date(2026, 1, 9))


def test_symbol_not_in_roll_schedule_is_unknown(small_csv):
    src, _, _ = small_csv
    with pytest.raises(
        UnknownSymbolError, match=r"KQ\.m@DCE\.m: not in the roll schedule.*KQ\.m@SHFE\.cu"
    ):
        src.roll_entry(M, DAY)


def test_missing_roll_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="roll schedule file not found"):
        CsvSource(tmp_path).roll_entry(CU, DAY)


@pytest.mark.parametrize(
    "row, column, message",
    [
        ("2026-13-01,KQ.m@SHFE.cu,SHFE.cu2602", "trading_day", "not an ISO date"),
        ("2026-01-10,KQ.m@SHFE.cu,SHFE.cu2602", "trading_day", "not a trading day"),
        ("2026-01-08,SHFE.cu,SHFE.cu2602", "symbol", "not a main continuous symbol"),
        ("2026-01-08,KQ.m@SHFE.cu,cu2602", "underlying", "not a futures contract"),
        ("2026-01-08,KQ.m@SHFE.cu,SHFE.al2602", "underlying", "not a contract of KQ.m@SHFE.cu"),
        ("2026-01-07,KQ.m@SHFE.cu,SHFE.cu2603", "trading_day", "already has an entry on line 2"),
        ("2026-01-08,KQ.m@SHFE.cu", "underlying", "value missing"),
    ],
)
def test_malformed_roll_rows_name_file_line_and_column(tmp_path, row, column, message):
    path = tmp_path / "roll_schedule.csv"
    _write_lines(
        path, ["trading_day,symbol,underlying", "2026-01-07,KQ.m@SHFE.cu,SHFE.cu2602", "", row]
    )
    with pytest.raises(MalformedInputError, match=re.escape(message)) as err:
        CsvSource(tmp_path).roll_entry(CU, DAY)
    assert_names(err, path, 4, column)


def test_roll_file_without_a_column_names_it(tmp_path):
    path = tmp_path / "roll_schedule.csv"
    _write_lines(path, ["trading_day,symbol", "2026-01-07,KQ.m@SHFE.cu"])
    with pytest.raises(MalformedInputError) as err:
        CsvSource(tmp_path).roll_entry(CU, DAY)
    assert_names(err, path, 1, "underlying")

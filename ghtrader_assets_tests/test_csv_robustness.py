"""CSV input that must be refused or handled exactly: truncated last line, non-UTF-8 bytes,
gzip, misdated rows, repeated rows, files found by their header."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.assets.ingest import source_failure
from ghtrader_assets.sources.base import MalformedInputError, RollEntry
from ghtrader_assets.sources.csv import (
    CsvSource,
    day_in_name,
    write_downloader_csv,
    write_roll_schedule,
)
from ghtrader_assets.validation import drop_exact_duplicates
from ghtrader_assets_tests.csv_files import (
    CU,
    DAY,
    NEXT,
    assert_names,
    simulated_day,
    write_day_file,
)


def _with_field(line: bytes, index: int, value: bytes) -> bytes:
    """A CSV line (raw bytes, any encoding) with its field at ``index`` replaced."""
    fields = line.split(b",")
    fields[index] = value
    return b",".join(fields)


# -- issue 10 item 2: a last line without its newline -------------------------------------


def test_truncated_last_line_is_refused_not_silently_changed(small_csv):
    """The fault: the last line lost its final character and newline, so ask_volume5 43
    read as 4 and every check passed. Now the file is refused, naming line and column."""
    src, entry, path = small_csv
    data = path.read_bytes()
    lines = data.rstrip(b"\n").split(b"\n")
    lines[-1] = _with_field(lines[-1], -1, b"43")  # ask_volume5 of the last tick
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert src.ticks(entry)["ask_volume5"].iloc[-1] == 43  # the complete file reads 43
    path.write_bytes(b"\n".join(lines)[:-1])  # cut: "...,4" and no newline
    with pytest.raises(MalformedInputError, match="no newline") as err:
        src.ticks(entry)
    assert_names(err, path, 31, f"{entry.underlying}.ask_volume5")
    assert "'4'" in str(err.value)


def test_last_line_without_newline_in_a_gzip_file_is_proven_complete(small_csv):
    """gzip's CRC and length prove the bytes are what was written: no newline needed."""
    src, entry, path = small_csv
    expected = src.ticks(entry)
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes().rstrip(b"\n")))
    path.unlink()
    got = CsvSource(src.root).ticks(entry)
    pd.testing.assert_frame_equal(got, expected)


def test_cut_gzip_file_is_malformed_not_transient(small_csv):
    src, entry, path = small_csv
    gz = path.with_name(path.name + ".gz")
    blob = gzip.compress(path.read_bytes())
    gz.write_bytes(blob[: len(blob) * 2 // 3])
    path.unlink()
    with pytest.raises(MalformedInputError, match="not a complete gzip file") as err:
        CsvSource(src.root).ticks(entry)
    assert str(gz) in str(err.value)


# -- issue 10 item 7: non-UTF-8 input ------------------------------------------------------


def test_gbk_header_names_file_line_column_and_encoding(small_csv):
    src, entry, path = small_csv
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b"datetime_nano", "时间".encode("gbk"), 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(MalformedInputError, match="not UTF-8") as err:
        src.ticks(entry)
    assert_names(err, path, 1, None)
    assert "GBK" in str(err.value) and "时间" in str(err.value)


def test_gbk_row_names_file_line_and_column(small_csv):
    src, entry, path = small_csv
    lines = path.read_bytes().split(b"\n")
    lines[9] = _with_field(lines[9], 2, "涨停".encode("gbk"))  # last_price of line 10
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(MalformedInputError, match="not UTF-8") as err:
        src.ticks(entry)
    assert_names(err, path, 10, f"{entry.underlying}.last_price")
    assert "iconv" in str(err.value)


def test_gbk_roll_schedule_names_file_and_line(small_csv):
    src, entry, _ = small_csv
    roll = src.roll_path
    roll.write_bytes(roll.read_bytes() + "2026-01-08,KQ.m@SHFE.cu,沪铜\n".encode("gbk"))
    with pytest.raises(MalformedInputError, match="not UTF-8") as err:
        CsvSource(src.root).roll_entry(CU, DAY)
    assert_names(err, roll, 3, "underlying")


def test_encoding_errors_are_not_retried(small_csv):
    """Dagster retries a failure with allow_retries; malformed bytes fail the same way every
    time, so the failure says so."""
    src, entry, path = small_csv
    path.write_bytes(path.read_bytes().replace(b"datetime_nano", "时间".encode("gbk"), 1))
    with pytest.raises(MalformedInputError) as err:
        src.ticks(entry)
    failure = source_failure(CU, DAY.isoformat(), err.value)
    assert failure.allow_retries is False
    assert str(path) in failure.description


def test_utf8_bom_is_accepted(small_csv):
    src, entry, path = small_csv
    expected = src.ticks(entry)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pd.testing.assert_frame_equal(CsvSource(src.root).ticks(entry), expected)


# -- misdated rows ---------------------------------------------------------------------------


def test_one_misdated_row_is_left_out_and_reported(tmp_path, cu_day):
    """A CZCE-style last row stamped on another trading day: 1 of 301 rows is left out and
    handed to validation, not a reason to refuse the other 300."""
    entry, frame = cu_day
    _, later = simulated_day(CU, NEXT)
    path = write_day_file(tmp_path, entry, pd.concat([frame.iloc[:300], later.iloc[-1:]]))
    src = CsvSource(tmp_path)
    day_entry = RollEntry(CU, DAY, entry.underlying, "csv")
    got = src.ticks(day_entry)
    assert len(got) == 300 and (got["trading_day"] == DAY.isoformat()).all()
    excluded = src.left_out(day_entry)
    assert excluded["line"].tolist() == [302]
    assert excluded["belongs_to"].tolist() == [NEXT.isoformat()]
    assert excluded["file"].tolist() == [str(path)]


def test_file_mostly_of_another_day_is_refused(tmp_path, cu_day):
    entry, frame = cu_day
    _, later = simulated_day(CU, NEXT)
    write_day_file(tmp_path, entry, pd.concat([frame.iloc[:10], later.iloc[:290]]))
    with pytest.raises(MalformedInputError, match="290 of 300 rows belong to other days"):
        CsvSource(tmp_path).ticks(RollEntry(CU, DAY, entry.underlying, "csv"))


# -- repeated rows ---------------------------------------------------------------------------


def test_exact_repeats_share_an_id_and_are_dropped_as_duplicates(small_csv):
    """Synthetic ids would make repeated rows look distinct; a repeat gets its original's
    id so ingestion drops and counts it, while distinct rows keep distinct ids."""
    src, entry, path = small_csv
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    lines[5:5] = [lines[4], lines[4]]  # row of line 5 repeated twice
    path.write_bytes(b"\n".join(lines) + b"\n")
    got = src.ticks(entry)
    assert len(got) == 32 and got["id"].nunique() == 30
    kept, dropped = drop_exact_duplicates(got)
    assert dropped == 2 and len(kept) == 30 and kept["id"].is_unique


# -- files found by header -------------------------------------------------------------------


def test_files_anywhere_are_found_by_header_and_day_in_name(tmp_path, cu_day):
    entry, frame = cu_day
    _, later = simulated_day(CU, NEXT)
    vendor = tmp_path / "downloads" / "april"
    write_downloader_csv(frame, vendor / f"x_{DAY:%Y%m%d}.csv")
    with gzip.open(vendor / f"{entry.underlying}_{NEXT:%Y%m%d}_tick.csv.gz", "wb") as out:
        write_downloader_csv(later, tmp_path / "tmp.csv")
        out.write((tmp_path / "tmp.csv").read_bytes())
    (tmp_path / "tmp.csv").unlink()
    write_roll_schedule([entry, RollEntry(CU, NEXT, entry.underlying, "csv")], tmp_path)
    src = CsvSource(tmp_path)
    for day, expected in ((DAY, frame), (NEXT, later)):
        got = src.ticks(src.roll_entry(CU, day))
        assert len(got) == len(expected)
        assert np.array_equal(got["datetime"].to_numpy(), expected["datetime"].to_numpy())


def test_two_files_for_one_day_are_an_error(tmp_path, cu_day):
    entry, frame = cu_day
    write_downloader_csv(frame, tmp_path / "a" / f"{DAY:%Y%m%d}.csv")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    write_roll_schedule([entry], tmp_path)
    with pytest.raises(MalformedInputError, match="several files claim this day"):
        CsvSource(tmp_path).ticks(RollEntry(CU, DAY, entry.underlying, "csv"))


@pytest.mark.parametrize(
    "name, day",
    [
        ("SHFE.sn1705_20170414_tick.csv.gz", dt.date(2017, 4, 14)),
        ("2026-01-05.csv", dt.date(2026, 1, 5)),
        ("cu_20260103.csv", None),  # a Saturday is not a trading day
        ("SHFE.cu2602.csv", None),
    ],
)
def test_day_in_name(name, day):
    assert day_in_name(Path(name)) == day


def test_non_tick_files_are_skipped_and_bad_tick_headers_named(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b,c\n1,2,3\n")
    index = CsvSource(tmp_path).index()
    assert index.skipped == [tmp_path / "notes.csv"] and index.files == {}
    (tmp_path / "bad.csv").write_text("datetime,datetime_nano,cu.last_price\n")
    with pytest.raises(MalformedInputError, match=re.escape(f"{tmp_path / 'bad.csv'}, line 1")):
        CsvSource(tmp_path).index()


# -- through Dagster: the failure is final, the stored day is kept ----------------------------


@pytest.mark.parametrize("fault", ["truncated_last_line", "gbk_row", "gbk_roll_schedule"])
def test_bad_bytes_fail_the_run_once_and_keep_the_stored_day(tmp_path, fault):
    """The day is ingested from good files; then the files go bad and it is
    re-materialized: the step fails with file and line, is not retried, and the stored
    ticks and manifest are unchanged."""
    from dagster import DagsterEventType, DagsterInstance

    from ghtrader_assets.config import Settings
    from ghtrader_assets.definitions import INGEST_JOB, build_definitions
    from ghtrader_assets.resources import SourceResource
    from ghtrader_assets.schema import MANIFESTS, TICKS

    day = dt.date(2026, 3, 3)
    root = tmp_path / "csv"
    path = write_day_file(root, *simulated_day(CU, day))
    settings = Settings(data_dir=tmp_path / "data", universe=(CU,), start_date="2026-01-05")
    defs = build_definitions(settings, source=SourceResource(kind="csv", csv_dir=str(root)))
    job = defs.resolve_job_def(INGEST_JOB)
    store = defs.resources["store"].get_store()
    with DagsterInstance.ephemeral() as instance:
        first = job.execute_in_process(
            instance=instance, partition_key=day.isoformat(), raise_on_error=False
        )
        assert first.success
        before = store.read_partition(TICKS, CU.raw, day.isoformat())
        assert len(store.read_partition(MANIFESTS, CU.raw, day.isoformat())) == 1

        if fault == "truncated_last_line":
            path.write_bytes(path.read_bytes()[:-3])
            where, what = f"{path}, line {len(before) + 1}", "no newline"
        elif fault == "gbk_row":
            lines = path.read_bytes().split(b"\n")
            lines[100] = lines[100].replace(b",", b",\xc9\xcf", 1)
            path.write_bytes(b"\n".join(lines))
            where, what = f"{path}, line 101", "not UTF-8"
        else:
            roll = root / "roll_schedule.csv"
            roll.write_bytes(roll.read_bytes().replace(b"trading_day", "交易日".encode("gbk")))
            where, what = f"{roll}, line 1", "not UTF-8"
        second = job.execute_in_process(
            instance=instance, partition_key=day.isoformat(), raise_on_error=False
        )
        assert not second.success
        failures = [e for e in second.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
        assert len(failures) == 1
        message = failures[0].step_failure_data.user_failure_data.description
        assert where in message and what in message
        retries = [
            e for e in second.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY
        ]
        assert retries == []
        after = store.read_partition(TICKS, CU.raw, day.isoformat())
        pd.testing.assert_frame_equal(after, before)
        assert len(store.read_partition(MANIFESTS, CU.raw, day.isoformat())) == 1

"""DataDownloader files from tqsdk 3.0.0-3.4.10 with host-local ``datetime`` text."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources import downloader_time
from ghtrader_assets.sources.base import MalformedInputError
from ghtrader_assets.sources.csv import read_downloader_csv, write_downloader_csv
from ghtrader_assets.sources.downloader_time import host_local_offsets
from ghtrader_assets_tests.fake_tqapi import make_ticks

HOUR = 3600 * 10**9


def _nanos(*local: str) -> np.ndarray:
    return pd.DatetimeIndex(local).tz_localize(TZ).as_unit("ns").asi8


def test_one_host_offset_for_the_whole_file_is_recognised():
    nanos = _nanos("2025-03-10 09:00:00", "2025-03-10 21:00:00")
    assert host_local_offsets(nanos + 0, nanos) == (0,)  # a UTC host
    assert host_local_offsets(nanos - 5 * HOUR, nanos) == (-300,)  # New York, winter
    assert host_local_offsets(nanos + 5 * HOUR + HOUR // 2, nanos) == (330,)  # India


def test_a_daylight_saving_change_inside_the_file_is_recognised_once():
    nanos = _nanos("2025-03-28 21:00", "2025-03-31 09:00", "2025-03-31 10:00")
    cet = np.array([1, 2, 2]) * HOUR  # Europe switched to summer time on 2025-03-30
    assert host_local_offsets(nanos + cet, nanos) == (60, 120)
    back_and_forth = np.array([1, 2, 1]) * HOUR
    assert host_local_offsets(nanos + back_and_forth, nanos) is None


@pytest.mark.parametrize(
    "shift",
    [np.array([8, 8, 9.5]), np.array([8, 3, 8]), np.array([0, 0, 0.1]), np.array([15, 15, 15])],
    ids=["odd-gap", "one-row", "not-quarter-hour", "no-such-zone"],
)
def test_disagreements_no_host_zone_explains_are_not_accepted(shift):
    nanos = _nanos("2025-03-10 09:00", "2025-03-10 10:00", "2025-03-10 11:00")
    assert host_local_offsets(nanos + (shift * HOUR).astype(np.int64), nanos) is None


def test_the_csv_reader_accepts_a_utc_host_file_and_says_so(tmp_path, caplog):
    contract = "SHFE.cu2504"
    times = ["2025-03-07 21:00:01", "2025-03-10 09:00:01"]
    ticks = make_ticks(contract, times)
    path = tmp_path / "old.csv"
    write_downloader_csv(ticks, path, contract)
    lines = path.read_text().splitlines()
    for i, t in enumerate(times, start=1):  # rewrite the text as a UTC host wrote it
        utc = (pd.Timestamp(t, tz=TZ).tz_convert("UTC")).strftime("%Y-%m-%d %H:%M:%S.%f000")
        cells = lines[i].split(",")
        cells[0] = utc
        lines[i] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger=downloader_time.logger.name):
        frame = read_downloader_csv(path, contract)
    seen = [r.getMessage() for r in caplog.records if r.name == downloader_time.logger.name]
    assert frame["datetime_nano"].tolist() == ticks["datetime"].tolist()
    assert len(seen) == 1 and "host-local time UTC+00:00" in seen[0] and str(path) in seen[0]
    cells = lines[2].split(",")
    cells[0] = (dt.datetime(2025, 3, 10, 3, 0, 1) + dt.timedelta(hours=2)).strftime(
        "%Y-%m-%d %H:%M:%S.%f000"
    )
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedInputError, match="does not match datetime_nano"):
        read_downloader_csv(path, contract)

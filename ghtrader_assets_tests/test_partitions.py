"""Trading-day partitions: keys, availability at the close, configuration."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from dagster._core.definitions.partitions.snap import PartitionsSnap

from ghtrader_assets.calendar import (
    TZ,
    CalendarError,
    last_completed_trading_day,
    previous_trading_day,
    trading_days,
)
from ghtrader_assets.partitions import (
    PartitionsConfigError,
    close_cron,
    partition_day,
    partition_key,
    trading_day_partitions,
)

D = dt.date


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def _last_key(start: str, now: dt.datetime, close: str | None = None) -> str:
    return trading_day_partitions(start, close).get_partition_keys(current_time=now)[-1]


def test_keys_are_the_trading_days() -> None:
    parts = trading_day_partitions("2025-01-01")  # a holiday: first key is 2025-01-02
    keys = parts.get_partition_keys(current_time=_at("2026-03-06 16:00"))
    assert keys == [d.isoformat() for d in trading_days(D(2025, 1, 1), D(2026, 3, 6))]
    assert keys[0] == "2025-01-02"
    assert parts.timezone == "Asia/Shanghai" and parts.fmt == "%Y-%m-%d"


def test_no_weekend_or_spring_festival_keys() -> None:
    keys = trading_day_partitions("2026-02-02").get_partition_keys(
        current_time=_at("2026-03-02 16:00")
    )
    days = [D.fromisoformat(k) for k in keys]
    assert all(d.weekday() < 5 for d in days)
    assert not [d for d in days if D(2026, 2, 14) <= d <= D(2026, 2, 23)]
    assert D(2026, 2, 13) in days and D(2026, 2, 24) in days


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-01-07 15:29", "2025-01-06"),  # Tuesday before the close
        ("2025-01-07 15:30", "2025-01-07"),  # at the close
        ("2025-01-07 15:31", "2025-01-07"),
        ("2025-01-06 15:29", "2025-01-03"),  # Monday before the close -> Friday
        ("2025-01-06 15:31", "2025-01-06"),
        ("2025-01-04 12:00", "2025-01-03"),  # Saturday -> Friday
        ("2025-01-05 23:59", "2025-01-03"),  # Sunday -> Friday
        ("2025-10-01 16:00", "2025-09-30"),  # holiday afternoon (dagster #33551 case)
        ("2025-10-09 15:29", "2025-09-30"),  # first day after the break, before close
        ("2025-10-09 15:31", "2025-10-09"),
    ],
)
def test_last_key_follows_the_close(now: str, expected: str) -> None:
    assert _last_key("2024-12-02", _at(now)) == expected


def test_last_key_matches_last_completed_trading_day() -> None:
    parts = trading_day_partitions("2025-08-01")
    rng = np.random.default_rng(11)
    base = _at("2025-09-01 00:00")
    for minutes in rng.integers(0, 70 * 24 * 60, 25):
        now = base + dt.timedelta(minutes=int(minutes))
        keys = parts.get_partition_keys(current_time=now)
        assert keys[-1] == last_completed_trading_day(now).isoformat(), now


def test_snapshot_round_trip_keeps_keys() -> None:
    # The daemon and webserver rebuild the definition from its snapshot.
    parts = trading_day_partitions("2025-09-01")
    rebuilt = PartitionsSnap.from_def(parts).get_partitions_definition()
    now = _at("2025-10-13 15:31")
    assert rebuilt.get_partition_keys(current_time=now) == parts.get_partition_keys(
        current_time=now
    )


def test_time_window_ends_at_close() -> None:
    window = trading_day_partitions("2025-01-02").time_window_for_partition_key("2025-01-03")
    assert window.end == _at("2025-01-03 15:30")
    assert window.start.date() == D(2025, 1, 3)
    assert close_cron() == "30 15 * * 1-5"


def test_start_date_from_env_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    now = _at("2025-03-10 16:00")
    monkeypatch.setenv("GHTRADER_START_DATE", "2025-03-03")
    assert trading_day_partitions().get_partition_keys(current_time=now)[0] == "2025-03-03"
    # an explicit argument wins over the environment
    assert trading_day_partitions("2025-03-05").get_partition_keys(current_time=now)[0] == (
        "2025-03-05"
    )
    monkeypatch.setenv("GHTRADER_START_DATE", "03/03/2025")
    with pytest.raises(PartitionsConfigError, match="GHTRADER_START_DATE='03/03/2025'"):
        trading_day_partitions()
    monkeypatch.delenv("GHTRADER_START_DATE")
    assert trading_day_partitions().get_partition_keys(current_time=now)[0] == "2025-01-02"


def test_close_time_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _last_key("2025-01-02", _at("2025-01-07 15:45"), "16:00") == "2025-01-06"
    assert _last_key("2025-01-02", _at("2025-01-07 16:00"), "16:00") == "2025-01-07"
    monkeypatch.setenv("GHTRADER_CLOSE_TIME", "17:05")
    assert _last_key("2025-01-02", _at("2025-01-07 17:04")) == "2025-01-06"
    assert _last_key("2025-01-02", _at("2025-01-07 17:05")) == "2025-01-07"
    with pytest.raises(PartitionsConfigError, match="close"):
        trading_day_partitions("2025-01-02", "00:30")
    with pytest.raises(PartitionsConfigError, match="not a time"):
        trading_day_partitions("2025-01-02", "3pm")


def test_partition_key_helpers() -> None:
    assert partition_key(D(2025, 1, 6)) == "2025-01-06"
    assert partition_day("2025-01-06") == D(2025, 1, 6)
    assert partition_day(partition_key(previous_trading_day(D(2025, 10, 9)))) == D(2025, 9, 30)
    with pytest.raises(CalendarError, match="not a trading day"):
        partition_key(D(2025, 10, 1))
    with pytest.raises(CalendarError, match="'2025-10-04' is not a trading day"):
        partition_day("2025-10-04")
    with pytest.raises(CalendarError, match="not a YYYY-MM-DD"):
        partition_day("20250106")

"""validate_day on simulated days: each injected defect trips exactly its rule and check."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.schema import TICKS, VALIDATION_GAPS, VALIDATION_SUMMARY, conform
from ghtrader_assets.sessions import expected_seconds, session_windows
from ghtrader_assets.sources.simulated import DEFECTS, SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import (
    CHECK_NAMES,
    CHECKS,
    RULES,
    ValidationConfig,
    ValidationInputError,
    drop_exact_duplicates,
    validate_day,
)

CU = MainSymbol("SHFE", "cu")
#: (symbol, trading day): a five-level product with a night past midnight on a Tuesday, a
#: level-1 product on a Monday (night on Friday evening), a day-only CFFEX product.
DAYS = [
    (CU, dt.date(2025, 3, 4)),
    (MainSymbol("DCE", "m"), dt.date(2025, 3, 3)),
    (MainSymbol("CFFEX", "IF"), dt.date(2025, 3, 5)),
]
#: defect -> (rules that must fail, check that must fail, blocks the manifest?)
EXPECTED: dict[str, tuple[set[str], str, bool]] = {
    "gap": ({"gap"}, "gaps", True),
    "crossed_book": ({"crossed_book"}, "book_integrity", True),
    "nan_prices": ({"null_rate"}, "nulls", False),
    "duplicates": ({"exact_duplicates"}, "duplicates", False),
    "out_of_session": ({"out_of_session"}, "out_of_session", False),
    "ladder": ({"bid_ladder"}, "book_integrity", True),
    "negative_volume": ({"negative_volume"}, "field_quality", True),
    "cumulative_decrease": ({"cumulative_decrease"}, "field_quality", True),
    "price_jump": ({"price_jump"}, "outliers", False),
    "volume_spike": ({"volume_spike"}, "outliers", False),
    "spread_anomaly": ({"spread_anomaly"}, "outliers", False),
    # a run of 150 nulls is also 150 nulls in the null rate (same check)
    "null_run": ({"null_run", "null_rate"}, "nulls", True),
    "sparse": ({"event_cadence"}, "cadence", False),
    "empty_day": ({"missing_day"}, "completeness", True),
}


def simulate(symbol: MainSymbol, day: dt.date, defect: str | None = None, **params):
    src = SimulatedSource(seed=7, defects={defect: params or True} if defect else None)
    frame = src.ticks(src.roll_entry(symbol, day))
    return frame, src.last_injections


def test_every_simulator_defect_has_an_expectation():
    assert set(EXPECTED) == set(DEFECTS)


@pytest.mark.parametrize(("symbol", "day"), DAYS, ids=lambda v: str(v))
def test_clean_day_passes_every_check(symbol, day):
    frame, _ = simulate(symbol, day)
    result = validate_day(frame, symbol, day)
    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    assert result.failed_rules == {}
    assert all(c.passed and not c.blocking for c in result.checks)
    assert result.blocking_failures == []
    row = result.summary.iloc[0]
    assert row["verdict_overall"] == "ok" and row["reason_overall"] == "OK"
    assert row["rows"] == len(frame)
    windows = session_windows(symbol.exchange, symbol.product, day)
    assert row["seconds_expected"] == expected_seconds(windows)
    assert row["seconds_observed"] == row["seconds_expected"]
    assert row["cadence_mode"] == "fixed"
    assert row["half_seconds_missing_share"] == 0.0
    assert row["interval_p50_ms"] == row["interval_max_ms"] == 500.0
    assert row["gap_count"] == 0 and row["out_of_session_ticks"] == 0
    assert len(result.gaps) == 0


@pytest.mark.parametrize(("symbol", "day"), DAYS, ids=lambda v: str(v))
@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_each_defect_trips_exactly_its_rule_and_check(symbol, day, defect):
    frame, injections = simulate(symbol, day, defect)
    result = validate_day(frame, symbol, day)
    rules, check, blocking = EXPECTED[defect]
    skipped = injections[defect].detail.get("skipped")
    if skipped:  # the ladder on a level-1 product: nothing injected, nothing may fail
        assert result.failed_rules == {}, skipped
        return
    assert set(result.failed_rules) == rules
    assert result.failed_checks == [check]
    assert (result.blocking_failures == [check]) is blocking
    outcome = result.check(check)
    assert len(outcome.sample) > 0 and set(outcome.sample["rule"]) <= rules
    row = result.summary.iloc[0]
    assert row["verdict_overall"] == ("error" if blocking else "warn")
    assert row["reason_overall"] in {RULES[r].reason_code for r in rules}


@pytest.mark.parametrize(
    ("defect", "rule", "count"),
    [
        ("crossed_book", "crossed_book", 5),
        ("ladder", "bid_ladder", 5),
        ("negative_volume", "negative_volume", 5),
        ("cumulative_decrease", "cumulative_decrease", 1),
        ("price_jump", "price_jump", 1),
        ("volume_spike", "volume_spike", 1),
        ("spread_anomaly", "spread_anomaly", 3),
    ],
)
def test_offending_rows_are_the_injected_rows(defect, rule, count):
    day = dt.date(2025, 3, 4)
    frame, injections = simulate(CU, day, defect)
    result = validate_day(frame, CU, day)
    measured = result.rules[rule]
    assert measured.value == count
    flagged = set(frame["ts"].iloc[measured.rows])
    assert flagged == set(injections[defect].ts)


def test_figures_of_coverage_defects():
    day = dt.date(2025, 3, 4)
    frame, inj = simulate(CU, day, "gap", seconds=45)
    gap = validate_day(frame, CU, day)
    # 45 s of removed ticks starting mid-second leave 44 or 45 wholly empty seconds
    assert gap.rules["gap"].value in (44, 45)
    assert gap.summary.at[0, "gaps_over_30"] == 1 and gap.summary.at[0, "gap_count"] == 1
    stored = gap.gaps.iloc[0]
    assert stored["session"] == "night" and stored["severity"] == "ERROR"
    assert (
        inj["gap"].detail["start"] <= stored["ts"] < stored["gap_end"] <= inj["gap"].detail["end"]
    )

    frame, _ = simulate(CU, day, "out_of_session", rows=3)
    oos = validate_day(frame, CU, day)
    assert oos.summary.at[0, "out_of_session_seconds"] == 3
    assert oos.check("out_of_session").severity == "WARN"

    frame, _ = simulate(CU, day, "nan_prices", rows=5)
    nulls = validate_day(frame, CU, day)
    assert nulls.summary.at[0, "null_rate_last"] == pytest.approx(5 / len(frame))


def test_ingestion_path_reports_dropped_duplicates():
    day = dt.date(2025, 3, 4)
    raw, _ = simulate(CU, day, "duplicates", rows=5)
    stored, dropped = drop_exact_duplicates(raw)
    assert dropped == 5 and len(stored) == len(raw) - 5
    assert not stored.duplicated().any()
    result = validate_day(stored, CU, day, duplicates_dropped=dropped)
    assert result.failed_rules == {"exact_duplicates": "WARN"}
    meta = result.check("duplicates").metadata
    assert meta["duplicates_dropped"] == 5 and meta["duplicates_present"] == 0
    assert result.summary.at[0, "duplicates_dropped"] == 5


def test_conflicting_duplicates_are_an_error():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day)
    twin = frame.iloc[[1000]].copy()
    twin["last_price"] = twin["last_price"] + 10.0  # same (ts, id), another value
    frame = pd.concat([frame, twin], ignore_index=True)
    deduped, dropped = drop_exact_duplicates(frame)
    assert dropped == 0 and len(deduped) == len(frame)
    result = validate_day(deduped, CU, day)
    assert result.failed_rules == {"conflicting_duplicates": "ERROR"}
    assert result.blocking_failures == ["duplicates"]
    assert result.summary.at[0, "duplicates_conflicting"] == 2


def _assert_same_figures(a, b) -> None:
    """Two validations' summaries agree but for when and how long each one ran."""
    volatile = ["validation_seconds", "validated_at"]
    pd.testing.assert_frame_equal(
        a.summary.drop(columns=volatile), b.summary.drop(columns=volatile)
    )


def test_unsorted_input_gives_the_same_figures():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day)
    shuffled = frame.sample(frac=1.0, random_state=3)
    a, b = validate_day(frame, CU, day), validate_day(shuffled, CU, day)
    assert b.failed_rules == {}
    _assert_same_figures(a, b)


def test_summary_and_gaps_conform_to_their_tables():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day, "gap")
    result = validate_day(frame, CU, day)
    VALIDATION_SUMMARY.schema.validate(result.summary)
    VALIDATION_GAPS.schema.validate(result.gaps)
    row = result.summary.iloc[0]
    assert row["ts"] == pd.Timestamp("2025-03-04", tz="Asia/Shanghai").tz_convert("UTC")
    assert row["config_hash"] == ValidationConfig().config_hash()
    outcomes = json.loads(row["check_outcomes"])
    assert outcomes["gaps"] == {"passed": False, "severity": "ERROR", "blocking": True}
    assert outcomes["outliers"]["passed"] is True
    assert row["checks_failed"] == 1 and row["blocking_failures"] == "gaps"
    assert row["underlying"] == frame.at[0, "underlying"] and row["source"] == "simulated"
    # open interest moves both ways in the simulator: counted, never failing (INFO)
    assert row["violations_open_interest_decrease"] > 0
    assert "limit_band" in row["rules_skipped"]


def test_summary_recomputes_identically_from_stored_ticks(tmp_path):
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day, "spread_anomaly")
    first = validate_day(frame, CU, day)
    path = tmp_path / "part.parquet"
    frame.to_parquet(path)
    stored = conform(pd.read_parquet(path), TICKS)
    again = validate_day(stored, CU, day)
    _assert_same_figures(first, again)


def test_empty_day_skips_coverage_rules_that_need_ticks():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day, "empty_day")
    result = validate_day(frame, CU, day)
    assert result.failed_rules == {"missing_day": "ERROR"}
    for rule in ("gap", "half_seconds_missing", "session_end_lag", "event_cadence"):
        assert result.rules[rule].skipped
    row = result.summary.iloc[0]
    assert row["missing_day"] == 1 and row["rows"] == 0 and pd.isna(row["first_tick"])
    assert row["verdict_source"] == "error" and row["verdict_overall"] == "error"


def test_check_samples_are_short_and_name_their_rule():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day, "null_run", rows=150)
    outcome = validate_day(frame, CU, day).check("nulls")
    assert 0 < len(outcome.sample) <= 10
    assert outcome.sample.columns[0] == "rule"
    assert set(outcome.sample["rule"]) == {"null_rate", "null_run"}
    assert outcome.sample["bid_price1"].isna().all()


def test_checks_declare_blocking_deliberately():
    by_name = {c.name: c for c in CHECKS}
    assert len(by_name) == len(CHECKS) and 6 <= len(CHECKS) <= 9
    assert not by_name["outliers"].blocking
    assert by_name["field_quality"].blocking and by_name["book_integrity"].blocking
    assert {r.check for r in RULES.values()} == set(by_name)
    for rule in RULES:
        ValidationConfig().threshold(rule)  # every rule is configurable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trading_day": dt.date(2025, 3, 8)}, "not a trading day"),
        ({"symbol": MainSymbol("SHFE", "zz")}, "no product facts"),
        ({"symbol": "KQ.m@SHFE.cu"}, "MainSymbol"),
        ({"trading_day": dt.datetime(2025, 3, 4, 9)}, "must be a date"),
        ({"limits": (80000.0, 70000.0)}, "lower < upper"),
        ({"limits": "wide"}, "limits"),
        ({"duplicates_dropped": -1}, "duplicates_dropped"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    frame, _ = simulate(CU, dt.date(2025, 3, 4))
    args = {"ticks": frame, "symbol": CU, "trading_day": dt.date(2025, 3, 4), **kwargs}
    with pytest.raises(ValidationInputError, match=message):
        validate_day(**args)


def test_frame_without_ts_is_rejected_with_symbol_and_day():
    frame, _ = simulate(CU, dt.date(2025, 3, 4))
    with pytest.raises(ValidationInputError, match=r"KQ\.m@SHFE\.cu 2025-03-04.*'ts'"):
        validate_day(frame.drop(columns="ts"), CU, dt.date(2025, 3, 4))


def test_malformed_columns_fail_the_schema_rule_not_the_call():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day)
    frame["volume"] = frame["volume"].astype(np.int64)  # wrong dtype
    frame = frame.drop(columns="bid_price5")  # missing column
    frame.loc[10, "ts"] = pd.NaT  # required value missing
    result = validate_day(frame, CU, day)
    assert result.failed_rules.get("schema") == "ERROR"
    failed = result.check("field_quality").metadata["schema_failed_columns"]
    assert "volume" in failed and "bid_price5" in failed and "ts" in failed
    assert result.summary.at[0, "verdict_engineering"] == "error"


@pytest.mark.parametrize("defect", ["gap", "sparse", "empty_day", "null_run", "duplicates"])
def test_check_metadata_holds_plain_values_for_dagster(defect):
    frame, _ = simulate(CU, dt.date(2025, 3, 4), defect)
    result = validate_day(frame, CU, dt.date(2025, 3, 4))
    for outcome in result.checks:
        assert outcome.severity in ("WARN", "ERROR")
        for key, value in outcome.metadata.items():
            assert type(value) in (bool, int, float, str), (outcome.name, key, type(value))
            assert not (isinstance(value, float) and np.isnan(value)), (outcome.name, key)
    with pytest.raises(KeyError, match="no check named"):
        result.check("speed")


def test_validation_never_modifies_the_callers_frame():
    day = dt.date(2025, 3, 4)
    frame, _ = simulate(CU, day, "duplicates")
    shuffled = frame.sample(frac=1.0, random_state=1)
    before = shuffled.copy()
    validate_day(shuffled, CU, day)
    drop_exact_duplicates(shuffled)
    pd.testing.assert_frame_equal(shuffled, before)

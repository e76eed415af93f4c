"""Field-quality, null and outlier rules on hand-edited simulated days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import ValidationConfig, validate_day
from ghtrader_assets.validation.arrays import longest_run, prev_running_max, segments_of
from ghtrader_assets.validation.field_quality import float_columns, row_rules

CU = MainSymbol("SHFE", "cu")
DAY = dt.date(2025, 3, 4)


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    src = SimulatedSource(seed=21)
    return src.ticks(src.roll_entry(CU, DAY))


@pytest.fixture
def day(base) -> pd.DataFrame:
    return base.copy()


def band(frame: pd.DataFrame) -> tuple[float, float]:
    prices = frame[["bid_price5", "ask_price5", "last_price"]]
    return float(prices.min().min()) - 10.0, float(prices.max().max()) + 10.0


def test_negative_price_is_a_non_positive_price(day):
    day.loc[500, "last_price"] = -1.0
    day.loc[600, "bid_price5"] = 0.0  # still below bid4: only the price rule sees it
    result = validate_day(day, CU, DAY)
    assert result.failed_rules == {"non_positive_price": "ERROR"}
    assert result.rules["non_positive_price"].value == 2
    assert result.blocking_failures == ["field_quality"]


def test_ask_ladder_and_locked_book(day):
    day.loc[300, ["ask_price2", "ask_price3"]] = day.loc[
        300, ["ask_price3", "ask_price2"]
    ].to_numpy()
    day.loc[400, "bid_price1"] = day.loc[400, "ask_price1"]  # locked: bid1 == ask1
    result = validate_day(day, CU, DAY)
    assert result.failed_rules == {"ask_ladder": "ERROR", "crossed_book": "ERROR"}
    assert result.rules["ask_ladder"].rows.tolist() == [300]
    assert result.rules["crossed_book"].rows.tolist() == [400]


def test_empty_levels_are_not_ladder_violations(day):
    day.loc[100:199, ["bid_price3", "ask_price4"]] = np.nan  # thin book: holes in the ladder
    result = validate_day(day, CU, DAY)
    assert "bid_ladder" not in result.failed_rules and "ask_ladder" not in result.failed_rules
    assert result.failed_rules == {}  # 200 of 20 depth cells x 55,800 rows: below 5 %
    assert result.summary.at[0, "null_rate_depth"] > 0


def test_cumulative_amount_tolerates_float_dust_but_not_a_decrease(day):
    day.loc[1000, "amount"] = day.loc[1000, "amount"] * (1 - 1e-13)
    assert validate_day(day, CU, DAY).failed_rules == {}
    day.loc[2000, "amount"] = day.loc[1999, "amount"] - 50_000.0
    result = validate_day(day, CU, DAY)
    assert result.failed_rules == {"cumulative_decrease": "ERROR"}
    assert result.rules["cumulative_decrease"].rows.tolist() == [2000]


def test_open_interest_decrease_is_info_by_default_and_configurable(day):
    result = validate_day(day, CU, DAY)
    assert result.rules["open_interest_decrease"].value > 0
    assert result.check("field_quality").passed
    assert result.check("field_quality").metadata["open_interest_decrease_threshold"] == "info only"
    strict = ValidationConfig().with_overrides({"open_interest_decrease.error_above": 0})
    assert validate_day(day, CU, DAY, strict).failed_rules == {"open_interest_decrease": "ERROR"}
    off = ValidationConfig().with_overrides({"open_interest_decrease.enabled": False})
    skipped = validate_day(day, CU, DAY, off)
    assert skipped.rules["open_interest_decrease"].skipped
    assert "open_interest_decrease" in skipped.summary.at[0, "rules_skipped"]


def test_limit_band_runs_only_with_limits(day):
    plain = validate_day(day, CU, DAY)
    meta = plain.check("field_quality").metadata
    assert "no limit prices" in meta["limit_band_skipped"]
    lower, upper = band(day)
    inside = validate_day(day, CU, DAY, limits=(lower, upper))
    assert inside.failed_rules == {}
    assert inside.check("field_quality").metadata["upper_limit"] == upper
    day.loc[700, "last_price"] = upper + 100.0
    day.loc[700, "ask_price1"] = upper + 100.0  # keep the book consistent with it
    for lvl in range(2, 6):
        day.loc[700, f"ask_price{lvl}"] = upper + 100.0 + lvl * 10
    outside = validate_day(day, CU, DAY, limits=(lower, upper))
    assert outside.failed_rules.get("limit_band") == "ERROR"
    assert outside.rules["limit_band"].rows.tolist() == [700]


def test_limit_locked_empty_side_is_not_a_null(day):
    lower, upper = band(day)
    rows = slice(5000, 5199)  # 200 rows: the bid sits at the upper limit, no sellers
    day.loc[rows, "ask_price1"] = np.nan
    for lvl in range(2, 6):
        day.loc[rows, f"ask_price{lvl}"] = np.nan
    for lvl in range(1, 6):
        day.loc[rows, f"bid_price{lvl}"] = upper - (lvl - 1) * 10.0
    day.loc[rows, "last_price"] = upper
    locked = validate_day(day, CU, DAY, limits=(lower, upper))
    assert "null_run" not in locked.failed_rules and "null_rate" not in locked.failed_rules
    unknown = validate_day(day, CU, DAY)  # without limits the run is a real null run
    assert unknown.failed_rules.get("null_run") == "ERROR"
    assert unknown.check("nulls").metadata["null_run_field"] == "ask1"


def test_price_jump_over_a_session_break_is_not_an_outlier(day):
    afternoon = day["ts"] >= pd.Timestamp("2025-03-04 13:30", tz=TZ)
    prices = [c for c in day.columns if "price" in c or c in ("highest", "lowest", "average")]
    day.loc[afternoon, prices] = day.loc[afternoon, prices] + 500.0  # 50-tick opening gap
    result = validate_day(day, CU, DAY)
    assert "price_jump" not in result.failed_rules
    day.loc[afternoon & (day.index > day.index[afternoon][5000]), prices] += 500.0
    inside = validate_day(day, CU, DAY)
    assert inside.failed_rules == {"price_jump": "WARN"}
    assert inside.check("outliers").metadata["price_jump_max_ticks"] == 50


def test_volume_spike_and_spread_thresholds(day):
    extra = 400.0
    day.loc[3000:, "volume"] += extra  # one tick trades 400 more lots
    day.loc[3000:, "amount"] += extra * day.loc[3000, "last_price"] * 5
    spiky = validate_day(day, CU, DAY)
    assert spiky.failed_rules == {"volume_spike": "WARN"}
    assert spiky.rules["volume_spike"].rows.tolist() == [3000]
    tolerant = ValidationConfig().with_overrides({"volume_spike_factor": 200})
    assert validate_day(day, CU, DAY, tolerant).failed_rules == {}

    wide = day.copy()
    wide.loc[4000, [f"ask_price{k}" for k in range(1, 6)]] += 100.0  # 10 more ticks of spread
    result = validate_day(wide, CU, DAY)
    assert result.failed_rules == {"volume_spike": "WARN", "spread_anomaly": "WARN"}
    assert result.check("outliers").metadata["spread_anomaly_threshold"] == "warn>0"
    loose = ValidationConfig().with_overrides({"spread_anomaly_factor": 20})
    assert "spread_anomaly" not in validate_day(wide, CU, DAY, loose).failed_rules


def test_outliers_skip_rows_that_broke_a_hard_rule(day):
    day.loc[800, "last_price"] = day.loc[800, "last_price"] * 10  # also out of any band
    day.loc[800, "bid_price1"] = day.loc[800, "ask_price1"] + 10.0  # crossed row
    result = validate_day(day, CU, DAY)
    assert result.failed_rules == {"crossed_book": "ERROR"}


def test_sequential_rules_restart_at_segment_cuts():
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, np.nan, 4.0])
    assert np.isnan(prev_running_max(x, segments_of(7, np.array([3])))[3])
    assert prev_running_max(x, segments_of(7, None))[3] == 3.0
    assert longest_run(np.array([1, 1, 1, 1, 0], bool), segments_of(5, np.array([2]))) == (2, 0)
    assert segments_of(5, np.array([0, 2, 9])) == [(0, 2), (2, 5)]


def test_row_rules_on_a_block_sample_never_invent_a_decrease(base):
    cols = float_columns(base.iloc[::7].reset_index(drop=True))  # a thinned, ordered sample
    results, bad = row_rules(
        cols,
        ValidationConfig(),
        five_levels=True,
        limits=None,
        segment_starts=np.arange(0, len(cols["volume"]), 500),
    )
    assert results["cumulative_decrease"].value == 0 and not bad.any()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("last_price", np.inf),
        ("ask_price3", np.inf),
        ("volume", np.inf),
        ("amount", -np.inf),
        ("open_interest", np.inf),
        ("bid_volume5", np.inf),
        ("average", -np.inf),
    ],
)
def test_non_finite_values_fail_field_quality(day, column, value):
    """inf/-inf in any numeric column is a blocking field-quality failure naming the column
    (issue 10 item 3: ``inf`` used to pass all nine checks)."""
    day.loc[700, column] = value
    result = validate_day(day, CU, DAY)
    check = result.check("field_quality")
    assert not check.passed and check.severity == "ERROR"
    assert "field_quality" in result.blocking_failures
    assert result.rules["schema"].value >= 1
    assert column in check.metadata["schema_failed_columns"]
    sample = result.rules["schema"].sample
    assert set(sample["check"]) == {"finite (not inf or -inf)"}
    assert list(sample["index"]) == ["700"]


def test_non_finite_rows_are_kept_out_of_outlier_statistics(day):
    """Rows with inf are marked bad, so rolling outlier statistics leave them out."""
    day.loc[700, "ask_volume2"] = np.inf
    day.loc[900, "last_price"] = -np.inf
    _, bad = row_rules(float_columns(day), ValidationConfig(), five_levels=True, limits=None)
    assert bad[700] and bad[900]
    assert not bad[800]

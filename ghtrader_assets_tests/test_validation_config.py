"""ValidationConfig: defaults, overrides, environment, and thresholds taking effect."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import (
    RULES,
    Threshold,
    ValidationConfig,
    ValidationConfigError,
    validate_day,
)

CU = MainSymbol("SHFE", "cu")
DAY = dt.date(2025, 3, 4)


def defective(defect: str, **params):
    src = SimulatedSource(seed=11, defects={defect: params or True})
    return src.ticks(src.roll_entry(CU, DAY))


def test_threshold_levels():
    t = Threshold(warn_above=5, error_above=30)
    assert [t.severity(v) for v in (5, 6, 30, 31)] == [None, "WARN", "WARN", "ERROR"]
    assert t.severity(float("nan")) is None
    assert Threshold(None, 0).severity(1) == "ERROR" and Threshold(None, 0).level == "ERROR"
    assert Threshold(None, None).severity(1e9) is None and Threshold().level == "INFO"
    assert Threshold(0, 0, enabled=False).severity(1) is None
    assert Threshold(0, 0, enabled=False).level == "OFF"


def test_defaults_match_the_documented_policy():
    c = ValidationConfig()
    assert (c.gap.warn_above, c.gap.error_above) == (5, 30)
    assert (c.half_seconds_missing.warn_above, c.half_seconds_missing.error_above) == (0.02, 0.10)
    assert (c.out_of_session.warn_above, c.out_of_session.error_above) == (0, 60)
    assert c.null_run.error_above == 100 and c.price_jump_sigma == 5
    assert c.volume_spike_factor == 10 and c.spread_anomaly_factor == 3
    assert c.sample_threshold_rows == 1_000_000 and not c.attribution_enabled
    assert c.open_interest_decrease.level == "INFO"
    assert {r for r in RULES if c.threshold(r).level == "ERROR"} >= {
        "crossed_book",
        "bid_ladder",
        "ask_ladder",
        "negative_volume",
        "cumulative_decrease",
    }


def test_with_overrides_accepts_the_documented_forms():
    c = ValidationConfig().with_overrides(
        {
            "gap": {"warn_above": 10},
            "gap.error_above": "none",
            "crossed_book": Threshold(warn_above=0),
            "price_jump_sigma": "4",
            "max_gaps_stored": 5,
            "gap_thresholds": {"SHFE.cu:night": 20, ":day": 8},
            "event_cadence_products": "DCE.m, CZCE.SR",
            "attribution_enabled": "yes",
        }
    )
    assert c.gap == Threshold(10, None)
    assert c.crossed_book.level == "WARN"
    assert c.price_jump_sigma == 4.0 and c.max_gaps_stored == 5
    assert c.gap_warn_seconds("SHFE", "cu", "night") == 20
    assert c.gap_warn_seconds("SHFE", "cu", "day") == 8
    assert c.gap_warn_seconds("DCE", "m", "night") == 10  # falls back to gap.warn_above
    assert c.event_cadence_products == ("CZCE.SR", "DCE.m")
    assert c.attribution_enabled is True
    assert ValidationConfig().gap.warn_above == 5  # the original is untouched (frozen)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gapp": 1}, "unknown validation setting 'gapp'"),
        ({"gap.warn": 1}, "unknown threshold field 'warn'"),
        ({"nope.warn_above": 1}, "unknown rule 'nope'"),
        ({"gap": 5}, "expected a Threshold"),
        ({"price_jump_sigma": "five"}, "price_jump_sigma: 'five' is not a valid float"),
        ({"price_jump_sigma": 0}, "must be > 0"),
        ({"max_gaps_stored": 2.5}, "not a valid int"),
        ({"gap_thresholds": "SHFE.cu:evening=3"}, "session must be day or night"),
        ({"gap_thresholds": "cu=3"}, "EXCHANGE.product"),
        ({"gap_thresholds": "SHFE.cu=0"}, "must be > 0"),
        ({"event_cadence_products": "m"}, "EXCHANGE.product"),
        ({"fixed_cadence_min_share": 1.5}, r"\(0, 1\]"),
    ],
)
def test_bad_overrides_name_what_is_wrong(overrides, message):
    with pytest.raises(ValidationConfigError, match=message):
        ValidationConfig().with_overrides(overrides)


def test_from_env_reads_prefixed_variables_and_ignores_others():
    env = {
        "GHTRADER_VALIDATION_GAP_WARN_ABOVE": "12",
        "GHTRADER_VALIDATION_GAP_ERROR_ABOVE": "none",
        "GHTRADER_VALIDATION_CROSSED_BOOK_ENABLED": "false",
        "GHTRADER_VALIDATION_PRICE_JUMP_SIGMA": "6.5",
        "GHTRADER_VALIDATION_ATTRIBUTION_ENABLED": "true",
        "GHTRADER_VALIDATION_GAP_THRESHOLDS": "SHFE.cu:night=9",
        "GHTRADER_STORE": "embedded",
        "PATH": "/usr/bin",
    }
    c = ValidationConfig.from_env(env)
    assert c.gap == Threshold(12, None)
    assert c.crossed_book.enabled is False
    assert c.price_jump_sigma == 6.5 and c.attribution_enabled is True
    assert c.gap_warn_seconds("SHFE", "cu", "night") == 9
    assert ValidationConfig.from_env({}) == ValidationConfig()


def test_from_env_rejects_typos_and_bad_values_naming_the_variable():
    with pytest.raises(ValidationConfigError, match="GHTRADER_VALIDATION_GAP_WARN"):
        ValidationConfig.from_env({"GHTRADER_VALIDATION_GAP_WARN": "3"})
    with pytest.raises(
        ValidationConfigError, match="GHTRADER_VALIDATION_NULL_RUN_ERROR_ABOVE=.lots."
    ):
        ValidationConfig.from_env({"GHTRADER_VALIDATION_NULL_RUN_ERROR_ABOVE": "lots"})


def test_config_hash_tracks_every_setting():
    base = ValidationConfig()
    assert base.config_hash() == ValidationConfig().config_hash()
    changed = {
        base.with_overrides(o).config_hash()
        for o in ({"gap.warn_above": 6}, {"sample_rows": 1000}, {"gap_thresholds": ":night=7"})
    }
    assert base.config_hash() not in changed and len(changed) == 3
    json.dumps(base.as_dict())  # JSON-able for run metadata


def test_thresholds_and_severities_from_configuration_take_effect():
    gap_day = defective("gap", seconds=45)
    assert validate_day(gap_day, CU, DAY).blocking_failures == ["gaps"]
    # blocking level removed: the same gap only warns
    relaxed = ValidationConfig().with_overrides({"gap.error_above": None})
    result = validate_day(gap_day, CU, DAY, relaxed)
    assert result.failed_rules == {"gap": "WARN"} and result.blocking_failures == []
    # per-session threshold: the injected gap sits in the night session
    night = relaxed.with_overrides({"gap_thresholds": {"SHFE.cu:night": 60}})
    assert validate_day(gap_day, CU, DAY, night).failed_rules == {}
    day_only = relaxed.with_overrides({"gap_thresholds": {"SHFE.cu:day": 60}})
    assert validate_day(gap_day, CU, DAY, day_only).failed_rules == {"gap": "WARN"}

    crossed = defective("crossed_book", rows=5)
    warn = ValidationConfig().with_overrides(
        {"crossed_book": {"warn_above": 0, "error_above": None}}
    )
    assert validate_day(crossed, CU, DAY, warn).check("book_integrity").severity == "WARN"
    tolerant = ValidationConfig().with_overrides({"crossed_book.error_above": 5})
    assert validate_day(crossed, CU, DAY, tolerant).failed_rules == {}
    off = ValidationConfig().with_overrides({"crossed_book.enabled": False})
    outcome = validate_day(crossed, CU, DAY, off).check("book_integrity")
    assert outcome.passed and outcome.metadata["crossed_book_threshold"] == "off"

    jump = defective("price_jump", ticks=50)
    assert validate_day(jump, CU, DAY).failed_rules == {"price_jump": "WARN"}
    wide = ValidationConfig().with_overrides({"price_jump_sigma": 100})
    assert validate_day(jump, CU, DAY, wide).failed_rules == {}

    run = defective("null_run", rows=150)
    longer = ValidationConfig().with_overrides({"null_run.error_above": 200})
    assert validate_day(run, CU, DAY, longer).failed_rules == {"null_rate": "WARN"}

    sparse = defective("sparse")
    expected_event = ValidationConfig().with_overrides({"event_cadence_products": "SHFE.cu"})
    assert validate_day(sparse, CU, DAY, expected_event).failed_rules == {}

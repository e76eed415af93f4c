"""How validation runs: incremental days, parallel ranges, sampling, attribution, verdicts."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.calendar import trading_days
from ghtrader_assets.sources.base import SourceUnavailableError
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import (
    AttributionBudget,
    ValidationConfig,
    ValidationRangeError,
    choose_sample,
    pending_days,
    validate_day,
    validate_range,
)
from ghtrader_assets.validation.verdict import Finding, layered_verdict

IF = MainSymbol("CFFEX", "IF")
CU = MainSymbol("SHFE", "cu")
DAY = dt.date(2025, 3, 4)


class CountingLoader:
    """Stands in for the store: serves simulated ticks and records which days were read."""

    def __init__(self, symbol: MainSymbol, fail_on: dt.date | None = None) -> None:
        self.symbol = symbol
        self.fail_on = fail_on
        self.calls: list[dt.date] = []
        self._lock = threading.Lock()

    def __call__(self, day: dt.date) -> pd.DataFrame:
        with self._lock:
            self.calls.append(day)
        if day == self.fail_on:
            raise OSError(f"partition {day} unreadable")
        src = SimulatedSource(seed=2, cadence_ms=2000)  # light days: 7,200 rows
        return src.ticks(src.roll_entry(self.symbol, day))


def summaries_of(results) -> pd.DataFrame:
    return pd.concat([r.summary for r in results.values()], ignore_index=True)


def test_one_new_day_after_thirty_validates_only_that_day():
    days = trading_days(dt.date(2025, 2, 3), dt.date(2025, 3, 31))[:31]
    old, new = days[:30], days[30]
    config = ValidationConfig().with_overrides({"event_cadence_products": "CFFEX.IF"})
    loader = CountingLoader(IF)
    stored = summaries_of(validate_range(old, loader, IF, config, max_workers=2))
    assert sorted(loader.calls) == old and len(stored) == 30

    loader.calls.clear()
    todo = pending_days(days, stored, config)
    assert todo == [new]
    results = validate_range(todo, loader, IF, config)
    assert loader.calls == [new] and list(results) == [new]

    # a threshold change makes every stored summary stale: all days recompute from the store
    changed = config.with_overrides({"gap.warn_above": 8})
    assert pending_days(days, stored, changed) == days[:30] + [new]


def test_parallel_range_equals_sequential_and_collects_failures():
    days = trading_days(dt.date(2025, 3, 3), dt.date(2025, 3, 7))
    config = ValidationConfig().with_overrides({"event_cadence_products": "CFFEX.IF"})
    one = validate_range(days, CountingLoader(IF), IF, config, max_workers=1)
    two = validate_range(days, CountingLoader(IF), IF, config, max_workers=2)
    volatile = ["validation_seconds", "validated_at"]
    pd.testing.assert_frame_equal(
        summaries_of(one).drop(columns=volatile), summaries_of(two).drop(columns=volatile)
    )
    with pytest.raises(ValidationRangeError, match="2025-03-05.*unreadable") as info:
        validate_range(days, CountingLoader(IF, fail_on=days[2]), IF, config, max_workers=2)
    assert set(info.value.failures) == {days[2]}
    assert sorted(info.value.results) == [d for d in days if d != days[2]]
    with pytest.raises(ValueError, match="max_workers"):
        validate_range(days, CountingLoader(IF), IF, config, max_workers=0)


def light_if_day(day: dt.date) -> pd.DataFrame:
    """A module-level (picklable) loader for worker processes."""
    src = SimulatedSource(seed=2, cadence_ms=2000)
    return src.ticks(src.roll_entry(IF, day))


def test_process_executor_gives_the_same_results():
    days = [dt.date(2025, 3, 3), dt.date(2025, 3, 4)]
    config = ValidationConfig().with_overrides({"event_cadence_products": "CFFEX.IF"})
    threads = validate_range(days, light_if_day, IF, config, max_workers=2)
    procs = validate_range(days, light_if_day, IF, config, max_workers=2, executor="process")
    volatile = ["validation_seconds", "validated_at"]
    pd.testing.assert_frame_equal(
        summaries_of(threads).drop(columns=volatile), summaries_of(procs).drop(columns=volatile)
    )
    with pytest.raises(ValueError, match="executor"):
        validate_range(days, light_if_day, IF, config, executor="fiber")  # type: ignore[arg-type]


def test_pending_days_rejects_a_table_without_hash():
    with pytest.raises(ValueError, match="config_hash"):
        pending_days([DAY], pd.DataFrame({"trading_day": ["2025-03-04"]}))


SAMPLING = {"sample_threshold_rows": 10_000, "sample_rows": 6_000, "sample_block_rows": 500}


def test_choose_sample_is_seeded_block_sampling():
    config = ValidationConfig().with_overrides(SAMPLING)
    assert choose_sample(9_000, CU, DAY, config) is None
    a = choose_sample(55_800, CU, DAY, config)
    b = choose_sample(55_800, CU, DAY, config)
    other = choose_sample(55_800, CU, dt.date(2025, 3, 5), config)
    assert a is not None and b is not None and other is not None
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, other.rows)
    assert a.rows.size == 6_000 and np.all(np.diff(a.rows) > 0)
    blocks = np.split(a.rows, a.block_starts[1:])
    assert all(np.all(np.diff(block) == 1) for block in blocks)
    assert all(block[0] % 500 == 0 for block in blocks)


def test_large_days_sample_field_quality_but_keep_coverage_exact():
    src = SimulatedSource(seed=4, defects={"crossed_book": {"rows": 5}, "gap": True})
    frame = src.ticks(src.roll_entry(CU, DAY))
    exact = validate_day(frame, CU, DAY)
    sampled = validate_day(frame, CU, DAY, ValidationConfig().with_overrides(SAMPLING))
    row, full = sampled.summary.iloc[0], exact.summary.iloc[0]
    assert row["sampled"] == 1 and row["sample_rows"] == 6_000 and full["sampled"] == 0
    for col in ("seconds_observed", "gap_count", "max_gap_seconds", "half_seconds_observed"):
        assert row[col] == full[col]
    assert sampled.failed_rules["gap"] == "ERROR"
    # counts describe the sample: never more crossed rows than were injected
    assert sampled.rules["crossed_book"].value <= 5
    for check in ("field_quality", "book_integrity", "nulls", "outliers"):
        meta = sampled.check(check).metadata
        assert meta["validation_sampled"] is True and meta["population_rows"] == len(frame)
        assert meta["sample_fraction"] == round(6_000 / len(frame), 6)
        assert "random blocks of 500 rows" in meta["sample_method"]
        full_meta = exact.check(check).metadata
        assert full_meta["validation_sampled"] is False and full_meta["sample_fraction"] == 1.0
    assert "validation_sampled" not in sampled.check("gaps").metadata  # coverage is exact


def gapped_and_clean():
    clean_src = SimulatedSource(seed=9)
    gap_src = SimulatedSource(seed=9, defects={"gap": {"seconds": 45}})
    entry = clean_src.roll_entry(CU, DAY)
    return gap_src.ticks(entry), clean_src.ticks(entry)


def test_attribution_is_off_by_default():
    gapped, _ = gapped_and_clean()

    def refetch():
        raise AssertionError("the source must not be asked when attribution is off")

    result = validate_day(gapped, CU, DAY, refetch=refetch)
    assert result.gaps["attribution"].tolist() == ["unattributed"]


def test_attribution_marks_gaps_the_provider_can_fill():
    gapped, clean = gapped_and_clean()
    config = ValidationConfig().with_overrides({"attribution_enabled": True})
    ours = validate_day(gapped, CU, DAY, config, refetch=lambda: clean)
    assert ours.gaps["attribution"].tolist() == ["provider_has_data"]
    row = ours.summary.iloc[0]
    assert row["verdict_engineering"] == "error" and row["reason_engineering"] == "GAP_NOT_INGESTED"
    assert row["reason_overall"] == "GAP_NOT_INGESTED"

    theirs = validate_day(gapped, CU, DAY, config, refetch=lambda: gapped)
    assert theirs.gaps["attribution"].tolist() == ["provider_missing"]
    row = theirs.summary.iloc[0]
    assert row["verdict_source"] == "warn" and row["reason_source"] == "PROVIDER_GAP"
    assert row["verdict_engineering"] == "ok"


def test_attribution_respects_its_budgets_and_source_failures():
    gapped, clean = gapped_and_clean()
    config = ValidationConfig().with_overrides({"attribution_enabled": True})
    calls = []

    def refetch():
        calls.append(1)
        return clean

    budget = AttributionBudget(1)
    first = validate_day(gapped, CU, DAY, config, refetch=refetch, attribution_budget=budget)
    second = validate_day(gapped, CU, DAY, config, refetch=refetch, attribution_budget=budget)
    assert len(calls) == 1 and budget.remaining == 0
    assert first.gaps["attribution"].tolist() == ["provider_has_data"]
    assert second.gaps["attribution"].tolist() == ["not_checked"]

    one_gap = config.with_overrides({"attribution_max_gaps": 1})
    two_gaps = gapped.drop(
        gapped.index[gapped["ts"].between(gapped["ts"].iloc[100], gapped["ts"].iloc[140])]
    )
    result = validate_day(two_gaps, CU, DAY, one_gap, refetch=lambda: clean)
    labels = result.gaps.sort_values("seconds")["attribution"].tolist()
    assert labels == ["not_checked", "provider_has_data"]  # only the largest is checked

    def broken():
        raise SourceUnavailableError("maintenance window")

    down = validate_day(gapped, CU, DAY, config, refetch=broken)
    assert down.gaps["attribution"].tolist() == ["not_checked"]
    with pytest.raises(ValueError, match=">= 0"):
        AttributionBudget(-1)


def test_layered_verdict_picks_the_worst_layer_engineering_first():
    v = layered_verdict({"crossed_book": "ERROR", "out_of_session": "WARN", "gap": "WARN"})
    assert (v["source"].status, v["source"].reason) == ("error", "CROSSED_BOOK")
    assert (v["engineering"].status, v["policy"].status) == ("warn", "warn")
    assert v["overall"] == v["source"]
    tie = layered_verdict({"crossed_book": "ERROR", "schema": "ERROR"})
    assert tie["overall"].reason == "SCHEMA"
    several = layered_verdict({"crossed_book": "ERROR", "bid_ladder": "ERROR", "null_rate": "WARN"})
    assert several["source"].reason == "CROSSED_BOOK" and "(+2 more)" in several["source"].hint
    clean = layered_verdict({})
    assert all(v.status == "ok" and v.reason == "OK" for v in clean.values())
    extra = layered_verdict({"gap": "WARN"}, [Finding("engineering", "ERROR", "X", "fix it")])
    assert extra["overall"].reason == "X"

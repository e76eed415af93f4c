"""Validation benchmark: rows/s of a full symbol-day validation, sampling, threads, increments.

    python bench/validate.py [--repeats 5] [--big-rows 1000000] [--days 8]

Days come from the simulated source (real sessions, five-level book, 500 ms cadence):

* ``full day``: SHFE.au on a normal Wednesday (66,600 rows: night to 02:30) and SHFE.cu
  (55,800 rows), every rule on every row, one thread; median of ``--repeats`` runs.
* ``1M-row day``: SHFE.cu at a 25 ms cadence (about 1.1 M rows) validated with the default
  sampling (field-quality and outlier rules on a 200k-row block sample, coverage exact) and,
  for comparison, with sampling switched off.
* ``range``: ``validate_range`` over ``--days`` days with 1 and 2 threads and 2 processes;
  the loader simulates each day where it runs (standing in for a store read), so loading
  is part of every figure and its cost is printed alone.
* ``incremental``: cost of bringing 31 days up to date when 30 are already validated
  (``pending_days`` + one day) against re-validating all 31.

Figures are printed, never asserted. The machine may be shared: medians, not means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import median_seconds  # noqa: E402

from ghtrader_assets.calendar import trading_days  # noqa: E402
from ghtrader_assets.sources.simulated import SimulatedSource  # noqa: E402
from ghtrader_assets.symbols import MainSymbol  # noqa: E402
from ghtrader_assets.validation import (  # noqa: E402
    ValidationConfig,
    pending_days,
    validate_day,
    validate_range,
)

CU = MainSymbol("SHFE", "cu")
AU = MainSymbol("SHFE", "au")
DAY = dt.date(2025, 3, 5)
# Every figure after one untimed call: imports and pandera's schema caches are not its cost.
warm_median_seconds = functools.partial(median_seconds, warmup=True)


def simulate(symbol: MainSymbol, day: dt.date, cadence_ms: int = 500) -> pd.DataFrame:
    src = SimulatedSource(seed=1, cadence_ms=cadence_ms)
    return src.ticks(src.roll_entry(symbol, day))


def report(label: str, rows: int, seconds: float) -> None:
    print(
        f"{label:<46} {rows:>10,d} rows  {seconds * 1000:>9.1f} ms  {rows / seconds:>12,.0f} rows/s"
    )


def bench_full_day(repeats: int) -> None:
    for symbol in (AU, CU):
        frame = simulate(symbol, DAY)
        seconds = warm_median_seconds(lambda f=frame, s=symbol: validate_day(f, s, DAY), repeats)
        report(f"full day, all rules, 1 thread ({symbol.raw})", len(frame), seconds)


def bench_big_day(rows: int, repeats: int) -> None:
    cadence = max(1, 500 * 55_800 // rows)  # SHFE.cu has 55,800 ticks at 500 ms
    frame = simulate(CU, DAY, cadence_ms=cadence)
    sampled = ValidationConfig()
    result = validate_day(frame, CU, DAY, sampled)
    meta = result.check("field_quality").metadata
    print(
        f"  ({len(frame):,d}-row day at {cadence} ms; sampled={meta['validation_sampled']}, "
        f"sample_rows={meta.get('sample_rows', len(frame)):,})"
    )
    seconds = warm_median_seconds(lambda: validate_day(frame, CU, DAY, sampled), repeats)
    report("1M-row day, sampled field quality", len(frame), seconds)
    exact = sampled.with_overrides({"sample_threshold_rows": len(frame) + 1})
    seconds = warm_median_seconds(lambda: validate_day(frame, CU, DAY, exact), max(1, repeats // 2))
    report("1M-row day, every row (sampling off)", len(frame), seconds)


def bench_range(n_days: int, repeats: int) -> None:
    days = trading_days(dt.date(2025, 3, 3), dt.date(2025, 4, 30))[:n_days]
    loader = functools.partial(simulate, CU)  # picklable: worker processes load their own day
    rows = sum(len(loader(d)) for d in days)
    load = warm_median_seconds(lambda: [loader(d) for d in days], 1)
    print(f"  (loading the {n_days} simulated days alone takes {load * 1000:.0f} ms)")
    base = None
    for executor, workers in (("thread", 1), ("thread", 2), ("process", 2)):
        seconds = warm_median_seconds(
            lambda e=executor, w=workers: validate_range(
                days, loader, CU, max_workers=w, executor=e
            ),
            max(1, repeats // 2),
        )
        base = base or seconds
        report(f"range of {n_days} days, {workers} {executor}(s)", rows, seconds)
        print(f"  speed-up vs 1 thread: {base / seconds:.2f}x")


def bench_incremental(repeats: int) -> None:
    days = trading_days(dt.date(2025, 3, 3), dt.date(2025, 4, 30))[:31]
    frames = {d: simulate(CU, d) for d in days}
    config = ValidationConfig()
    stored = pd.concat(
        [r.summary for r in validate_range(days[:30], frames.__getitem__, CU, config).values()],
        ignore_index=True,
    )

    def incremental() -> None:
        todo = pending_days(days, stored, config)
        validate_range(todo, frames.__getitem__, CU, config, max_workers=1)

    def everything() -> None:
        validate_range(days, frames.__getitem__, CU, config, max_workers=1)

    inc = warm_median_seconds(incremental, repeats)
    full = warm_median_seconds(everything, max(1, repeats // 2))
    print(f"{'incremental: 1 new day after 30 validated':<46} {inc * 1000:>9.1f} ms")
    print(f"{'re-validate all 31 days':<46} {full * 1000:>9.1f} ms   ratio {full / inc:.0f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"validation benchmark, {args.repeats} repeats, median times")
    bench_full_day(args.repeats)
    bench_big_day(args.big_rows, args.repeats)
    bench_range(args.days, args.repeats)
    bench_incremental(args.repeats)


if __name__ == "__main__":
    main()

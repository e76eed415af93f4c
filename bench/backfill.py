"""Parallel backfill speed-up: 1 worker vs N, with a source that has TqSdk-like latency.

Runs a real Dagster backfill of N trading days (one ingest run per day, recorded in a
throwaway Dagster instance) on the embedded store, with the simulated market wrapped in a
fixed per-day download delay (TqSdk shows 5-30 s per symbol-day). Prints wall time per
worker count and the speed-up. Workers stand for the `tqsdk` pool limit: that many days
download at once.

    python bench/backfill.py --days 8 --latency 3 --workers 1 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def run(days: int, latency: float, workers: int, symbols: str) -> tuple[float, int]:
    """Wall seconds to backfill ``days`` trading days with ``workers`` runs at once."""
    with tempfile.TemporaryDirectory(prefix="ghtrader-bench-") as tmp:
        os.environ.update(
            {
                "GHTRADER_DATA_DIR": tmp,
                "DAGSTER_HOME": str(Path(tmp) / "dagster_home"),
                "GHTRADER_SOURCE": "simulated",
                "GHTRADER_STORE": "embedded",
                "GHTRADER_UNIVERSE": symbols,
                "GHTRADER_SOURCE_LATENCY_SECONDS": str(latency),
            }
        )
        import pandas as pd

        from ghtrader_assets import calendar
        from ghtrader_assets.runner import ensure_dagster_home, run_days

        ensure_dagster_home(Path(tmp) / "dagster_home")
        last = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
        chosen = [last]
        while len(chosen) < days:
            chosen.append(calendar.previous_trading_day(chosen[-1]))
        started = time.perf_counter()
        results = run_days(sorted(d.isoformat() for d in chosen), workers)
        elapsed = time.perf_counter() - started
        return elapsed, sum(r.success for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per day download")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--symbols", default="KQ.m@SHFE.cu")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(
        f"backfill of {args.days} trading days, {args.symbols}, "
        f"{args.latency:.1f} s simulated download latency per symbol-day, "
        f"{os.cpu_count()} CPUs"
    )
    timings: dict[int, float] = {}
    for workers in args.workers:
        runs = [run(args.days, args.latency, workers, args.symbols) for _ in range(args.repeats)]
        timings[workers] = statistics.median(t for t, _ in runs)
        ok = min(n for _, n in runs)
        per_day = timings[workers] / args.days
        print(
            f"  workers={workers}: {timings[workers]:6.1f} s wall "
            f"({per_day:.2f} s/day, {3600 / per_day:.0f} days/hour), {ok}/{args.days} runs ok"
        )
    base = timings[args.workers[0]]
    for workers in args.workers[1:]:
        print(f"  speed-up {args.workers[0]} -> {workers} workers: {base / timings[workers]:.2f}x")


if __name__ == "__main__":
    main()

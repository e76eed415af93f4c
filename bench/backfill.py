"""Parallel backfill speed-up: 1 worker vs N, with TqSdk's download shape.

Runs a real Dagster backfill of N trading days (one ingest run per day, recorded in a
throwaway Dagster instance) on the embedded store, with the simulated market wrapped in
:class:`~ghtrader_assets.sources.latency.LatencySource`: a fixed per-day download delay
(TqSdk shows 5-30 s per symbol-day) taken under tqsdk's per-contract cache lock. Workers
stand for the `tqsdk` pool limit: that many days download at once. Consecutive days of one
symbol share their underlying contract, so the lock decides the speed-up:

* ``shared``: tqsdk's default cache (``~/.tqsdk``), one for every worker: what a user of
  the bare library gets;
* ``per_source``: one private cache per source, as ``TqSdkSource`` does: what users of
  this project get;
* ``none``: a plain delay (the figure this benchmark printed before it modelled the lock).

    python bench/backfill.py --days 8 --latency 3 --workers 1 4 --lock shared per_source
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds of this process and every reaped descendant (workers, their helpers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(
    days: int, latency: float, workers: int, symbols: str, lock: str
) -> tuple[float, int, float]:
    """Wall seconds to backfill ``days`` trading days with ``workers`` runs at once, the runs
    that succeeded, and the CPU seconds the backfill took (parent and workers)."""
    with tempfile.TemporaryDirectory(prefix="ghtrader-bench-") as tmp:
        os.environ.update(
            {
                "GHTRADER_DATA_DIR": tmp,
                "DAGSTER_HOME": str(Path(tmp) / "dagster_home"),
                "GHTRADER_SOURCE": "simulated",
                "GHTRADER_STORE": "embedded",
                "GHTRADER_UNIVERSE": symbols,
                "GHTRADER_SOURCE_LATENCY_SECONDS": str(latency),
                "GHTRADER_SOURCE_LATENCY_LOCK": lock,
                "GHTRADER_SOURCE_LATENCY_LOCK_DIR": str(Path(tmp) / "tqsdk_default_cache"),
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
        started, cpu = time.perf_counter(), _cpu()
        results = run_days(sorted(d.isoformat() for d in chosen), workers)
        elapsed = time.perf_counter() - started
        return elapsed, sum(r.success for r in results), _cpu() - cpu


def underlyings(days: int, symbols: str) -> str:
    """How the chosen days split over underlying contracts (what the shared lock sees)."""
    import pandas as pd

    from ghtrader_assets import calendar
    from ghtrader_assets.sources.simulated import SimulatedSource
    from ghtrader_assets.symbols import parse_universe

    last = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    chosen = [last]
    while len(chosen) < days:
        chosen.append(calendar.previous_trading_day(chosen[-1]))
    source = SimulatedSource(0)
    counts: dict[str, int] = {}
    for symbol in parse_universe(symbols):
        for day in chosen:
            contract = source.roll_entry(symbol, day).underlying
            counts[contract] = counts.get(contract, 0) + 1
    return ", ".join(f"{c} x{n}" for c, n in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per day download")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--symbols", default="KQ.m@SHFE.cu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--lock",
        nargs="+",
        default=["shared", "per_source"],
        choices=["none", "shared", "per_source"],
        help="cache-lock model(s): tqsdk's shared cache, one cache per source, or none",
    )
    args = parser.parse_args()
    print(
        f"backfill of {args.days} trading days, {args.symbols}, "
        f"{args.latency:.1f} s download per symbol-day under tqsdk's per-contract lock, "
        f"{os.cpu_count()} CPUs; days per underlying: {underlyings(args.days, args.symbols)}"
    )
    for lock in args.lock:
        print(f" lock={lock}")
        timings: dict[int, float] = {}
        for workers in args.workers:
            runs = [
                run(args.days, args.latency, workers, args.symbols, lock)
                for _ in range(args.repeats)
            ]
            timings[workers] = statistics.median(t for t, _, _ in runs)
            ok = min(n for _, n, _ in runs)
            cpu_per_day = statistics.median(c for _, _, c in runs) / args.days
            per_day = timings[workers] / args.days
            print(
                f"  workers={workers}: {timings[workers]:6.1f} s wall "
                f"({per_day:.2f} s/day, {3600 / per_day:.0f} days/hour), {ok}/{args.days} runs ok, "
                f"CPU {cpu_per_day:.2f} s/day; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        base = timings[args.workers[0]]
        for workers in args.workers[1:]:
            print(
                f"  speed-up {args.workers[0]} -> {workers} workers ({lock}): "
                f"{base / timings[workers]:.2f}x"
            )


if __name__ == "__main__":
    main()

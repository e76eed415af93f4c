"""Coverage query latency: P50/P95/P99 of ``store.coverage(symbols)``, cached and uncached.

    python bench/query.py [--symbols 5] [--days 20] [--rows 20000] [--queries 200]

Fills a store with ``--symbols`` x ``--days`` tick partitions of ``--rows`` rows, then
times ``--queries`` calls of ``coverage(all symbols)``:

* **uncached**: a store whose cache never hits (every call reads the data: the partition
  catalog's per-symbol aggregates for the embedded store, one SQLite query; the coverage
  query for QuestDB);
* **cached**: the same call answered from :class:`~ghtrader_assets.stores.cache.CoverageCache`
  after one warm-up call.

The embedded store always runs (in a temporary directory); QuestDB runs when
``GHTRADER_QDB_HOST`` is set, in tables named ``ghtrader_bench_<uuid8>_*`` that are dropped
afterwards. Figures are printed, never asserted. ``bench/scale.py`` measures the same
calls against 10k-100k partitions.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ghtrader_assets.calendar import TZ, trading_days  # noqa: E402
from ghtrader_assets.schema import BOOK_COLUMNS, TICKS, conform  # noqa: E402
from ghtrader_assets.stores.base import TickStore  # noqa: E402

SYMBOLS = (
    "KQ.m@SHFE.cu",
    "KQ.m@SHFE.au",
    "KQ.m@SHFE.ag",
    "KQ.m@DCE.m",
    "KQ.m@CZCE.SR",
    "KQ.m@SHFE.al",
    "KQ.m@SHFE.zn",
    "KQ.m@SHFE.rb",
    "KQ.m@INE.sc",
    "KQ.m@DCE.i",
)


def day_frame(symbol: str, day: str, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` ticks of one symbol-day from 09:00 Shanghai at a 500 ms cadence."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(pd.Timestamp(f"{day} 09:00", tz=TZ), periods=rows, freq="500ms")
    ts = ts.tz_convert("UTC").as_unit("ns")
    last = 50_000 + np.cumsum(rng.choice([-1.0, 0.0, 1.0], rows)) * 10
    frame: dict[str, object] = {
        "symbol": symbol,
        "trading_day": day,
        "ts": ts,
        "datetime": ts.asi8,
        "id": np.arange(rows, dtype=np.int64),
        "underlying": "X",
        "source": "bench",
        "last_price": last,
        "volume": np.cumsum(rng.poisson(5, rows)).astype(float),
    }
    for col in BOOK_COLUMNS:
        frame[col] = last if "price" in col else rng.integers(1, 100, rows).astype(float)
    return conform(pd.DataFrame(frame), TICKS)


def fill(store: TickStore, symbols: list[str], days: list[str], rows: int) -> float:
    """Write every partition; returns seconds taken."""
    start = time.perf_counter()
    for i, sym in enumerate(symbols):
        for j, day in enumerate(days):
            store.write_partition(TICKS, sym, day, day_frame(sym, day, rows, i * 1000 + j))
    return time.perf_counter() - start


def latencies(call: Callable[[], object], n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call()
        out[i] = time.perf_counter() - start
    return out * 1e3


def report(kind: str, label: str, ms: np.ndarray) -> None:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    print(
        f"  {kind:<9} {label:<9} p50 {p50:9.3f} ms  p95 {p95:9.3f} ms  p99 {p99:9.3f} ms"
        f"  (n={len(ms)})"
    )


def run(kind: str, cached: TickStore, uncached: TickStore, symbols: list[str], n: int) -> None:
    first = uncached.coverage(symbols)
    if not first["n_days"].gt(0).all():
        raise SystemExit(f"{kind}: the fill did not reach the store:\n{first}")
    report(kind, "uncached", latencies(lambda: uncached.coverage(symbols), n))
    cached.coverage(symbols)  # warm-up fills the cache
    report(kind, "cached", latencies(lambda: cached.coverage(symbols), n))


def bench_embedded(symbols: list[str], days: list[str], rows: int, n: int) -> None:
    from ghtrader_assets.stores.embedded import EmbeddedStore

    with tempfile.TemporaryDirectory(prefix="ghtrader-bench-query-") as tmp:
        writer = EmbeddedStore(Path(tmp) / "store")
        secs = fill(writer, symbols, days, rows)
        print(f"embedded: filled {len(symbols) * len(days)} partitions in {secs:.1f} s")
        cached = EmbeddedStore(Path(tmp) / "store", cache_ttl_seconds=None)
        uncached = EmbeddedStore(Path(tmp) / "store", cache=False)
        try:
            run("embedded", cached, uncached, symbols, n)
        finally:
            for store in (writer, cached, uncached):
                store.close()


def bench_questdb(symbols: list[str], days: list[str], rows: int, n: int) -> None:
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    base = dataclasses.replace(
        QuestDBSettings.from_env(), table_prefix=f"ghtrader_bench_{uuid.uuid4().hex[:8]}_"
    )
    cached = QuestDBStore(dataclasses.replace(base, cache_ttl=None))
    uncached = QuestDBStore(dataclasses.replace(base, cache_ttl=0.0))
    try:
        secs = fill(cached, symbols, days, rows)
        print(
            f"questdb ({base.host}, {cached.transport}): filled "
            f"{len(symbols) * len(days)} partitions in {secs:.1f} s"
        )
        run("questdb", cached, uncached, symbols, n)
    finally:
        for spec in (TICKS, PARTITION_LOG):
            cached.drop_table(spec)
        cached.close()
        uncached.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5, help=f"1-{len(SYMBOLS)}")
    parser.add_argument("--days", type=int, default=20, help="trading days per symbol")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per partition")
    parser.add_argument("--queries", type=int, default=200, help="timed calls per case")
    args = parser.parse_args(argv)
    if not 1 <= args.symbols <= len(SYMBOLS) or min(args.days, args.rows, args.queries) < 1:
        parser.error("--symbols must be 1-10; --days, --rows and --queries positive")
    symbols = list(SYMBOLS[: args.symbols])
    days = [
        d.isoformat()
        for d in trading_days(pd.Timestamp("2025-01-02").date(), pd.Timestamp("2026-12-31").date())
    ]
    days = days[: args.days]
    print(
        f"coverage({len(symbols)} symbols) over {len(days)} days x {args.rows} rows each, "
        f"{args.queries} calls per case"
    )
    bench_embedded(symbols, days, args.rows, args.queries)
    if os.environ.get("GHTRADER_QDB_HOST", "").strip():
        bench_questdb(symbols, days, args.rows, args.queries)
    else:
        print("questdb: skipped (GHTRADER_QDB_HOST is not set)")


if __name__ == "__main__":
    main()

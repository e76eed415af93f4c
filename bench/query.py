"""Coverage query latency: P50/P95/P99 of ``store.coverage(symbols)``, cached and uncached.

    python bench/query.py [--symbols 5] [--days 20] [--rows 20000] [--queries 200]

Fills a store with ``--symbols`` x ``--days`` tick partitions of ``--rows`` rows, then
times ``--queries`` calls of ``coverage(all symbols)``:

* **uncached**: a store whose cache never hits (every call reads the data: the partition
  catalog's per-symbol aggregates for the embedded store, one SQLite query; one grouped
  query on the partition log for QuestDB);
* **cached**: the same call answered from :class:`~ghtrader_assets.stores.cache.CoverageCache`
  after one warm-up call.

The embedded store always runs (in a temporary directory); QuestDB runs when
``GHTRADER_QDB_HOST`` is set, in tables named ``ghtrader_bench_<uuid8>_*`` that are dropped
afterwards. With a server it also runs the **universe** case: uncached coverage of
``--universe-symbols`` (80) symbols over ``--universe-years`` (5) years of partition-log
rows (~97k rows, as a production log holds them; written directly, no ticks needed, since
QuestDB coverage reads only the log). Figures are printed, never asserted.
``bench/scale.py`` measures the embedded store's metadata calls against 10k-100k
partitions.
"""

from __future__ import annotations

import argparse
import contextlib
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
        with contextlib.ExitStack() as closing:  # closed even if a DROP fails
            closing.callback(uncached.close)
            closing.callback(cached.close)
            for spec in (TICKS, PARTITION_LOG):
                cached.drop_table(spec)


def universe_symbols(n: int) -> list[str]:
    """The real products first, then synthetic names up to ``n`` (the log does not care)."""
    from ghtrader_assets.products import PRODUCTS

    real = [f"KQ.m@{ex}.{product}" for ex, product in PRODUCTS]
    return (real + [f"KQ.m@SHFE.x{i:03d}" for i in range(n)])[:n]


def log_rows(store: TickStore, symbols: list[str], days: list[str]) -> pd.DataFrame:
    """Partition-log rows for every (symbol, day): what years of daily ingestion leave."""
    from ghtrader_assets.calendar import day_start_utc
    from ghtrader_assets.stores.questdb.ddl import WRITE_ID_COLUMN
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    starts = pd.DatetimeIndex([day_start_utc(pd.Timestamp(d).date()) for d in days])
    n_days = len(days)
    frame = pd.DataFrame(
        {
            "ts": np.tile(starts.as_unit("us"), len(symbols)),
            "table_name": store.table_name(TICKS),
            "symbol": np.repeat(symbols, n_days),
            "trading_day": np.tile(days, len(symbols)),
            "rows": np.int64(60_000),
            "written_at": pd.Timestamp.now(tz="UTC").floor("us"),
            "first_ts": np.tile((starts - pd.Timedelta(hours=6)).as_unit("us"), len(symbols)),
            "last_ts": np.tile((starts + pd.Timedelta(hours=15)).as_unit("us"), len(symbols)),
            WRITE_ID_COLUMN: np.int64(1),
        }
    )
    return frame[[*PARTITION_LOG.columns, WRITE_ID_COLUMN]]


def bench_questdb_universe(n_symbols: int, years: int, n: int) -> None:
    """Uncached coverage for the whole universe over years of partition-log rows."""
    from questdb import Sender

    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.reader import wait_for_wal
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    base = dataclasses.replace(
        QuestDBSettings.from_env(),
        table_prefix=f"ghtrader_bench_{uuid.uuid4().hex[:8]}_",
        cache_ttl=0.0,
    )
    store = QuestDBStore(base)
    symbols = universe_symbols(n_symbols)
    end = pd.Timestamp("2026-11-30").date()
    days = [d.isoformat() for d in trading_days(end.replace(year=end.year - years), end)]
    try:
        store.ensure_table(TICKS)
        log = store.ensure_table(PARTITION_LOG)
        frame = log_rows(store, symbols, days)
        with Sender.from_conf(
            base.ilp_conf(), max_buf_size=512 * 2**20, **base.auth_kwargs()
        ) as sender:
            sender.dataframe(
                frame, table_name=log, symbols=["table_name", "symbol", "trading_day"], at="ts"
            )
            sender.flush()
        wait_for_wal(store.pg, log, 120.0)
        print(
            f"questdb universe: {len(symbols)} symbols x {len(days)} days = {len(frame)} "
            "partition-log rows"
        )
        first = store.coverage(symbols)
        if not (first["n_days"] == len(days)).all():
            raise SystemExit(f"questdb universe: the log fill did not land:\n{first}")
        report("questdb", "universe", latencies(lambda: store.coverage(symbols), n))
    finally:
        with contextlib.ExitStack() as closing:  # closed even if a DROP fails
            closing.callback(store.close)
            for spec in (TICKS, PARTITION_LOG):
                store.drop_table(spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5, help=f"1-{len(SYMBOLS)}")
    parser.add_argument("--days", type=int, default=20, help="trading days per symbol")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per partition")
    parser.add_argument("--queries", type=int, default=200, help="timed calls per case")
    parser.add_argument("--universe-symbols", type=int, default=80)
    parser.add_argument("--universe-years", type=int, default=5)
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
        bench_questdb_universe(args.universe_symbols, args.universe_years, args.queries)
    else:
        print("questdb: skipped (GHTRADER_QDB_HOST is not set)")


if __name__ == "__main__":
    main()

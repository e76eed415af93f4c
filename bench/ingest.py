"""Ingest benchmark: rows/s of a store's write path vs the bare client writing the same frame.

    python bench/ingest.py --store embedded [--rows 60000] [--repeats 7] [--workdir DIR]

One tick day (default 60k rows x 34 columns, seeded, realistic values so compression behaves
as on real data) is written ``--repeats`` times by each path; the median time is reported.

* ``embedded``: ``EmbeddedStore.write_partition`` (conform, partition checks, lock, temp
  file, fsync, atomic rename, cache invalidation) vs ``pyarrow.parquet.write_table`` of the
  same frame, both with pyarrow's defaults and with the store's settings (zstd, row groups
  of ``ROW_GROUP_ROWS``); the latter isolates the store's own overhead. The bare paths
  include ``pa.Table.from_pandas`` since both start from the same DataFrame.
* ``questdb`` (needs ``GHTRADER_QDB_HOST`` and the other ``GHTRADER_QDB_*`` settings): our
  ``QuestDBStore.write_partition`` over ILP/HTTP and over QWP (conform, checks, batched
  send, WAL-apply wait, row-count verification, partition log) vs the bare clients writing
  the same frame into an identical table: ``Sender.dataframe`` + one flush (ILP/HTTP) and
  ``questdb.connect().dataframe`` (QWP). Also times ``read_partition`` over QWP and over
  PGWire. Tables are named ``ghtrader_bench_<uuid8>_*`` and dropped afterwards.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ghtrader_assets.schema import TICKS, conform  # noqa: E402
from ghtrader_assets.stores.embedded import (  # noqa: E402
    COMPRESSION,
    ROW_GROUP_ROWS,
    EmbeddedStore,
)

SYMBOL = "KQ.m@SHFE.cu"
DAY = "2024-03-05"


def tick_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A tick day for SHFE cu, conformed to TICKS as a source would deliver it: 500 ms
    cadence with occasional skipped ticks, a random walk on the 10-yuan tick grid, a
    five-level book, cumulative volume/amount/open interest."""
    rng = np.random.default_rng(seed)
    tick = 10.0
    steps = rng.choice([500, 500, 500, 1000], size=rows) * 1_000_000  # ns
    ts = pd.DatetimeIndex(
        pd.Timestamp(f"{DAY} 21:00", tz="Asia/Shanghai").tz_convert("UTC")
        - pd.Timedelta(days=1)
        + pd.to_timedelta(np.cumsum(steps) + rng.integers(0, 1000, rows), unit="ns")
    ).as_unit("ns")
    last = 68_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=rows)) * tick
    volume = np.cumsum(rng.poisson(6, rows)).astype(float)
    frame: dict[str, object] = {
        "symbol": SYMBOL,
        "trading_day": DAY,
        "ts": ts,
        "datetime": ts.asi8,
        "id": np.arange(rows, dtype=np.int64) + 4_000_000,
        "underlying": "SHFE.cu2404",
        "source": "bench",
        "last_price": last,
        "highest": np.maximum.accumulate(last),
        "lowest": np.minimum.accumulate(last),
        "average": np.round(68_000 + np.cumsum(rng.normal(0, 0.2, rows)), 2),
        "volume": volume,
        "amount": volume * 68_000 * 5,
        "open_interest": 190_000 + np.cumsum(rng.integers(-3, 4, rows)).astype(float),
    }
    spread = rng.choice([1, 1, 1, 2], size=rows) * tick
    for lvl in range(1, 6):
        frame[f"bid_price{lvl}"] = last - (lvl - 1) * tick
        frame[f"ask_price{lvl}"] = last + spread + (lvl - 1) * tick
        frame[f"bid_volume{lvl}"] = rng.integers(1, 200, rows).astype(float)
        frame[f"ask_volume{lvl}"] = rng.integers(1, 200, rows).astype(float)
    return conform(pd.DataFrame(frame), TICKS)


def interleaved_medians(paths: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per path. Paths run in alternating rounds (order rotated each round)
    so load from other processes on a shared machine hits every path alike."""
    for fn in paths.values():
        fn()  # warm-up: first-call imports, directory creation, page cache
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_embedded(frame: pd.DataFrame, repeats: int, workdir: Path) -> None:
    """Store write path vs bare pyarrow, same frame, same disk."""
    store = EmbeddedStore(workdir / "store")
    bare_default = workdir / "bare_default.parquet"
    bare_same = workdir / "bare_same.parquet"

    def ours() -> None:
        store.write_partition(TICKS, SYMBOL, DAY, frame)

    def bare(path: Path, **options: object) -> Callable[[], None]:
        def run() -> None:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, **options)

        return run

    same = f"pq.write_table ({COMPRESSION}, row groups {ROW_GROUP_ROWS})"
    paths = {
        "EmbeddedStore.write_partition": ours,
        "pq.write_table (pyarrow defaults)": bare(bare_default),
        same: bare(bare_same, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS),
    }
    timings = interleaved_medians(paths, repeats)
    sizes = {
        "EmbeddedStore.write_partition": store.partition_path(TICKS, SYMBOL, DAY).stat().st_size,
        "pq.write_table (pyarrow defaults)": bare_default.stat().st_size,
        same: bare_same.stat().st_size,
    }
    store.close()

    rows = len(frame)
    print(f"embedded ingest: {rows} rows x {frame.shape[1]} cols, median of {repeats}")
    for name, secs in timings.items():
        print(
            f"  {name:<45} {secs * 1e3:8.1f} ms  {rows / secs / 1e6:6.2f} M rows/s  "
            f"{sizes[name] / 1e6:6.2f} MB"
        )
    ours_s, default_s, same_s = timings.values()
    print(f"  ratio store / bare (same settings): {ours_s / same_s:.2f}")
    print(f"  ratio store / bare (pyarrow defaults): {ours_s / default_s:.2f}")


def bench_questdb(frame: pd.DataFrame, repeats: int, workdir: Path) -> None:
    """QuestDBStore write path (ILP/HTTP and QWP) vs the bare clients, same frame."""
    import dataclasses
    import os
    import uuid

    import questdb
    from questdb import Sender

    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.ddl import create_table_sql
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    if not os.environ.get("GHTRADER_QDB_HOST", "").strip():
        raise SystemExit(
            "bench/ingest.py --store questdb: set GHTRADER_QDB_HOST (and GHTRADER_QDB_*)"
        )
    base = dataclasses.replace(
        QuestDBSettings.from_env(), table_prefix=f"ghtrader_bench_{uuid.uuid4().hex[:8]}_"
    )
    ilp = QuestDBStore(dataclasses.replace(base, transport="ilp_http"))
    qwp = QuestDBStore(dataclasses.replace(base, transport="auto"))
    bare_table = f"{base.table_prefix}bare_ticks"
    ilp.pg.execute_ddl(create_table_sql(TICKS, bare_table))
    sender = Sender.from_conf(
        base.ilp_conf(), max_buf_size=max(100 * 2**20, len(frame) * 2048), **base.auth_kwargs()
    )
    sender.establish()
    symbols = list(TICKS.symbol_columns)

    def bare_ilp() -> None:
        sender.dataframe(frame, table_name=bare_table, symbols=symbols, at="ts")
        sender.flush(transactional=True)

    paths: dict[str, Callable[[], object]] = {
        "QuestDBStore.write_partition (ILP/HTTP)": lambda: ilp.write_partition(
            TICKS, SYMBOL, DAY, frame
        ),
        "bare Sender.dataframe + flush (ILP/HTTP)": bare_ilp,
    }
    db = None
    if qwp.transport == "qwp":
        db = questdb.connect(host=base.host, port=base.ilp_port, tls=base.tls, **base.auth_kwargs())
        frame_us = frame.assign(ts=frame["ts"].dt.floor("us").astype("datetime64[us, UTC]"))
        paths["QuestDBStore.write_partition (QWP)"] = lambda: qwp.write_partition(
            TICKS, SYMBOL, DAY, frame
        )
        paths["bare connect().dataframe (QWP)"] = lambda: db.dataframe(
            frame_us, table_name=bare_table, symbols=symbols, at="ts"
        )
    else:
        print("  (server offers no QWP: QWP paths skipped)")
    try:
        timings = interleaved_medians(paths, repeats)
        reads = {"read_partition (PGWire binary)": lambda: ilp.read_partition(TICKS, SYMBOL, DAY)}
        if db is not None:
            reads["read_partition (QWP to_pandas)"] = lambda: qwp.read_partition(TICKS, SYMBOL, DAY)
        read_timings = interleaved_medians(reads, repeats)
    finally:
        sender.close()
        if db is not None:
            db.close()
        for spec in (TICKS, PARTITION_LOG):
            ilp.drop_table(spec)
        ilp.pg.execute_ddl(f'DROP TABLE IF EXISTS "{bare_table}"')
        ilp.close()
        qwp.close()

    rows = len(frame)
    print(f"questdb ingest ({base.host}): {rows} rows x {frame.shape[1]} cols, median of {repeats}")
    print("  (store paths include the WAL-apply wait, row verification and partition log)")
    for name, secs in {**timings, **read_timings}.items():
        print(f"  {name:<45} {secs * 1e3:8.1f} ms  {rows / secs / 1e6:6.2f} M rows/s")
    names = list(timings)
    print(f"  ratio store / bare (ILP/HTTP): {timings[names[0]] / timings[names[1]]:.2f}")
    if db is not None:
        print(f"  ratio store / bare (QWP): {timings[names[2]] / timings[names[3]]:.2f}")
        print(f"  store QWP / store ILP/HTTP: {timings[names[2]] / timings[names[0]]:.2f}")


MODES: dict[str, Callable[[pd.DataFrame, int, Path], None]] = {
    "embedded": bench_embedded,
    "questdb": bench_questdb,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=sorted(MODES), default="embedded")
    parser.add_argument("--rows", type=int, default=60_000, help="rows in the tick day")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch dir (default: temp)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be positive")

    frame = tick_frame(args.rows, args.seed)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="ghtrader-bench-") as tmp:
        MODES[args.store](frame, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()

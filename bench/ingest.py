"""Ingest benchmark: rows/s of a store's write path vs the bare client writing the same frame.

    python bench/ingest.py --store embedded [--rows 60000] [--repeats 7] [--workdir DIR]

One tick day (default 60k rows x 34 columns, seeded, realistic values so compression behaves
as on real data) is written ``--repeats`` times by each path; the median time is reported.

* ``embedded``: ``EmbeddedStore.write_partition`` (conform, partition checks, lock, temp
  file, fsync, atomic rename, cache invalidation) vs ``pyarrow.parquet.write_table`` of the
  same frame, both with pyarrow's defaults and with the store's settings (zstd, row groups
  of ``ROW_GROUP_ROWS``); the latter isolates the store's own overhead. The bare paths
  include ``pa.Table.from_pandas`` since both start from the same DataFrame.
* ``questdb``: first, always, the store's own share against the in-memory stand-in with a
  transport that costs nothing per row: ``write_partition`` of a new day and of a re-write,
  the frame preparation alone, ``normalise_read`` alone and one ``settle``. Then, when
  ``GHTRADER_QDB_HOST`` (+ ``GHTRADER_QDB_PASSWORD``) names a server: our
  ``write_partition`` over ILP/HTTP and over QWP vs the bare clients writing the same
  frames (one new trading day per call, as a backfill) into identical tables:
  ``Sender.dataframe`` + one flush and ``questdb.connect().dataframe``, with a ratio line
  per transport; ``settle`` once per store (the WAL wait and verification a step pays once
  before its reads); ``read_partition`` over QWP vs a bare ``query().to_pandas()`` of the
  same statement (ratio line) and over PGWire. Tables are named ``ghtrader_bench_<uuid8>_*``
  and dropped afterwards.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
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


def tick_frame(rows: int, seed: int = 0, day: str = DAY) -> pd.DataFrame:
    """A tick day for SHFE cu, conformed to TICKS as a source would deliver it: 500 ms
    cadence with occasional skipped ticks, a random walk on the 10-yuan tick grid, a
    five-level book, cumulative volume/amount/open interest."""
    rng = np.random.default_rng(seed)
    tick = 10.0
    steps = rng.choice([500, 500, 500, 1000], size=rows) * 1_000_000  # ns
    ts = pd.DatetimeIndex(
        pd.Timestamp(f"{day} 21:00", tz="Asia/Shanghai").tz_convert("UTC")
        - pd.Timedelta(days=1)
        + pd.to_timedelta(np.cumsum(steps) + rng.integers(0, 1000, rows), unit="ns")
    ).as_unit("ns")
    last = 68_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=rows)) * tick
    volume = np.cumsum(rng.poisson(6, rows)).astype(float)
    frame: dict[str, object] = {
        "symbol": SYMBOL,
        "trading_day": day,
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


def interleaved_medians(
    paths: dict[str, Callable[[], object]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per path. Paths run in alternating rounds (order rotated each round)
    so load from other processes on a shared machine hits every path alike. ``clock`` is
    wall time by default; ``time.process_time`` (this process's CPU time) suits paths with
    no I/O on a machine whose cores are shared with others."""
    for fn in paths.values():
        fn()  # warm-up: first-call imports, directory creation, page cache
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = clock()
            paths[name]()
            times[name].append(clock() - start)
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


def trading_day_frames(rows: int, n: int, seed: int) -> list[tuple[str, pd.DataFrame]]:
    """``n`` tick days on consecutive trading days from ``DAY`` (a backfill's shape)."""
    from ghtrader_assets.calendar import trading_days

    start = pd.Timestamp(DAY).date()
    days = [d.isoformat() for d in trading_days(start, start + pd.Timedelta(days=3 * n + 14))]
    return [(d, tick_frame(rows, seed + i, d)) for i, d in enumerate(days[:n])]


def cycling(items: list) -> Callable[[], object]:
    it = itertools.cycle(items)
    return lambda: next(it)


def bench_questdb(frame: pd.DataFrame, repeats: int, workdir: Path) -> None:
    """Store's own share on the stand-in (always), then the live comparison when
    ``GHTRADER_QDB_HOST`` names a server."""
    import os

    bench_questdb_standin(frame, repeats)
    if not os.environ.get("GHTRADER_QDB_HOST", "").strip():
        print("questdb live: skipped (set GHTRADER_QDB_HOST, and GHTRADER_QDB_PASSWORD if set)")
        return
    bench_questdb_live(frame, repeats)


def bench_questdb_standin(frame: pd.DataFrame, repeats: int) -> None:
    """What the store itself adds per day, with a transport that costs nothing per row.

    The sink accepts QWP frames and keeps only their row counts (so ``settle`` can verify);
    PGWire statements go to the in-memory stand-in. So the figures are the store's frame
    work, SQL building and bookkeeping, none of the server's or the network's time.
    """
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.frames import normalise_read, prepare_for_write
    from ghtrader_assets.stores.questdb.queries import parse_day
    from ghtrader_assets.stores.questdb.writer import micros
    from ghtrader_assets_tests.fake_questdb import FakeQuestDB

    class Sink(FakeQuestDB):
        """Stand-in whose tick writes cost nothing: counts per (day, write id) only."""

        def __init__(self) -> None:
            super().__init__()
            self.counts: dict[tuple[str, str, int], int] = {}

        def qwp(self) -> object:
            sink = self

            class Handle:
                def dataframe(self, df: pd.DataFrame, *, table_name: str, **_: object) -> None:
                    key = (table_name, str(df["trading_day"].iat[0]), int(df["write_id"].iat[0]))
                    sink.counts[key] = sink.counts.get(key, 0) + len(df)
                    sink.sequencer += 1
                    sink.applied = sink.sequencer

                def close(self, timeout: float | None = None) -> None:
                    pass

            return Handle()

        def fetch(self, query):  # type: ignore[no-untyped-def]
            if 'GROUP BY "trading_day", "write_id"' in query.sql:
                table = query.sql.split(' FROM "')[1].split('"')[0]
                return [(d, w, n) for (t, d, w), n in self.counts.items() if t == table]
            return super().fetch(query)

        def execute(self, query):  # type: ignore[no-untyped-def]
            # Nothing to retire (the sink keeps no rows), and the partition-log INSERT is
            # one row a server takes in microseconds: both only advance the sequencer.
            if query.sql.startswith(("UPDATE", "INSERT")):
                self.statements.append(query.sql)
                self.sequencer += 1
                self.applied = self.sequencer
                return
            super().execute(query)

    db = Sink()
    store = QuestDBStore(
        QuestDBSettings(host="stand-in", transport="qwp", cache_ttl=None),
        sql=db,
        sender_factory=db.sender,
        qwp_connect=lambda _s: db.qwp(),
        sleep=lambda _s: None,
    )
    store.ensure_tables([TICKS])
    days = trading_day_frames(len(frame), repeats + 1, seed=100)
    new_day = cycling(days)
    day = parse_day(DAY)
    where = "bench"

    def prepare() -> None:
        prepared = prepare_for_write(TICKS, SYMBOL, day, frame, pruned=True, where=where)
        micros(prepared.assign(write_id=1))

    raw = micros(frame).assign(
        symbol=pd.Categorical(frame["symbol"]),
        trading_day=pd.Categorical(frame["trading_day"]),
        underlying=pd.Categorical(frame["underlying"]),
        source=pd.Categorical(frame["source"]),
    )
    raw["ts"] = raw["ts"].dt.tz_localize(None)  # as QWP's to_pandas hands it over

    def write_new() -> None:
        d, f = new_day()
        store.write_partition(TICKS, SYMBOL, d, f)  # type: ignore[arg-type]

    paths = {
        "write_partition, first write of a day": write_new,
        "write_partition, re-write of the day": lambda: store.write_partition(
            TICKS, SYMBOL, DAY, frame
        ),
        "frame preparation alone (checks, write id, us)": prepare,
        "normalise_read alone (QWP-shaped frame)": lambda: normalise_read(TICKS, raw),
    }
    cpu = interleaved_medians(paths, repeats, clock=time.process_time)
    wall = interleaved_medians(paths, repeats)
    started = time.perf_counter()
    store.settle()
    settle = time.perf_counter() - started
    store.close()
    rows = len(frame)
    print(
        f"questdb stand-in (transport costs nothing per row): {rows} rows x {frame.shape[1]} "
        f"cols, median of {repeats}; CPU time of this process, then wall time"
    )
    for name in paths:
        print(f"  {name:<50} {cpu[name] * 1e3:8.2f} ms CPU {wall[name] * 1e3:8.2f} ms wall")
    label = f"settle (verify {len(days)} days, stand-in)"
    print(f"  {label:<50} {'':>15} {settle * 1e3:8.2f} ms wall")


def bench_questdb_live(frame: pd.DataFrame, repeats: int) -> None:
    """QuestDBStore write path (QWP and ILP/HTTP) vs the bare clients on the same frames,
    and read_partition vs a bare QWP query of the same rows."""
    import dataclasses
    import uuid

    import questdb
    from questdb import Sender

    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb import queries as q
    from ghtrader_assets.stores.questdb.ddl import create_table_sql
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG
    from ghtrader_assets.stores.questdb.writer import micros

    env = QuestDBSettings.from_env()
    run = uuid.uuid4().hex[:8]
    ilp = QuestDBStore(
        dataclasses.replace(env, transport="ilp_http", table_prefix=f"ghtrader_bench_{run}_i_")
    )
    qwp = QuestDBStore(
        dataclasses.replace(env, transport="auto", table_prefix=f"ghtrader_bench_{run}_q_")
    )
    bare_ilp_table, bare_qwp_table = f"ghtrader_bench_{run}_bare_i", f"ghtrader_bench_{run}_bare_q"
    for table in (bare_ilp_table, bare_qwp_table):
        ilp.pg.execute_ddl(create_table_sql(TICKS, table))
    sender = Sender.from_conf(
        env.ilp_conf(), max_buf_size=max(100 * 2**20, len(frame) * 2048), **env.auth_kwargs()
    )
    sender.establish()
    symbols = list(TICKS.symbol_columns)
    days = trading_day_frames(len(frame), repeats + 1, seed=200)
    # The bare QWP client gets its frames with microsecond timestamps already (the store
    # converts inside its timed path).
    days_us = [(d, micros(f)) for d, f in days]

    def store_path(store: QuestDBStore) -> Callable[[], None]:
        nxt = cycling(days)

        def run_once() -> None:
            d, f = nxt()  # type: ignore[misc]
            store.write_partition(TICKS, SYMBOL, d, f)

        return run_once

    nxt_ilp = cycling(days)

    def bare_ilp() -> None:
        _, f = nxt_ilp()  # type: ignore[misc]
        sender.dataframe(f, table_name=bare_ilp_table, symbols=symbols, at="ts")
        sender.flush(transactional=True)

    paths: dict[str, Callable[[], object]] = {
        "store write_partition (ILP/HTTP)": store_path(ilp),
        "bare Sender.dataframe + flush (ILP/HTTP)": bare_ilp,
    }
    db = None
    if qwp.transport == "qwp":
        db = questdb.connect(host=env.host, port=env.ilp_port, tls=env.tls, **env.auth_kwargs())
        nxt_us = cycling(days_us)

        def bare_qwp() -> None:
            _, f = nxt_us()  # type: ignore[misc]
            db.dataframe(f, table_name=bare_qwp_table, symbols=symbols, at="ts")

        paths["store write_partition (QWP)"] = store_path(qwp)
        paths["bare connect().dataframe (QWP)"] = bare_qwp
        paths["store re-write of one day (QWP)"] = lambda: qwp.write_partition(
            TICKS, SYMBOL, DAY, frame
        )
    else:
        print("  (server offers no QWP: QWP paths skipped)")
    reader = qwp if db is not None else ilp
    try:
        timings = interleaved_medians(paths, repeats)
        settles = {}
        for name, store in (("ILP/HTTP", ilp), ("QWP", qwp)):
            started = time.perf_counter()
            store.settle()
            settles[name] = time.perf_counter() - started
        read_day = days[0][0]
        select = q.select_partition(
            TICKS, reader.table_name(TICKS), SYMBOL, q.parse_day(read_day), pruned=True
        )
        reads: dict[str, Callable[[], object]] = {
            "store read_partition (PGWire binary)": lambda: ilp.read_partition(
                TICKS, SYMBOL, read_day
            ),
        }
        if db is not None:
            reads["store read_partition (QWP)"] = lambda: qwp.read_partition(
                TICKS, SYMBOL, read_day
            )
            reads["bare query().to_pandas() (QWP)"] = lambda: db.query(
                select.qwp_sql(), list(select.params)
            ).to_pandas()
        read_timings = interleaved_medians(reads, repeats)
    finally:
        # Every handle is closed even when a clean-up statement fails (a QWP handle left
        # to garbage collection logs an AttributeError at interpreter exit).
        with contextlib.ExitStack() as closing:
            closing.callback(qwp.close)
            closing.callback(ilp.close)
            if db is not None:
                closing.callback(db.close)
            closing.callback(sender.close)
            for store in (ilp, qwp):
                for spec in (TICKS, PARTITION_LOG):
                    store.drop_table(spec)
            for table in (bare_ilp_table, bare_qwp_table):
                ilp.pg.execute_ddl(f'DROP TABLE IF EXISTS "{table}"')

    rows = len(frame)
    print(f"questdb live ({env.host}): {rows} rows x {frame.shape[1]} cols, median of {repeats}")
    print("  (store writes: checks, one send, log insert; a new trading day per call)")
    for name, secs in {**timings, **read_timings}.items():
        print(f"  {name:<45} {secs * 1e3:8.1f} ms  {rows / secs / 1e6:6.2f} M rows/s")
    for name, secs in settles.items():
        print(
            f"  settle {name} ({len(days)} days: WAL wait + one grouped verification)"
            f" {secs * 1e3:8.1f} ms"
        )
    t = timings
    print(
        "  ratio store / bare (ILP/HTTP): "
        f"{t['store write_partition (ILP/HTTP)'] / t['bare Sender.dataframe + flush (ILP/HTTP)']:.2f}"
    )
    if db is not None:
        print(
            "  ratio store / bare (QWP): "
            f"{t['store write_partition (QWP)'] / t['bare connect().dataframe (QWP)']:.2f}"
        )
        r = read_timings
        print(
            "  ratio read_partition / bare query (QWP): "
            f"{r['store read_partition (QWP)'] / r['bare query().to_pandas() (QWP)']:.2f}"
        )


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

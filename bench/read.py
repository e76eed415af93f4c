"""Read benchmark: the research read API vs reading the same Parquet files directly.

    python bench/read.py [--days 20] [--rows 60000] [--repeats 7] [--workdir DIR]

Writes ``--days`` tick days of one symbol (the ingest benchmark's 60k-row seeded day,
shifted per day) into an embedded store, then times, median of ``--repeats``:

* ``read_ticks`` (``ghtrader_assets.ticks``) for the whole range, to pandas and to Arrow,
  all columns and a 3-column projection;
* the bare library on the same files: ``pyarrow.parquet.read_table`` of each partition
  file, concatenated (and ``to_pandas``), with the same projection.

Prints rows/s of each and the ratio ours/bare measured in this run. Figures are printed,
never asserted (a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median_seconds  # noqa: E402
from ingest import SYMBOL, tick_frame  # noqa: E402

from ghtrader_assets import calendar  # noqa: E402
from ghtrader_assets.schema import TICKS  # noqa: E402
from ghtrader_assets.stores.embedded import EmbeddedStore  # noqa: E402
from ghtrader_assets.ticks import read_ticks  # noqa: E402

PROJECTION = ["ts", "last_price", "volume"]


def build(store: EmbeddedStore, days: int, rows: int) -> list[str]:
    base = tick_frame(rows)
    day = pd.Timestamp("2024-03-05").date()
    written = []
    for i in range(days):
        shift = pd.Timedelta(days=(day - pd.Timestamp("2024-03-05").date()).days)
        frame = base.assign(trading_day=day.isoformat(), ts=base["ts"] + shift)
        frame["datetime"] = frame["ts"].astype("int64")
        frame["id"] = base["id"] + i * rows
        store.write_partition(TICKS, SYMBOL, day.isoformat(), frame)
        written.append(day.isoformat())
        day = calendar.next_trading_day(day)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        days = build(store, args.days, args.rows)
        files = [store.partition_path(TICKS, SYMBOL, d) for d in days]
        total = args.days * args.rows

        def bare(columns: list[str] | None, pandas: bool) -> Callable[[], object]:
            def run() -> object:
                table = pa.concat_tables(pq.read_table(f, columns=columns) for f in files)
                return table.to_pandas() if pandas else table

            return run

        def ours(columns: list[str] | None, pandas: bool) -> Callable[[], object]:
            output = "pandas" if pandas else "arrow"
            return lambda: read_ticks(
                SYMBOL, days[0], days[-1], columns=columns, output=output, store=store
            )

        print(
            f"read_ticks vs bare pyarrow: {args.days} days x {args.rows} rows of {SYMBOL}, "
            f"median of {args.repeats}"
        )
        for label, columns in (("all columns", None), ("3 columns", PROJECTION)):
            for pandas in (False, True):
                kind = "pandas" if pandas else "arrow"
                ours_s = median_seconds(ours(columns, pandas), args.repeats)
                bare_s = median_seconds(bare(columns, pandas), args.repeats)
                print(
                    f"  {label:12s} -> {kind:6s}: read_ticks {ours_s * 1e3:8.1f} ms "
                    f"({total / ours_s / 1e6:5.2f} M rows/s)  bare {bare_s * 1e3:8.1f} ms "
                    f"({total / bare_s / 1e6:5.2f} M rows/s)  ratio {ours_s / bare_s:.2f}"
                )
        store.close()


if __name__ == "__main__":
    main()

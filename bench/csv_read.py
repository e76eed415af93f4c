"""CSV source benchmark: our checked read of a DataDownloader day vs bare ``pandas.read_csv``.

    python bench/csv_read.py [--repeats 5]

Our path (:meth:`CsvSource.ticks`) does what a bare read does not: the UTF-8 check, the
per-line field count, the last-line (truncation) check, datetime/datetime_nano agreement,
misdated-row filtering, repeat detection for ids, and conforming to the TICKS schema. The
bare baseline is ``pandas.read_csv`` of the same bytes (C engine, default options). Both run
on the same file in the same process: a simulated SHFE.cu day (five levels, ~56k rows),
plain and gzip, and the real CZCE.CF709 2017-04-14 file when ``shared/realdata`` is found
(found by header among the folder's ten files, so that figure includes the discovery a
fresh source does: reading ten gzip headers).
Figures are printed, never asserted; medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import median_seconds, realdata  # noqa: E402

from ghtrader_assets.sources.base import RollEntry  # noqa: E402
from ghtrader_assets.sources.csv import CsvSource, write_downloader_csv  # noqa: E402
from ghtrader_assets.sources.simulated import SimulatedSource  # noqa: E402
from ghtrader_assets.symbols import MainSymbol, parse_main_symbol  # noqa: E402


def compare(label: str, root: Path, path: Path, entry: RollEntry, repeats: int) -> None:
    rows = len(CsvSource(root).ticks(entry))
    ours = median_seconds(lambda: CsvSource(root).ticks(entry), repeats)
    bare = median_seconds(lambda: pd.read_csv(path), repeats)
    print(
        f"{label:<34} {rows:>7,} rows  ours {ours * 1e3:7.1f} ms ({rows / ours:>10,.0f} rows/s)"
        f"  bare read_csv {bare * 1e3:7.1f} ms  ratio ours/bare {ours / bare:4.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cu = MainSymbol("SHFE", "cu")
    day = dt.date(2025, 3, 5)
    sim = SimulatedSource(seed=1)
    entry = sim.roll_entry(cu, day)
    frame = sim.ticks(entry)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain = root / entry.underlying / f"{day.isoformat()}.csv"
        write_downloader_csv(frame, plain)
        compare("simulated SHFE.cu, plain .csv", root, plain, entry, args.repeats)
        gz = plain.with_name(plain.name + ".gz")
        gz.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
        compare("simulated SHFE.cu, .csv.gz", root, gz, entry, args.repeats)
    real = realdata()
    if real is None:
        print("real data: shared/realdata not found, skipped")
        return
    path = next(real.rglob("CZCE.CF709_20170414_tick.csv.gz"))
    cf = RollEntry(parse_main_symbol("KQ.m@CZCE.CF"), dt.date(2017, 4, 14), "CZCE.CF709", "csv")
    compare("real CZCE.CF709 2017-04-14, .csv.gz", path.parent, path, cf, args.repeats)


if __name__ == "__main__":
    main()

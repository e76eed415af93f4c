"""Metadata at scale: coverage, latest, status and the coverage report vs stored history.

    python bench/scale.py [--sizes 10000,50000,100000] [--symbols 80] [--dir DIR] [--calls 20]

For each size it builds (or reuses, under ``--dir``) an embedded store of ``--symbols``
symbols x (size / symbols) trading days with a ticks, a validation-summary and a metrics
partition per symbol-day, then measures, each in a **fresh process**:

* ``coverage(80 symbols)`` uncached: the first call (opens the catalog) and P50/P95 of
  ``--calls`` more; beside it the bare SQLite query of the same aggregates (``sqlite3``,
  same file) and the old path (one Parquet footer per partition, ``pyarrow.parquet.
  read_metadata``, timed over up to 5,000 partitions and scaled to the store);
* ``latest(80)`` uncached, ``status_table`` (the Prometheus collector's read), the
  collector's full build, ``coverage_report``, and the stat pass over every ticks file
  that ``ghtrader coverage --verify`` runs first (``verify``; O(partitions));
* ``ghtrader coverage`` and ``ghtrader status`` wall time as a user runs them (fresh
  interpreter, imports included), next to the wall time of a bare interpreter that only
  imports pandas, pyarrow and duckdb (the floor any such command pays).

Small partitions are enough for metadata: each table's partitions are hard links to one
small Parquet file (no disk space per partition; every partition still has its own
directory entry and ``stat``), and the catalog rows are bulk-recorded with per-day
figures, as writes would have left them.

With ``GHTRADER_QDB_HOST`` set, the QuestDB store is filled through the store API
(``--qdb-partitions``, default 10,000, in tables ``ghtrader_bench_<uuid8>_*`` dropped
afterwards) and its uncached ``coverage`` and ``latest`` are timed the same way.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: 80 main symbols across the six exchanges (real product codes).
PRODUCTS = {
    "SHFE": "cu al zn pb ni sn au ag rb wr hc ss fu bu ru sp ao br",
    "INE": "sc lu nr bc ec",
    "DCE": "a b m y p c cs jd rr l v pp eb eg pg i j jm fb bb lh lg",
    "CZCE": "SR CF CY TA MA FG RM OI ZC SF SM AP CJ UR SA PF PK PX SH WH PM RI LR JR",
    "CFFEX": "IF IH IC IM TS TF T TL",
    "GFEX": "si lc ps",
}
SYMBOLS = [f"KQ.m@{ex}.{p}" for ex, names in PRODUCTS.items() for p in names.split()]


# --------------------------------------------------------------------------- building


def build(root: Path, symbols: list[str], n_days: int) -> float:
    """An embedded store of len(symbols) x n_days partitions per table; returns seconds."""
    import pandas as pd

    from ghtrader_assets.calendar import trading_days
    from ghtrader_assets.metrics import metrics_frame
    from ghtrader_assets.schema import METRICS, TICKS, VALIDATION_SUMMARY, conform
    from ghtrader_assets.stores.catalog import Entry
    from ghtrader_assets.stores.embedded import EmbeddedStore, symbol_dir_name

    started = time.perf_counter()
    days = [
        d.isoformat()
        for d in trading_days(pd.Timestamp("2020-01-02").date(), pd.Timestamp("2026-12-31").date())
    ]
    days = days[:n_days]
    if len(days) < n_days:
        raise SystemExit(f"the calendar has only {len(days)} trading days from 2020")
    store = EmbeddedStore(root)
    templates: dict[str, tuple[Path, Entry]] = {}
    sym0, day0 = symbols[0], days[0]
    sys.path.insert(0, str(REPO / "bench"))
    from query import day_frame  # noqa: PLC0415 - the same tick frame as bench/query.py

    from ghtrader_assets.sources.simulated import SimulatedSource
    from ghtrader_assets.symbols import parse_main_symbol
    from ghtrader_assets.validation import validate_day

    src = SimulatedSource(seed=1)
    main = parse_main_symbol("KQ.m@SHFE.cu")
    sim_day = pd.Timestamp("2025-03-04").date()
    summary = validate_day(conform(src.ticks(src.roll_entry(main, sim_day)), TICKS), main, sim_day)
    frames = [
        (TICKS, day_frame(sym0, day0, 8, 0)),
        (VALIDATION_SUMMARY, summary.summary.assign(symbol=sym0, trading_day=day0)),
        (
            METRICS,
            metrics_frame(
                sym0,
                day0,
                {
                    "ticks": {"ingest_rows_per_second": 200_000.0, "write_mb_per_second": 40.0},
                    "validation_summary": {"validation_seconds": 0.4},
                },
            ),
        ),
    ]
    for spec, frame in frames:
        stats = store.write_partition(spec, sym0, day0, frame)
        path = Path(stats.location)
        entry = store.catalog.entry(spec.name, sym0, day0)
        templates[spec.name] = (path, entry)
    rows = []
    for si, sym in enumerate(symbols):
        key = symbol_dir_name(sym)
        for di, day in enumerate(days):
            for table, (tpl, entry) in list(templates.items()):
                path = root / table / f"symbol={key}" / f"trading_day={day}" / "part.parquet"
                if path != tpl:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if not path.exists():
                        try:
                            os.link(tpl, path)
                        except OSError as exc:  # the filesystem's link limit: a new template
                            if exc.errno != errno.EMLINK:
                                raise
                            shutil.copyfile(tpl, path)
                            templates[table] = (path, entry)
                            tpl = path
                shift = di * 86_400 * 10**9
                gaps = entry.gap_count is not None
                rows.append(
                    dataclasses.replace(
                        entry,
                        symbol=sym,
                        day=day,
                        first_ts=None if entry.first_ts is None else entry.first_ts + shift,
                        last_ts=None if entry.last_ts is None else entry.last_ts + shift,
                        gap_count=(si + di) % 7 if gaps else None,
                        gap_seconds=float((si * 3 + di) % 40) if gaps else None,
                        mtime_ns=path.stat().st_mtime_ns,
                    )
                )
    store.catalog.record(rows)
    store.close()
    (root / ".bench-built").write_text(json.dumps({"symbols": len(symbols), "days": n_days}))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- measuring


def measure(root: str, n_symbols: int, calls: int) -> dict[str, float]:
    """Runs in a fresh process (``--measure``): every figure in milliseconds."""
    import sqlite3

    import numpy as np
    import pyarrow.parquet as pq

    from ghtrader_assets.calendar import TZ
    from ghtrader_assets.metrics import StoreStatusCollector
    from ghtrader_assets.reports import coverage_report
    from ghtrader_assets.schema import TICKS
    from ghtrader_assets.status import status_table
    from ghtrader_assets.stores.catalog import CATALOG_FILE
    from ghtrader_assets.stores.embedded import EmbeddedStore
    from ghtrader_assets.symbols import parse_main_symbol

    symbols = SYMBOLS[:n_symbols]
    universe = [parse_main_symbol(s) for s in symbols]
    out: dict[str, float] = {}

    def ms(call) -> float:  # noqa: ANN001
        t = time.perf_counter()
        call()
        return (time.perf_counter() - t) * 1e3

    store = EmbeddedStore(root, cache=False)
    out["coverage_first"] = ms(lambda: store.coverage(symbols))
    runs = [ms(lambda: store.coverage(symbols)) for _ in range(calls)]
    out["coverage_p50"], out["coverage_p95"] = np.percentile(runs, [50, 95])

    con = sqlite3.connect(Path(root) / CATALOG_FILE)
    sql = (
        "SELECT symbol, first_day, last_day, n_days, rows, first_ts, last_ts FROM symbols "
        f"WHERE tbl = 'ticks_main_l5' AND symbol IN ({', '.join('?' * len(symbols))})"
    )
    bare = [ms(lambda: con.execute(sql, symbols).fetchall()) for _ in range(calls)]
    out["bare_sqlite_p50"] = float(np.percentile(bare, 50))

    files = sorted((Path(root) / "ticks_main_l5").glob("symbol=*/trading_day=*/part.parquet"))
    sample = files[:5000]
    t = time.perf_counter()
    for f in sample:
        pq.read_metadata(f)
    out["footer_scan_est"] = (time.perf_counter() - t) * 1e3 * len(files) / max(1, len(sample))

    out["latest"] = ms(lambda: store.latest(symbols))
    now = __import__("pandas").Timestamp.now(tz=TZ)
    out["status_table"] = ms(lambda: status_table(store, universe, now=now))
    collector = StoreStatusCollector(lambda: store, universe)
    out["collector_build"] = ms(collector._build)
    out["verify_stat"] = ms(lambda: store.verify(symbols, tables=[TICKS]))
    out["coverage_report"] = ms(lambda: coverage_report(store, universe))
    return out


def cli_wall(data_dir: Path, n_symbols: int, command: str) -> float:
    env = {
        **os.environ,
        "GHTRADER_DATA_DIR": str(data_dir),
        "GHTRADER_STORE": "embedded",
        "GHTRADER_UNIVERSE": ",".join(SYMBOLS[:n_symbols]),
        "GHTRADER_START_DATE": "2020-01-02",
    }
    exe = Path(sys.executable).parent / "ghtrader"
    t = time.perf_counter()
    done = subprocess.run([str(exe), command], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        print(f"    ghtrader {command} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return wall


def bare_wall() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pandas, pyarrow, duckdb"], check=True)
    return time.perf_counter() - t


def bench_questdb(n_partitions: int, n_symbols: int, calls: int) -> None:
    import uuid

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(REPO / "bench"))
    from query import day_frame  # noqa: PLC0415

    from ghtrader_assets.calendar import trading_days
    from ghtrader_assets.schema import TICKS
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    symbols = SYMBOLS[:n_symbols]
    n_days = max(1, n_partitions // len(symbols))
    days = [
        d.isoformat()
        for d in trading_days(pd.Timestamp("2020-01-02").date(), pd.Timestamp("2026-12-31").date())
    ]
    base = dataclasses.replace(
        QuestDBSettings.from_env(), table_prefix=f"ghtrader_bench_{uuid.uuid4().hex[:8]}_"
    )
    writer = QuestDBStore(base)
    try:
        t = time.perf_counter()
        for sym in symbols:
            for day in days[:n_days]:
                writer.write_partition(TICKS, sym, day, day_frame(sym, day, 2, 0))
        print(
            f"questdb: filled {len(symbols) * n_days} partitions in {time.perf_counter() - t:.0f} s"
        )
        fresh = QuestDBStore(dataclasses.replace(base, cache_ttl=0.0))
        timed = []
        for _ in range(calls):
            t = time.perf_counter()
            fresh.coverage(symbols)
            timed.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        fresh.latest(symbols)
        latest = (time.perf_counter() - t) * 1e3
        p50, p95 = np.percentile(timed, [50, 95])
        print(
            f"questdb {len(symbols) * n_days:>7} partitions: coverage p50 {p50:.1f} ms "
            f"p95 {p95:.1f} ms, latest {latest:.1f} ms"
        )
        fresh.close()
    finally:
        for spec in (TICKS, PARTITION_LOG):
            writer.drop_table(spec)
        writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="partitions per table")
    parser.add_argument("--symbols", type=int, default=80, help=f"1-{len(SYMBOLS)}")
    parser.add_argument("--calls", type=int, default=20, help="timed coverage calls")
    parser.add_argument("--dir", help="keep the stores here and reuse them (default: temp)")
    parser.add_argument("--qdb-partitions", type=int, default=10_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: fresh-process run
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.symbols, args.calls)))
        return
    if not 1 <= args.symbols <= len(SYMBOLS):
        parser.error(f"--symbols must be 1-{len(SYMBOLS)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ghtrader-scale-"))
    print(
        f"embedded store, {args.symbols} symbols; each figure from a fresh process "
        f"(ms unless marked); bare interpreter importing pandas+pyarrow+duckdb: "
        f"{bare_wall():.2f} s wall"
    )
    try:
        for size in sizes:
            n_days = max(1, size // args.symbols)
            data = base / f"p{size}"
            root = data / "store"
            marker = root / ".bench-built"
            want = {"symbols": args.symbols, "days": n_days}
            if not (marker.exists() and json.loads(marker.read_text()) == want):
                shutil.rmtree(data, ignore_errors=True)
                secs = build(root, SYMBOLS[: args.symbols], n_days)
                print(
                    f"built {args.symbols} x {n_days} = {args.symbols * n_days} "
                    f"partitions per table (x3 tables) in {secs:.0f} s"
                )
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure",
                    str(root),
                    "--symbols",
                    str(args.symbols),
                    "--calls",
                    str(args.calls),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            f = json.loads(done.stdout.strip().splitlines()[-1])
            cov_wall = cli_wall(data, args.symbols, "coverage")
            status_wall = cli_wall(data, args.symbols, "status")
            print(
                f"{args.symbols * n_days:>7} partitions: coverage first {f['coverage_first']:.1f}"
                f", p50 {f['coverage_p50']:.2f}, p95 {f['coverage_p95']:.2f} "
                f"(bare SQLite {f['bare_sqlite_p50']:.2f}: "
                f"{f['coverage_p50'] / max(f['bare_sqlite_p50'], 1e-6):.1f}x; "
                f"old footer scan ~{f['footer_scan_est'] / 1e3:.1f} s: "
                f"{f['footer_scan_est'] / f['coverage_first']:.0f}x slower)\n"
                f"{'':>18} latest {f['latest']:.1f}, status_table {f['status_table']:.1f}, "
                f"collector {f['collector_build']:.1f}, ticks verify(stat) {f['verify_stat']:.0f}, "
                f"coverage_report {f['coverage_report']:.0f}\n"
                f"{'':>18} ghtrader coverage {cov_wall:.2f} s wall, "
                f"ghtrader status {status_wall:.2f} s wall"
            )
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    if os.environ.get("GHTRADER_QDB_HOST", "").strip():
        bench_questdb(args.qdb_partitions, args.symbols, args.calls)
    else:
        print("questdb: skipped (GHTRADER_QDB_HOST is not set)")
    print(
        f"(median of {args.calls} calls where marked p50; machine load: {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()

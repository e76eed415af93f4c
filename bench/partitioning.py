"""One asset chain per symbol (today) vs one chain partitioned by symbol x trading day.

Called by ``python bench/overhead.py --partitioning N [--partitioning-runs K]``. Prints, for
a universe of N symbols: the definitions' load time in a fresh process and what the asset
graph holds (what the UI draws), then the CPU per symbol-day of materializing one trading
day of K symbols: one run covering all K (chain per symbol) vs one run per symbol-day key
(``MultiPartitionsDefinition``: Dagster launches one run per partition key; the prototype is
``bench/multipartition_location.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent

LOAD = textwrap.dedent(
    """
    import importlib, sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    defs = importlib.import_module(sys.argv[1]).defs
    repo = defs.get_repository_def()
    repo.get_implicit_global_asset_job_def()
    graph = repo.asset_graph
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    keys = graph.get_all_asset_keys()
    parts = graph.get(next(iter(k for k in keys if graph.get(k).partitions_def))).partitions_def
    print(wall, cpu, len(keys), len(graph.asset_check_keys), len(parts.get_partition_keys()))
    """
)


def _env(site: Path, names: str, clones: int, tmp: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(BENCH), str(ROOT)]),
        "GHTRADER_UNIVERSE": names,
        "GHTRADER_BENCH_CLONES": str(clones),
        "GHTRADER_DATA_DIR": tmp,
        "GHTRADER_AUTOMATION": "off",
        "DAGSTER_HOME": str(Path(tmp) / "dagster_home"),
    }


def _load(module: str, env: dict[str, str], repeats: int = 3) -> list[float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", LOAD, module], env=env, capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        runs.append([float(x) for x in out.stdout.split()])
    runs.sort()
    return runs[len(runs) // 2]


def _materialize(module: str, selection: str, partition: str) -> list[str]:
    """``dagster asset materialize`` of ``selection`` in ``module``'s definitions, one run."""
    return [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        module,
        "--select",
        selection,
        "--partition",
        partition,
    ]


def compare(
    n: int,
    site: Path,
    measure: Callable[[list[str], dict[str, str], Path], tuple[float, float]],
    universe: Callable[[int], tuple[str, int]],
    run_symbols: int = 5,
    day: str = "2026-03-03",
) -> None:
    names, clones = universe(n)
    print(f"\npartitioning at {n} symbols (load: fresh process, median of 3)")
    print(
        f"  {'design':<22} {'load s':>7} {'load CPU s':>10} {'assets':>7} {'checks':>7} "
        f"{'partitions/asset':>17}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(site, names, clones, tmp)
        for design, module in (
            ("chain per symbol", "ghtrader_assets.definitions"),
            ("symbol x day (multi)", "multipartition_location"),
        ):
            wall, cpu, assets, checks, parts = _load(module, env)
            print(
                f"  {design:<22} {wall:7.2f} {cpu:10.2f} {assets:7.0f} {checks:7.0f} {parts:17.0f}"
            )

    k_names, k_clones = universe(run_symbols)
    symbols = [s.split("@")[1] for s in k_names.split(",")]
    print(f"\n  one trading day of {run_symbols} symbols, in-process executor, CPU per symbol-day")
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(site, k_names, k_clones, tmp)
        (Path(tmp) / "dagster_home").mkdir()
        cpu, wall = measure(
            _materialize("ghtrader_assets.definitions", "not key:coverage_report", day),
            env,
            Path(tmp),
        )
        print(f"  {'chain per symbol':<22} 1 run : {cpu / run_symbols:6.3f} s (wall {wall:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(site, k_names, k_clones, tmp)
        (Path(tmp) / "dagster_home").mkdir()
        total, walls = 0.0, 0.0
        for symbol in symbols:
            cpu, wall = measure(
                _materialize("multipartition_location", "*", f"{day}|{symbol}"), env, Path(tmp)
            )
            total, walls = total + cpu, walls + wall
        print(
            f"  {'symbol x day (multi)':<22} {run_symbols} runs: {total / run_symbols:6.3f} s "
            f"(wall {walls:.1f} s)"
        )

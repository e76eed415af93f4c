"""CPU per symbol-day: the bare work vs each route users take, measured in one run.

Every figure is the CPU (user + system) of a fresh process tree, counted through a child
subreaper so step processes and forkservers are included. All routes ingest the same
trading day of the same simulated symbols into a fresh embedded store and Dagster instance:

* ``bare``: simulate + validate + write ticks and summary, one process, imports included;
* ``materialize``: ``dagster asset materialize -m ghtrader_assets.definitions`` of every
  symbol's chain for the day, with the executor the definitions choose (what the run
  worker of a UI launch, a backfill or the automation does: load the code, run the job);
* ``multiprocess`` / ``forkserver``: the same with ``GHTRADER_EXECUTOR`` set to Dagster's
  default one-process-per-step executor, or to it with a forkserver preloading the code;
* ``demo``: ``ghtrader demo --days 1`` (run in a worker process, coverage report, summary).

Universes larger than the products with facts are synthesized by cloning product facts
(``cu`` -> ``cuxa``, ...) in every process of the run (a ``sitecustomize`` on PYTHONPATH),
so the figures measure Dagster and our code, not the product list.

    python bench/overhead.py --symbols 5 40
    python bench/overhead.py --symbols 5 --routes bare materialize multiprocess
    python bench/overhead.py --load 1 14 80       # definition load time per universe size
    python bench/overhead.py --partitioning 80    # one chain per symbol vs symbol x day
    python bench/overhead.py --symbols --steps 10 # three steps vs one fused step per symbol
    python bench/overhead.py --symbols 5 40 --routes bare --levers  # before/after each lever

Unless ``--levers`` says otherwise, every route runs with what users get: the instance
storage ``ghtrader`` writes into a fresh ``dagster.yaml`` (``runner.STORAGE_YAML``, the same
as ``infra/dagster/dagster.yaml``) and the code as it is. ``--levers`` runs ``materialize``
with the levers switched on one after another, from Dagster's defaults (*before*) to all
of them (*after*, the shipped set-up):

* ``pooled``: Dagster's SQLite run and event-log storage with connections kept open
  (``ghtrader_assets.instance_storage``) instead of one engine per statement;
* ``sync``: the same with SQLite's WAL synced at checkpoints, not at every commit;
* ``conform``: the IO manager writes a frame already in the table's layout as it is
  instead of conforming (copying) it again.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
DAY = "2026-03-03"
ROUTES = ("bare", "materialize", "multiprocess", "forkserver", "demo")
PG_ROUTES = ("materialize", "demo")
LEVERS = ("pooled", "sync", "conform")
DEFAULT_FIVE = ["SHFE.cu", "SHFE.au", "SHFE.ag", "DCE.m", "CZCE.SR"]

#: Installed in every process of a measured route: clones product facts so a universe of
#: any size can be simulated (GHTRADER_BENCH_CLONES=n adds n clones per known product).
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, sys
    if "conform" in os.environ.get("GHTRADER_BENCH_LEVERS_OFF", "").split(","):
        # Conform every output again, as before. Patched when the module is first imported,
        # not here: Dagster's compute-log watchers are Python processes too, and importing
        # the package in each of them would cost more than the lever.
        import importlib.abc, importlib.util

        class _ConformAgain(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "ghtrader_assets.io_managers":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec(name)
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    from ghtrader_assets.schema import conform
                    module.conformed = conform

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, _ConformAgain())
    _n = int(os.environ.get("GHTRADER_BENCH_CLONES", "0") or 0)
    if _n:
        import dataclasses, string
        from ghtrader_assets import products as _p
        for (_ex, _prod), _spec in list(_p.PRODUCTS.items()):
            for _i in range(_n):
                _clone = _prod + "x" + string.ascii_lowercase[_i]
                _p.PRODUCTS[(_ex, _clone)] = dataclasses.replace(_spec, product=_clone)
    """
)

BARE = textwrap.dedent(
    """
    import datetime as dt, sys
    from ghtrader_assets.config import Settings
    from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY
    from ghtrader_assets.sources.simulated import SimulatedSource
    from ghtrader_assets.stores.embedded import EmbeddedStore
    from ghtrader_assets.validation import ValidationConfig, drop_exact_duplicates, validate_day

    settings = Settings.from_env()
    day = dt.date.fromisoformat(sys.argv[1])
    store, source, config = EmbeddedStore(settings.store_dir), SimulatedSource(), ValidationConfig.from_env()
    for symbol in settings.universe:
        entry = source.roll_entry(symbol, day)
        ticks, dropped = drop_exact_duplicates(source.ticks(entry))
        result = validate_day(ticks, symbol, day, config, duplicates_dropped=dropped)
        summary = result.summary.assign(underlying=entry.underlying, source=entry.source)
        store.write_partition(TICKS, symbol.raw, sys.argv[1], ticks)
        store.write_partition(VALIDATION_SUMMARY, symbol.raw, sys.argv[1], summary)
    """
)


def _become_subreaper() -> None:
    """Orphaned descendants (forkservers, their step processes) are re-parented to us, so
    their CPU reaches RUSAGE_CHILDREN when we reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _reap_orphans(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def universe(n: int, day: str = DAY) -> tuple[str, int]:
    """``GHTRADER_UNIVERSE`` of ``n`` symbols trading on ``day`` and the clones per product
    it needs (a product suspended that day, e.g. CZCE.LR, would fail every route)."""
    import datetime as dt

    from ghtrader_assets.products import known_products
    from ghtrader_assets.sessions import not_listed_reason

    def listed(product: str) -> bool:
        exchange, name = product.split(".")
        return not_listed_reason(exchange, name, dt.date.fromisoformat(day)) is None

    products = [p for p in known_products() if listed(p)]
    base = DEFAULT_FIVE if n <= 5 else products
    names = list(base[:n])
    clones = 0
    while len(names) < n:
        suffix = "x" + "abcdefghijklmnopqrstuvwxyz"[clones]
        names += [f"{p}{suffix}" for p in products][: n - len(names)]
        clones += 1
    return ",".join(f"KQ.m@{p}" for p in names), clones


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``cmd`` and every process it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    _reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def route_command(route: str, day: str) -> tuple[list[str], dict[str, str]]:
    if route == "bare":
        return [PYTHON, "-c", BARE, day], {}
    if route == "demo":
        return [str(BIN / "ghtrader"), "demo", "--days", "1", "--workers", "1"], {}
    executor = {"materialize": "", "multiprocess": "multiprocess", "forkserver": "forkserver"}
    cmd = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "ghtrader_assets.definitions",
        "--select",
        "not key:coverage_report",
        "--partition",
        day,
    ]
    return cmd, {"GHTRADER_EXECUTOR": executor[route]}


class Postgres:
    """A Postgres server for the Dagster instance (the production storage): a fresh database
    per route, and the CPU of the server processes that served it (the postmaster reaps
    them, so its children's CPU grows by theirs)."""

    def __init__(self, url: str, data_dir: str) -> None:
        base, _, self.query = url.partition("?")
        self.base = base.rstrip("/")
        pid_file = Path(data_dir) / "postmaster.pid"
        self.pid = int(pid_file.read_text().split()[0])
        self.count = 0

    def server_cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks

    def database(self) -> str:
        import psycopg

        self.count += 1
        name = f"ghtrader_overhead_{os.getpid()}_{self.count}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def url(self, database: str, driver: str = "postgresql") -> str:
        base = self.base.replace("postgresql://", f"{driver}://", 1)
        return f"{base}/{database}" + (f"?{self.query}" if self.query else "")


def instance_yaml(pg: Postgres | None, levers: frozenset[str] = frozenset(LEVERS)) -> str:
    """The fresh instance's ``dagster.yaml``: Postgres, or SQLite with the storage levers on
    (what ``ghtrader`` writes, ``runner.STORAGE_YAML``), or Dagster's own SQLite storage."""
    from ghtrader_assets.runner import STORAGE_YAML

    text = "telemetry:\n  enabled: false\n"
    if pg is None:
        if "pooled" not in levers:
            return text
        storage = STORAGE_YAML
        if "sync" not in levers:
            storage = storage.replace("synchronous: NORMAL", "synchronous: FULL")
        return text + storage
    url = pg.url(pg.database(), driver="postgresql+psycopg2")
    return text + f'storage:\n  postgres:\n    postgres_url: "{url}"\n'


def run_route(
    route: str,
    n_symbols: int,
    day: str,
    site: Path,
    pg: Postgres | None = None,
    levers: frozenset[str] = frozenset(LEVERS),
) -> tuple[float, float]:
    names, clones = universe(n_symbols, day)
    with tempfile.TemporaryDirectory(prefix="ghtrader-overhead-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(instance_yaml(pg, levers))
        cmd, extra = route_command(route, day)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "GHTRADER_DATA_DIR": tmp,
            "DAGSTER_HOME": str(home),
            "GHTRADER_UNIVERSE": names,
            "GHTRADER_BENCH_CLONES": str(clones),
            "GHTRADER_SOURCE": "simulated",
            "GHTRADER_STORE": "embedded",
            "GHTRADER_AUTOMATION": "off",
            "GHTRADER_BENCH_LEVERS_OFF": ",".join(sorted(set(LEVERS) - levers)),
            **extra,
        }
        if route != "bare" and pg is not None:
            # Dagster creates its tables on first use; do it outside the measurement.
            subprocess.run(
                [str(BIN / "dagster"), "instance", "migrate"], env=env, capture_output=True
            )
        server = pg.server_cpu() if pg else 0.0
        cpu, wall = measure(cmd, env, Path(tmp))
        if pg is not None:
            time.sleep(0.5)  # let the postmaster reap the backends of this route
            cpu += pg.server_cpu() - server
        return cpu, wall


def bench_routes(
    sizes: list[int],
    routes: list[str],
    day: str,
    site: Path,
    pg: Postgres | None,
    heavy_max: int,
    levers: bool = False,
) -> None:
    print(
        f"CPU per symbol-day, trading day {day}, simulated source, embedded store, "
        f"{os.cpu_count()} CPUs; ratio = route / bare in this run"
    )
    print(
        "  Dagster instance: SQLite with the storage ghtrader sets up (runner.STORAGE_YAML)"
        + ("; '+pg': Postgres (production), server CPU included" if pg else "")
    )
    for n in sizes:
        bare_cpu = None
        print(f"\n{n} symbols")
        print(f"  {'route':<34} {'CPU s':>8} {'wall s':>8} {'CPU/symbol-day':>15} {'vs bare':>8}")
        variants = [(r, None, frozenset(LEVERS), r) for r in routes]
        if pg is not None:
            variants += [(r, pg, frozenset(LEVERS), r + "+pg") for r in routes if r in PG_ROUTES]
        if levers:
            # Cumulative: Dagster's defaults (before), then each lever added in turn (after).
            for i in range(len(LEVERS) + 1):
                on = frozenset(LEVERS[:i])
                label = "+".join(LEVERS[:i]) or "none (before)"
                variants.append(("materialize", None, on, f"materialize, levers: {label}"))
        for route, instance, on, label in variants:
            if route in ("multiprocess", "forkserver") and n > heavy_max:
                continue  # one process per step: minutes of CPU; see --heavy-max
            cpu, wall = run_route(route, n, day, site, instance, on)
            if route == "bare":
                bare_cpu = cpu
            ratio = f"{cpu / bare_cpu:7.2f}x" if bare_cpu else "      -"
            print(f"  {label:<34} {cpu:8.2f} {wall:8.2f} {cpu / n:15.3f} {ratio}", flush=True)


LOAD = textwrap.dedent(
    """
    import time
    t0, c0 = time.perf_counter(), time.process_time()
    from ghtrader_assets.definitions import defs
    repo = defs.get_repository_def()
    repo.get_job("ingest_daily"); repo.get_implicit_global_asset_job_def()
    print(time.perf_counter() - t0, time.process_time() - c0)
    """
)


def bench_load(sizes: list[int], site: Path, repeats: int = 3) -> None:
    """Seconds from a fresh interpreter to loaded definitions (what every run worker and,
    with the multiprocess executor, every step process pays). CPU seconds are what a quiet
    machine's wall time would be; wall time on a shared machine includes waiting for a core."""
    print(
        f"definition load (import + build + repository + jobs), fresh process, median of {repeats}"
    )
    print(f"  {'symbols':>7} {'wall s':>7} {'CPU s':>7}")
    for n in sizes:
        names, clones = universe(n)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "GHTRADER_UNIVERSE": names,
            "GHTRADER_BENCH_CLONES": str(clones),
        }
        with tempfile.TemporaryDirectory() as tmp:
            env["GHTRADER_DATA_DIR"] = tmp
            runs = sorted(
                tuple(
                    float(x)
                    for x in subprocess.run(
                        [PYTHON, "-c", LOAD], env=env, capture_output=True, text=True, check=True
                    ).stdout.split()[-2:]
                )
                for _ in range(repeats)
            )
        wall, cpu = runs[len(runs) // 2]
        print(f"  {n:7d} {wall:7.2f} {cpu:7.2f}", flush=True)


def bench_steps(n: int, day: str, site: Path) -> None:
    """Three steps per symbol (like the real chain) vs one fused step, same work, same run
    shape (``bench/step_granularity_location.py``); bare work as the yardstick."""
    names, clones = universe(n)
    print(f"\nstep granularity, one trading day of {n} symbols, in-process, CPU per symbol-day")
    bare_cpu, _ = run_route("bare", n, day, site)
    print(f"  {'bare':<28} {bare_cpu / n:6.3f} s   1.00x")
    variants = (
        ("three steps per symbol", "0", "0"),
        ("one fused step per symbol", "1", "0"),
        ("three steps, one check", "0", "1"),
    )
    for label, fused, one_check in variants:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "dagster_home"
            home.mkdir()
            (home / "dagster.yaml").write_text(instance_yaml(None))
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).parent), str(ROOT)]),
                "GHTRADER_DATA_DIR": tmp,
                "DAGSTER_HOME": str(home),
                "GHTRADER_UNIVERSE": names,
                "GHTRADER_BENCH_CLONES": str(clones),
                "GHTRADER_BENCH_FUSED": fused,
                "GHTRADER_BENCH_ONE_CHECK": one_check,
            }
            cmd = [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "step_granularity_location",
                "--select",
                "*",
                "--partition",
                day,
            ]
            cpu, _ = measure(cmd, env, Path(tmp))
        print(f"  {label:<28} {cpu / n:6.3f} s {cpu / bare_cpu:6.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="*", default=[5, 40])
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    parser.add_argument("--day", default=DAY)
    parser.add_argument(
        "--load",
        type=int,
        nargs="*",
        default=None,
        help="also print definition load time for these universe sizes",
    )
    parser.add_argument(
        "--partitioning",
        type=int,
        default=0,
        help="compare one chain per symbol vs symbol x day at this size",
    )
    parser.add_argument(
        "--partitioning-runs",
        type=int,
        default=5,
        help="symbols of the one-day runs in the partitioning comparison",
    )
    parser.add_argument(
        "--postgres",
        nargs=2,
        metavar=("URL", "DATA_DIR"),
        help="also run materialize and demo with a Postgres Dagster instance, e.g. "
        "'postgresql://postgres@?host=/tmp/pg&port=55432' (no database) and the server's "
        "data directory (for its CPU)",
    )
    parser.add_argument(
        "--heavy-max",
        type=int,
        default=5,
        help="largest universe for the one-process-per-step routes (default 5)",
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="compare three steps vs one fused step per symbol"
    )
    parser.add_argument(
        "--levers",
        action="store_true",
        help=f"also run materialize with the levers {LEVERS} added one by one (before/after)",
    )
    args = parser.parse_args()
    _become_subreaper()
    with tempfile.TemporaryDirectory(prefix="ghtrader-site-") as site:
        (Path(site) / "sitecustomize.py").write_text(SITECUSTOMIZE)
        if args.symbols:
            pg = Postgres(*args.postgres) if args.postgres else None
            bench_routes(
                args.symbols, args.routes, args.day, Path(site), pg, args.heavy_max, args.levers
            )
        if args.load:
            bench_load(args.load, Path(site))
        if args.steps:
            bench_steps(args.steps, args.day, Path(site))
        if args.partitioning:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from partitioning import compare  # bench/partitioning.py

            compare(args.partitioning, Path(site), measure, universe, args.partitioning_runs)


if __name__ == "__main__":
    main()

"""``ghtrader``: run the demo, print coverage and status.

``ghtrader demo`` materializes real partitions (the last N trading days of the universe)
through the same Dagster definitions the UI loads, runs the days in parallel processes,
and records the runs in a persistent Dagster instance so ``dagster dev`` shows them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.config import Settings, SettingsError, one_line
from ghtrader_assets.metadata import markdown_table
from ghtrader_assets.runner import (
    QUIET,
    DayRun,
    RunsStalledError,
    ensure_dagster_home,
    release_dead_runs,
    run_day,
    run_days,
    set_source_pool_limits,
)
from ghtrader_assets.stores.base import StoreError, TickStore


def _prepare_environment(args: argparse.Namespace) -> Settings:
    """Fix data dir and DAGSTER_HOME in the environment so worker processes agree; every
    setting is checked here, before anything runs (a bad one exits with code 2)."""
    if args.data_dir:
        os.environ["GHTRADER_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    settings = Settings.load()
    if args.command in ("demo", "backfill"):
        check_source_settings(settings)
    os.environ.setdefault("GHTRADER_DATA_DIR", str(settings.data_dir))
    try:
        ensure_dagster_home(settings.data_dir / "dagster_home")
    except OSError as exc:  # e.g. DAGSTER_HOME names a file, or a folder we may not write
        home = os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home"
        raise SettingsError(
            f"DAGSTER_HOME={home}: cannot use it as the Dagster instance folder ({exc})"
        ) from exc
    return settings


def check_source_settings(settings: Settings) -> None:
    """What the source needs before any run starts: without it every step would fail with
    a stack trace in the middle of the runs. Only presence is checked for the account (the
    values stay secrets, read by the resources through ``EnvVar``)."""
    if settings.source == "csv" and not settings.csv_dir:
        raise SettingsError(
            "GHTRADER_SOURCE=csv needs GHTRADER_CSV_DIR: the folder of DataDownloader files "
            "(or use `ghtrader import DIR`)"
        )
    if settings.source == "tqsdk" and settings.tq_accounts is None:  # accounts: at load
        missing = [v for v in ("GHTRADER_TQ_USER", "GHTRADER_TQ_PASSWORD") if not os.environ.get(v)]
        if missing:
            raise SettingsError(
                f"GHTRADER_SOURCE=tqsdk needs a TqSdk Pro account: set {' and '.join(missing)}"
            )


def open_store(settings: Settings):
    """The store the definitions' runs use, built the same way outside a run.

    ``build_resources`` gives the resources a run gets; their ``EnvVar`` fields are
    resolved from the environment by the resource itself (``StoreResource.get_store``), so
    the CLI and the runs talk to the same server with the same credentials. A QuestDB that
    does not answer fails here within seconds (:class:`QuestDBUnreachableError`).
    """
    from ghtrader_assets.definitions import build_resources

    return build_resources(settings)["store"].get_store()


def _store_location(settings: Settings) -> str:
    if settings.store == "questdb":
        from ghtrader_assets.schema import TICKS
        from ghtrader_assets.stores.questdb.ddl import current_view_name

        store = open_store(settings)
        view = current_view_name(store.table_name(TICKS))
        qdb = store.settings
        return f"questdb://{qdb.host}:{qdb.pg_port}  (in SQL, query the *_current views: {view})"
    return f"{settings.data_dir / 'store'}  (Parquet: <table>/symbol=<SYM>/trading_day=<DAY>/)"


def default_workers(settings: Settings) -> int:
    """TqSdk downloads wait on the network, so the pool limit decides; offline sources are
    CPU-bound, so also the CPU count."""
    if settings.source == "tqsdk":  # each account has its own pool of that limit
        return settings.source_pool_limit * len(settings.source_pools)
    return max(1, min(settings.source_pool_limit, os.cpu_count() or 1))


def _demo_days(settings: Settings, n: int) -> list[str]:
    """The last ``n`` completed trading days from the start date on; a start date that
    leaves none is a user error naming the variable."""
    from ghtrader_assets.partitions import resolve_close

    if n < 1:
        raise SettingsError(f"--days {n}: expected at least 1 trading day")
    close = resolve_close(settings.close_time)
    last = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ), close)
    start = pd.Timestamp(settings.start_date).date()
    days: list = [last]
    while len(days) < n and days[-1] > start:
        days.append(calendar.previous_trading_day(days[-1]))
    chosen = sorted(d.isoformat() for d in days if d >= start)
    if not chosen:
        raise SettingsError(
            f"GHTRADER_START_DATE={settings.start_date} leaves no completed trading day to run "
            f"(the last one closed on {last}): set it to {last} or earlier"
        )
    return chosen


#: The defects of the demo's one defective day: a crossed book (blocking ``book_integrity``)
#: and a 45 s hole in a session (``gaps``), so its verdict is ``blocked`` with a largest gap.
DEMO_DEFECTS = {"crossed_book": {"rows": 5}, "gap": {"seconds": 45}}

#: Run tag naming the demo's defective symbol-day (visible on the run in the UI).
DEMO_DEFECT_TAG = "ghtrader/demo_defect"


@dataclass(frozen=True)
class DemoDefect:
    """The one symbol-day the demo makes defective on purpose, so a failed day can be seen."""

    symbol: str
    trading_day: str

    @property
    def label(self) -> str:
        return (
            f"{self.symbol} {self.trading_day}: crossed book on 5 ticks + a 45 s gap, "
            "injected on purpose"
        )

    def run_config(self) -> dict:
        """Resource config of that day's run: only this symbol-day gets the defects."""
        defects = {self.symbol: {self.trading_day: DEMO_DEFECTS}}
        # The planned step failure would print a stack trace in the terminal; the run's
        # logs keep it, and the summary below reports the day.
        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        return {**quiet, "resources": {"source": {"config": {"simulated_defects": defects}}}}

    def tags(self) -> dict[str, str]:
        from ghtrader_assets.assets.ingest import ALLOW_FAILING_TAG

        # A re-run of the demo shows the failed day again even where an earlier clean run
        # stored it (otherwise the passing day is kept and the defect only quarantined).
        return {DEMO_DEFECT_TAG: self.label, ALLOW_FAILING_TAG: "true"}


def demo_defect(settings: Settings, days: list[str], clean: bool) -> DemoDefect | None:
    """The first symbol on the second-to-last demo day (the last stays clean, so the newest
    day reads green); none with ``--clean`` or a source other than the simulated market."""
    if clean or settings.source != "simulated" or not settings.universe:
        return None
    return DemoDefect(settings.universe[0].raw, days[-2] if len(days) > 1 else days[0])


def run_demo_day(day: str, defect: DemoDefect | None = None) -> DayRun:
    """One demo day's run; the defective day's run gets the defect's config and tags."""
    if defect is not None and day == defect.trading_day:
        return run_day(day, run_config=defect.run_config(), tags=defect.tags())
    return run_day(day)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    days = _demo_days(settings, args.days)
    defect = demo_defect(settings, days, args.clean)
    symbols = ", ".join(s.raw for s in settings.universe)
    print(f"ghtrader demo: source={settings.source} store={settings.store}")
    print(f"  symbols: {symbols}")
    workers = args.workers or default_workers(settings)
    print(f"  trading days: {', '.join(days)} ({workers} in parallel)", flush=True)
    if defect is not None:
        print(f"  DEFECTIVE DAY (on purpose): {defect.label} (--clean: none)", flush=True)
    open_store(settings)  # reachable and tables created before any worker starts
    began = pd.Timestamp.now(tz="UTC")
    for line in set_source_pool_limits(settings):
        print(line)
    released = release_dead_runs()
    if released:
        print(
            f"  released {len(released)} earlier run(s) whose process died "
            f"({', '.join(r[:8] for r in released)}): their pool slots are free again"
        )
    problems: list[str] = []
    try:
        results = run_days(
            days,
            workers,
            pool=settings.source_pools,  # a stall names the holders of each
            timeout=args.timeout,
            run=functools.partial(run_demo_day, defect=defect),
        )
    except RunsStalledError as exc:
        problems.append(str(exc))
        results = [DayRun(d, False, "", "did not finish (stalled)") for d in days]
    except KeyboardInterrupt:
        print(
            "\nghtrader demo: interrupted; workers stopped, their runs marked failed and "
            "pool slots freed",
            file=sys.stderr,
        )
        return 130
    coverage = _materialize_coverage()
    if coverage:
        problems.append(f"coverage report not refreshed: {coverage}")
    summary = _print_summary(settings, days, results, began, problems, defect)
    ok = not problems and all(r.success or _failed_as_planned(r, defect, summary) for r in results)
    return 0 if ok else 1


def _failed_as_planned(r: DayRun, defect: DemoDefect | None, summary: pd.DataFrame | None) -> bool:
    """The defective day's run fails (its blocking check fails the step); that is the plan
    only if the defective symbol-day is blocked and every other symbol of the day passed
    to its manifest."""
    if defect is None or r.trading_day != defect.trading_day or summary is None:
        return False
    day = summary[summary["trading_day"] == r.trading_day]
    mine = day["symbol"] == defect.symbol
    return bool(
        mine.any()
        and day.loc[mine, "verdict"].str.startswith("blocked").all()
        and day.loc[~mine, "manifest"].ne("no").all()
    )


def _print_summary(
    settings: Settings,
    days: list[str],
    results: list[DayRun],
    began: pd.Timestamp,
    problems: list[str],
    defect: DemoDefect | None = None,
) -> pd.DataFrame | None:
    """What ran, what failed and where the data is; printed whatever happened before.
    Returns the per symbol-day table (``None`` when the store could not be read)."""
    print()
    table = None
    try:
        store = open_store(settings)
        table = _demo_summary(store, settings, days, began)
        shown = table.copy()
        if defect is not None:
            mark = (shown["symbol"] == defect.symbol) & (shown["trading_day"] == defect.trading_day)
            shown.loc[mark, "trading_day"] += " (DEFECT, on purpose)"
        print(markdown_table(shown, for_ui=False))
        print(
            "  verdict: pass / warn REASON / blocked REASON (a blocking check failed: stored "
            "for inspection, no manifest). manifest: yes = written by this demo; kept = an "
            "earlier manifest (this run did not replace the day); no = none"
        )
    except Exception as exc:  # noqa: BLE001 - the summary must not hide the outcome
        print(f"  (summary table unavailable: {type(exc).__name__}: {exc})")
    print()
    for r in results:
        state = "success" if r.success else f"FAILED{f' ({r.error})' if r.error else ''}"
        if not r.success and _failed_as_planned(r, defect, table):
            state = "FAILED as planned (the defective day's blocking check failed)"
        print(f"  run {r.run_id or '-'} ({r.trading_day}): {state}")
    for problem in problems:
        print(f"  FAILED: {problem}")
    failed = [r for r in results if not r.success and not _failed_as_planned(r, defect, table)]
    if failed:
        print(
            f"  {len(failed)} of {len(results)} day(s) failed: see the run's logs and check "
            "results in the Dagster UI (below)"
        )
    print()
    print(f"Data:      {_store_location(settings)}")
    print(f"Manifests: {settings.data_dir / 'manifests'}")
    print(f"Coverage:  {settings.data_dir / 'reports' / 'coverage.json'}  (or: ghtrader coverage)")
    print("Dagster UI (shows these runs, partitions, checks and metadata):")
    print(f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev -w workspace.yaml")
    print(f"  {_partitions_note(settings, days)}")
    if defect is not None:
        _print_defect_guide(defect)
    return table


def _partitions_note(settings: Settings, days: list[str]) -> str:
    """What the UI's partition counts will say about the demo's window (issue 13.3)."""
    keys = partition_keys(settings)
    if not keys or keys[0] >= days[0]:
        return f"The partitions and this demo both start at {days[0]}."
    return (
        f"Partitions start at GHTRADER_START_DATE={settings.start_date}: the UI counts "
        f"{len(keys)} trading days, so these {len(days)} show as about "
        f"{max(1, round(100 * len(days) / len(keys)))}% filled, the rest as missing, and "
        f"plots put them at the right edge. For a UI that shows only this window, run both "
        f"this demo and dagster dev with GHTRADER_START_DATE={days[0]}."
    )


def _print_defect_guide(defect: DemoDefect) -> None:
    """Where the failed day shows in the UI."""
    exchange, product = defect.symbol.split("@")[1].split(".")
    ticks = f"{exchange}/{product}_ticks"
    day = defect.trading_day
    print(f"Defective day (on purpose): {defect.label}. Where to see it in the UI:")
    print(
        f"  - Assets -> {ticks} -> Partitions -> {day}: metadata verdict = blocked, "
        "verdict_reason, action_hint, max_gap_seconds"
    )
    print(f"  - Assets -> {ticks} -> Checks -> book_integrity -> Partitions: {day} failed")
    print(f"  - Assets -> {exchange}/{product}_manifest -> Partitions: {day} failed (not written)")
    print(
        "  - Assets -> coverage_report -> recent_days: "
        f"{day} blocked for {defect.symbol}; report: blocking_failure_days, worst_day"
    )
    print(f"  - Runs: the run of {day}, tagged {DEMO_DEFECT_TAG}")


def _materialize_coverage() -> str:
    """Refresh the coverage report; returns "" or what went wrong (never raises)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from ghtrader_assets.assets.coverage import COVERAGE_REPORT_KEY
    from ghtrader_assets.definitions import defs
    from ghtrader_assets.runner import execute_with_origin

    # The implicit asset job, reconstructed from the code location as the UI's run worker
    # does, so the run carries the workspace's origin like the day runs.
    repo = ReconstructableRepository.for_module("ghtrader_assets.definitions", "defs")
    try:
        result = execute_with_origin(
            repo.get_reconstructable_job(defs.resolve_implicit_global_asset_job_def().name),
            run_config=QUIET,
            tags={},
            asset_selection=[COVERAGE_REPORT_KEY],
        )
        if result.success:
            return ""
        causes = [
            _root_cause(e.step_failure_data.error) if e.step_failure_data else ""
            for e in result.get_step_failure_events()
        ]
        return f"run {result.run_id} failed: {'; '.join(c for c in causes if c)}"
    except Exception as exc:  # noqa: BLE001 - reported in the summary, exit code 1
        return f"{type(exc).__name__}: {exc}"


def _root_cause(error: object) -> str:
    """The innermost error of a Dagster step failure ("...: coverage store unreachable")."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return one_line_text(str(getattr(error, "message", "") or ""))


def _demo_summary(
    store: TickStore, settings: Settings, days: list[str], began: pd.Timestamp
) -> pd.DataFrame:
    """One row per symbol and day, also for days with nothing stored; a manifest older
    than ``began`` (the day was not replaced by this demo) is shown as kept, with its time."""
    from ghtrader_assets.schema import MANIFESTS, VALIDATION_SUMMARY

    symbols = [s.raw for s in settings.universe]
    summaries = store.read_table(
        VALIDATION_SUMMARY, symbols=symbols, start_day=days[0], end_day=days[-1]
    )
    manifests = store.read_table(MANIFESTS, symbols=symbols, start_day=days[0], end_day=days[-1])
    by_day = {(r.symbol, r.trading_day): r for r in summaries.itertuples(index=False)}
    written = {
        (r.symbol, r.trading_day): pd.Timestamp(r.created_at)
        for r in manifests.itertuples(index=False)
    }
    rows = []
    for symbol in symbols:
        for day in days:
            rec = by_day.get((symbol, day))
            created = written.get((symbol, day))
            manifest = "no"
            if created is not None:
                manifest = "yes" if created >= began else f"kept ({created:%Y-%m-%d %H:%M} UTC)"
            if rec is None:
                rows.append(
                    {
                        "symbol": symbol,
                        "trading_day": day,
                        "underlying": "-",
                        "rows": 0,
                        "checks_passed": 0,
                        "checks_failed": "not stored",
                        "verdict": "missing",
                        "manifest": manifest,
                    }
                )
                continue
            outcomes = json.loads(rec.check_outcomes)
            failed = sorted(n for n, o in outcomes.items() if not o["passed"])
            rows.append(
                {
                    "symbol": symbol,
                    "trading_day": day,
                    "underlying": rec.underlying,
                    "rows": int(rec.rows),
                    "checks_passed": len(outcomes) - len(failed),
                    "checks_failed": ", ".join(failed) or "-",
                    "verdict": _verdict_cell(rec, outcomes),
                    "manifest": manifest,
                }
            )
    return pd.DataFrame(rows)


def _read_store(settings: Settings) -> TickStore:
    """The store for read-only commands, without loading the Dagster definitions (which
    would cost seconds): the same root and class the store resource uses."""
    if settings.store == "embedded":
        from ghtrader_assets.stores.embedded import EmbeddedStore

        return EmbeddedStore(settings.data_dir / "store")
    return open_store(settings)


def _settings_only(args: argparse.Namespace) -> Settings:
    """Settings checked as for every command, without preparing a Dagster instance (the
    read-only commands need none)."""
    if args.data_dir:
        os.environ["GHTRADER_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    return Settings.load()


def partition_keys(settings: Settings) -> list[str]:
    """The trading-day partition keys Dagster shows (``GHTRADER_START_DATE`` to the last
    completed trading day at ``GHTRADER_CLOSE_TIME``), from the calendar alone: the
    read-only commands do not import Dagster."""
    from ghtrader_assets.partitions import resolve_close, resolve_start_date

    close = resolve_close(settings.close_time)
    last = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ), close)
    start = resolve_start_date(settings.start_date)
    return [d.isoformat() for d in calendar.trading_days(start, last)] if start <= last else []


def cmd_coverage(args: argparse.Namespace) -> int:
    """The coverage report against the partitions (from GHTRADER_START_DATE, as the UI
    counts them), then pass / warn / blocked of the last ten trading days."""
    from ghtrader_assets.reports import coverage_report, recent_verdicts

    settings = _settings_only(args)
    store = _read_store(settings)
    verify = getattr(store, "verify", None)
    if args.verify and callable(verify):
        # stat every ticks and summary file against the catalog; re-read only changed ones
        from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY

        found = verify([s.raw for s in settings.universe], tables=[TICKS, VALIDATION_SUMMARY])
        print(f"verify: {found.line()}")
    keys = partition_keys(settings)
    report = coverage_report(store, settings.universe, partition_keys=keys)
    print(markdown_table(report, for_ui=False))
    print()
    print("Recent trading days (pass / warn REASON / blocked REASON / missing / - not listed):")
    print(markdown_table(recent_verdicts(store, settings.universe, keys[-10:]), for_ui=False))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild (or with --verify, check) the embedded store's partition catalog."""
    settings = _settings_only(args)
    if settings.store != "embedded":
        print(
            "ghtrader reindex: only the embedded store keeps a partition catalog", file=sys.stderr
        )
        return 2
    store = _read_store(settings)
    report = store.verify(full=True) if args.verify else store.reindex()
    print(f"ghtrader reindex: {store.root}: {report.line()}")
    for title, items in (
        ("added", report.added),
        ("removed", report.removed),
        ("repaired", report.repaired),
        ("corrupt", report.corrupt),
    ):
        for item in items[:50]:
            print(f"  {title}: {item}")
        if len(items) > 50:
            print(f"  ... {len(items) - 50} more {title}")
    return 1 if report.corrupt else 0


def cmd_status(args: argparse.Namespace) -> int:
    """Per symbol: last ingested day, freshness, last check outcomes, ingestion rate."""
    settings = _settings_only(args)
    from ghtrader_assets.partitions import resolve_close
    from ghtrader_assets.status import status_table

    close = resolve_close(settings.close_time)
    store = _read_store(settings)
    table = status_table(store, settings.universe, close=close, verify_files=True)
    as_of = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ), close)
    print(f"ghtrader status: store={settings.store} ({settings.data_dir}), as of {as_of} close")
    print()
    shown = table.assign(
        ingest_rows_per_second=table["ingest_rows_per_second"].round(0),
        write_mb_per_second=table["write_mb_per_second"].round(1),
        validation_seconds=table["validation_seconds"].round(3),
    )
    print(markdown_table(shown.astype(object).fillna(""), for_ui=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Ticks of one symbol (main or contract) over a day range to a Parquet or CSV file."""
    from ghtrader_assets.ticks import export_ticks

    _prepare_environment(args)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    out = Path(args.out).expanduser()
    rows = export_ticks(args.symbol, args.start, args.end, out, columns=columns)
    print(
        f"ghtrader export: {rows} rows of {args.symbol} ({args.start}..{args.end or args.start}) -> {out}"
    )
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Materialize ``--symbols`` over ``--start..--end`` (see :mod:`ghtrader_assets.backfill`)."""
    from ghtrader_assets.backfill import backfill, parse_day, parse_symbols

    settings = _prepare_environment(args)
    symbols = parse_symbols(args.symbols, settings)
    start, end = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    print(f"ghtrader backfill: source={settings.source} store={settings.store}")
    return backfill(settings, symbols, start, end, args.workers or default_workers(settings))


def cmd_import(args: argparse.Namespace) -> int:
    """Ingest a folder of DataDownloader files (see :mod:`ghtrader_assets.importer`)."""
    from ghtrader_assets.importer import import_folder

    settings = _prepare_environment(args)
    workers = args.workers or max(1, min(settings.source_pool_limit, os.cpu_count() or 1))
    roll = Path(args.roll_schedule).expanduser() if args.roll_schedule else None
    return import_folder(Path(args.dir), workers, roll_schedule=roll)


def _verdict_cell(rec, outcomes: dict) -> str:
    """``pass``, ``warn REASON`` or ``blocked REASON`` of a stored summary row."""
    from ghtrader_assets.validation.verdict import status_from_summary

    blocked = any(o["blocking"] and not o["passed"] for o in outcomes.values())
    status = status_from_summary(str(rec.verdict_overall), blocked)
    reason = str(rec.reason_overall or "")
    return f"{status} {reason}" if status != "pass" and reason not in ("", "OK") else status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ghtrader", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", help="data directory (default $GHTRADER_DATA_DIR or ~/.ghtrader)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the last trading days of the universe")
    demo.add_argument("--days", type=int, default=5, help="how many trading days (default 5)")
    demo.add_argument(
        "--workers",
        type=int,
        default=0,
        help="days run in parallel (default: the source pool limit, at most the CPU count "
        "for offline sources)",
    )
    demo.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for the runs before giving up with what blocks them (default 3600)",
    )
    demo.add_argument(
        "--clean",
        action="store_true",
        help="no defective day (by default, with the simulated source, one symbol-day gets "
        "injected defects so the UI shows a failed day)",
    )
    demo.set_defaults(func=cmd_demo)
    cov = sub.add_parser("coverage", help="print the coverage table of the store")
    cov.add_argument(
        "--verify",
        action="store_true",
        help="first check every ticks and validation-summary file against the catalog "
        "(a stat each; changed files are read in full): costs O(partitions)",
    )
    cov.set_defaults(func=cmd_coverage)
    status = sub.add_parser(
        "status", help="per symbol: last ingested day, freshness, checks, ingestion rate"
    )
    status.set_defaults(func=cmd_status)
    reindex = sub.add_parser(
        "reindex",
        help="rebuild the embedded store's partition catalog from the files (every file "
        "read in full and checked)",
    )
    reindex.add_argument(
        "--verify",
        action="store_true",
        help="check every file against the catalog and repair what differs, without rebuilding",
    )
    reindex.set_defaults(func=cmd_reindex)
    export = sub.add_parser(
        "export", help="write the ticks of a symbol or contract over a day range to Parquet/CSV"
    )
    export.add_argument("symbol", help="main symbol (KQ.m@SHFE.cu) or contract (SHFE.cu2507)")
    export.add_argument("--start", required=True, help="first trading day, YYYY-MM-DD")
    export.add_argument("--end", help="last trading day (default: --start)")
    export.add_argument("--columns", help="comma-separated tick columns (default: all)")
    export.add_argument("--out", required=True, help="a .parquet, .csv or .csv.gz file")
    export.set_defaults(func=cmd_export)

    back = sub.add_parser(
        "backfill", help="materialize a range of trading days (progress, summary, exit code)"
    )
    back.add_argument("--symbols", default="", help="comma-separated (default: the universe)")
    back.add_argument("--start", required=True, help="first trading day, YYYY-MM-DD")
    back.add_argument("--end", required=True, help="last trading day, YYYY-MM-DD")
    back.add_argument("--workers", type=int, default=0, help="days run in parallel")
    back.set_defaults(func=cmd_backfill)
    imp = sub.add_parser("import", help="ingest a folder of TqSdk DataDownloader CSV files")
    imp.add_argument("dir", help="folder with .csv / .csv.gz tick files (searched recursively)")
    imp.add_argument(
        "--roll-schedule", default="", help="roll_schedule.csv to use (default: derived)"
    )
    imp.add_argument("--workers", type=int, default=0, help="days run in parallel")
    imp.set_defaults(func=cmd_import)
    args = parser.parse_args(argv)
    code = _run(args)
    # Release QuestDB handles now, not in the interpreter's teardown; a command that never
    # imported the resources (the embedded store's reads) has none and does not pay
    # Dagster's import time for this. Writes that did not land as written fail the command.
    resources = sys.modules.get("ghtrader_assets.resources")
    unsettled = resources.close_stores(log=False) if resources is not None else []
    for line in unsettled:
        print(f"ghtrader: {line}", file=sys.stderr)
    return 1 if unsettled and code == 0 else code


def _run(args: argparse.Namespace) -> int:
    """The command, with user errors and store errors as one line and an exit code."""
    try:
        return args.func(args)
    except user_errors() as exc:
        print(f"ghtrader: {one_line(exc)}", file=sys.stderr)
        return 2
    except StoreError as exc:  # messages written for users: table, partition, what to do
        print(f"ghtrader: {exc}", file=sys.stderr)
        return 1
    except RunsStalledError as exc:  # backfill / import: no run finished for --timeout s
        print(f"ghtrader: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: the runner stopped its workers already
        print(
            f"ghtrader {args.command}: interrupted; workers stopped, their runs marked failed "
            "and pool slots freed",
            file=sys.stderr,
        )
        return 130


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "a setting or an argument is wrong": one line and exit code 2.

    Settings are checked up front (:meth:`Settings.load`); the rest are raised while the
    definitions load (unknown products, partitions, validation and QuestDB settings)."""
    from ghtrader_assets.partitions import PartitionsConfigError
    from ghtrader_assets.products import UnknownProductError
    from ghtrader_assets.stores.questdb.settings import (
        QuestDBSettingsError,
        QuestDBUnreachableError,
    )
    from ghtrader_assets.symbols import SymbolError
    from ghtrader_assets.ticks import ReadError
    from ghtrader_assets.validation.config import ValidationConfigError

    return (
        SettingsError,
        SymbolError,
        UnknownProductError,
        PartitionsConfigError,
        ValidationConfigError,
        QuestDBSettingsError,
        QuestDBUnreachableError,  # a server that is not there: the settings name it
        ReadError,
    )


def one_line_text(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())

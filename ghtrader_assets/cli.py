"""``ghtrader``: run the demo, print coverage and status.

``ghtrader demo`` materializes real partitions (the last N trading days of the universe)
through the same Dagster definitions the UI loads, runs the days in parallel processes,
and records the runs in a persistent Dagster instance so ``dagster dev`` shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.metadata import markdown_table
from ghtrader_assets.runner import QUIET, ensure_dagster_home, run_days, set_pool_limit
from ghtrader_assets.stores.base import StoreError, TickStore
from ghtrader_assets.stores.questdb.settings import QuestDBSettingsError, QuestDBUnreachableError
from ghtrader_assets.ticks import ReadError

#: Errors that are the user's to fix (settings, an unreachable server): one line, exit 2.
USER_ERRORS = (SettingsError, QuestDBSettingsError, QuestDBUnreachableError, ReadError)


def _prepare_environment(args: argparse.Namespace) -> Settings:
    """Fix data dir and DAGSTER_HOME in the environment so worker processes agree."""
    if args.data_dir:
        os.environ["GHTRADER_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    settings = Settings.from_env()
    os.environ.setdefault("GHTRADER_DATA_DIR", str(settings.data_dir))
    ensure_dagster_home(settings.data_dir / "dagster_home")
    return settings


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
    if settings.source == "tqsdk":
        return settings.source_pool_limit
    return max(1, min(settings.source_pool_limit, os.cpu_count() or 1))


def _demo_days(settings: Settings, n: int) -> list[str]:
    last = calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    days: list = [last]
    while len(days) < n:
        days.append(calendar.previous_trading_day(days[-1]))
    start = pd.Timestamp(settings.start_date).date()
    return sorted(d.isoformat() for d in days if d >= start)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _prepare_environment(args)
    days = _demo_days(settings, args.days)
    symbols = ", ".join(s.raw for s in settings.universe)
    print(f"ghtrader demo: source={settings.source} store={settings.store}")
    print(f"  symbols: {symbols}")
    workers = args.workers or default_workers(settings)
    print(f"  trading days: {', '.join(days)} ({workers} in parallel)")
    open_store(settings)  # reachable and tables created before any worker starts
    set_pool_limit(settings.source, settings.source_pool_limit)
    results = run_days(days, workers)
    _materialize_coverage()
    summary = _demo_summary(settings, days)
    print()
    print(markdown_table(summary, for_ui=False))
    ok = all(r.success for r in results)
    print()
    for r in results:
        print(f"  run {r.run_id} ({r.trading_day}): {'success' if r.success else 'FAILED'}")
    print()
    print(f"Data:      {_store_location(settings)}")
    print(f"Manifests: {settings.data_dir / 'manifests'}")
    print(f"Coverage:  {settings.data_dir / 'reports' / 'coverage.json'}  (or: ghtrader coverage)")
    print("Dagster UI (shows these runs, partitions, checks and metadata):")
    print(f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev -w workspace.yaml")
    return 0 if ok else 1


def _materialize_coverage() -> None:
    from dagster import DagsterInstance

    from ghtrader_assets.assets.coverage import COVERAGE_REPORT_KEY
    from ghtrader_assets.definitions import defs

    with DagsterInstance.get() as instance:
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[COVERAGE_REPORT_KEY], run_config=QUIET
        )


def _demo_summary(settings: Settings, days: list[str]) -> pd.DataFrame:
    from ghtrader_assets.schema import MANIFESTS, VALIDATION_SUMMARY

    store = open_store(settings)
    symbols = [s.raw for s in settings.universe]
    summaries = store.read_table(
        VALIDATION_SUMMARY, symbols=symbols, start_day=days[0], end_day=days[-1]
    )
    manifests = store.read_table(MANIFESTS, symbols=symbols, start_day=days[0], end_day=days[-1])
    have_manifest = set(zip(manifests["symbol"], manifests["trading_day"], strict=True))
    rows = []
    for rec in summaries.itertuples(index=False):
        outcomes = json.loads(rec.check_outcomes)
        failed = sorted(n for n, o in outcomes.items() if not o["passed"])
        rows.append(
            {
                "symbol": rec.symbol,
                "trading_day": rec.trading_day,
                "underlying": rec.underlying,
                "rows": int(rec.rows),
                "checks_passed": len(outcomes) - len(failed),
                "checks_failed": ", ".join(failed) or "-",
                "manifest": "yes" if (rec.symbol, rec.trading_day) in have_manifest else "no",
            }
        )
    return pd.DataFrame(rows).sort_values(["symbol", "trading_day"]).reset_index(drop=True)


def _read_store(settings: Settings) -> TickStore:
    """The store for read-only commands, without loading the Dagster definitions (which
    would cost seconds): the same root and class the store resource uses."""
    if settings.store == "embedded":
        from ghtrader_assets.stores.embedded import EmbeddedStore

        return EmbeddedStore(settings.data_dir / "store")
    return open_store(settings)


def _settings_only(args: argparse.Namespace) -> Settings:
    if args.data_dir:
        os.environ["GHTRADER_DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    return Settings.from_env()


def cmd_coverage(args: argparse.Namespace) -> int:
    from ghtrader_assets.reports import coverage_report

    settings = _settings_only(args)
    store = _read_store(settings)
    verify = getattr(store, "verify", None)
    if args.verify and callable(verify):
        # stat every ticks and summary file against the catalog; re-read only changed ones
        from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY

        found = verify([s.raw for s in settings.universe], tables=[TICKS, VALIDATION_SUMMARY])
        print(f"verify: {found.line()}")
    report = coverage_report(store, settings.universe)
    print(markdown_table(report, for_ui=False))
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
    args = parser.parse_args(argv)
    from ghtrader_assets.resources import close_stores

    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"ghtrader: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # messages written for users: table, partition, what to do
        print(f"ghtrader: {exc}", file=sys.stderr)
        return 1
    finally:
        close_stores()  # release QuestDB handles now, not in the interpreter's teardown


if __name__ == "__main__":
    sys.exit(main())

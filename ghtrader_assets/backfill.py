"""``ghtrader backfill``: materialize a range of trading days from the terminal.

Why: ``dagster asset materialize --partition-range`` refuses assets that are not
single-run-backfillable, and a quant backfilling months wants a command that blocks until
done, shows progress and ends with a table and an exit code. This runs the same thing the
UI's *Materialize* over a partition range does: one Dagster run per trading day (recorded
in ``$DAGSTER_HOME``, visible in the UI), through the same runner as ``ghtrader demo``
(:mod:`ghtrader_assets.runner`), under the source's pool limit, with the same checks.

Days a product was not listed on are not work and are left out (with a note), as the
automation and coverage do. The exit code is non-zero when any run failed or any
symbol-day ended without a manifest (a blocking check failed).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.runner import QUIET, DayRun, run_day, run_days, set_source_pool_limits
from ghtrader_assets.sessions import not_listed_reason
from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_main_symbol


class BackfillError(SettingsError):
    """The request cannot run as given (unknown symbol, bad dates, nothing to do)."""


@dataclass(frozen=True)
class BackfillPlan:
    """Which symbols to materialize on which trading day (ISO day -> symbols)."""

    days: dict[str, tuple[str, ...]]
    #: Symbol-days left out on purpose, with why (not listed yet, delisted, ...).
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def symbol_days(self) -> int:
        return sum(len(s) for s in self.days.values())


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BackfillError(f"{what}={text!r} is not a date (YYYY-MM-DD)") from None


def parse_symbols(text: str | None, settings: Settings) -> list[MainSymbol]:
    """``--symbols`` (comma-separated) checked against ``GHTRADER_UNIVERSE``; empty: all."""
    if not text or not text.strip():
        return list(settings.universe)
    chosen = []
    for raw in (s.strip() for s in text.split(",")):
        if not raw:
            continue
        try:
            symbol = parse_main_symbol(raw)
        except SymbolError as exc:
            raise BackfillError(f"--symbols: {exc}") from None
        if symbol not in settings.universe:
            known = ", ".join(s.raw for s in settings.universe)
            raise BackfillError(
                f"--symbols: {raw} is not in GHTRADER_UNIVERSE ({known}); add it there so "
                "the definitions have its assets"
            )
        chosen.append(symbol)
    if not chosen:
        raise BackfillError("--symbols: no symbol given")
    return chosen


def _not_listed(symbol: MainSymbol, day: dt.date) -> str | None:
    """Why ``symbol`` has no session on ``day`` (None when it trades)."""
    return not_listed_reason(symbol.exchange, symbol.product, day)


def plan_backfill(
    settings: Settings,
    symbols: Sequence[MainSymbol],
    start: dt.date,
    end: dt.date,
    *,
    now: pd.Timestamp | None = None,
) -> BackfillPlan:
    """Trading days in ``[start, end]`` that are partitions (from ``GHTRADER_START_DATE`` to
    the last completed trading day), per day the symbols listed then."""
    if end < start:
        raise BackfillError(f"--end {end} is before --start {start}")
    first = dt.date.fromisoformat(settings.start_date)
    if start < first:
        raise BackfillError(
            f"--start {start} is before GHTRADER_START_DATE={first}, the first partition; "
            "lower GHTRADER_START_DATE to backfill earlier days"
        )
    last = calendar.last_completed_trading_day(now or pd.Timestamp.now(tz=calendar.TZ))
    if start > last:
        raise BackfillError(f"--start {start} is after the last completed trading day {last}")
    days: dict[str, tuple[str, ...]] = {}
    skipped: list[tuple[str, str, str]] = []
    for day in calendar.trading_days(start, min(end, last)):
        listed = []
        for symbol in symbols:
            reason = _not_listed(symbol, day)
            if reason:
                skipped.append((symbol.raw, day.isoformat(), reason))
            else:
                listed.append(symbol.raw)
        if listed:
            days[day.isoformat()] = tuple(listed)
    if not days:
        raise BackfillError(f"no trading day to materialize between {start} and {end}")
    return BackfillPlan(days, skipped)


def run_planned_day(day: str, plan_days: dict[str, tuple[str, ...]]) -> DayRun:
    """One day of a plan: the run of the day's listed symbols (module level: picklable)."""
    return run_day(day, list(plan_days[day]))


def execute_plan(
    plan: BackfillPlan,
    workers: int,
    out: Callable[[str], None] = print,
    pool: str | Sequence[str] | None = None,
) -> list[DayRun]:
    """One Dagster run per day, ``workers`` at once, through the demo's runner (dead runs
    released, bounded wait, Ctrl-C stops the workers); a line per finished day. ``pool``:
    the pools whose holders a wait reports (one per TqSdk account)."""
    total = len(plan.days)
    finished = 0

    def progress(result: DayRun) -> None:
        nonlocal finished
        finished += 1
        state = "ok" if result.success else f"FAILED{f' ({result.error})' if result.error else ''}"
        symbols = ", ".join(plan.days[result.trading_day])
        out(f"  [{finished}/{total}] {result.trading_day} {symbols}: {state} (run {result.run_id})")

    runs = run_days(
        list(plan.days),
        workers,
        pool=pool,
        say=out,
        run=functools.partial(run_planned_day, plan_days=plan.days),
        on_done=progress,
    )
    return sorted(runs, key=lambda r: r.trading_day)


def materialize_coverage() -> None:
    """Refresh the coverage report after the runs (as the demo does)."""
    from dagster import DagsterInstance

    from ghtrader_assets.assets.coverage import COVERAGE_REPORT_KEY
    from ghtrader_assets.definitions import defs

    with DagsterInstance.get() as instance:
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[COVERAGE_REPORT_KEY],
            run_config=QUIET,
            raise_on_error=False,
        )


def summary_table(settings: Settings, plan: BackfillPlan, runs: Sequence[DayRun]) -> pd.DataFrame:
    """Per symbol-day: run outcome, rows, checks passed / warned / failed, why, manifest."""
    from ghtrader_assets.definitions import build_resources
    from ghtrader_assets.schema import MANIFESTS, VALIDATION_SUMMARY

    store = build_resources(settings)["store"].get_store()
    symbols = sorted({s for syms in plan.days.values() for s in syms})
    first, last = min(plan.days), max(plan.days)
    summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols, start_day=first, end_day=last)
    manifests = store.read_table(MANIFESTS, symbols=symbols, start_day=first, end_day=last)
    fresh = {r.trading_day: r.success for r in runs}
    have_manifest = set(zip(manifests["symbol"], manifests["trading_day"], strict=True))
    by_key = {(r.symbol, r.trading_day): r for r in summaries.itertuples(index=False)}
    rows = []
    for day, syms in sorted(plan.days.items()):
        for symbol in syms:
            rec = by_key.get((symbol, day))
            row: dict[str, object] = {
                "symbol": symbol,
                "trading_day": day,
                "run": "ok" if fresh.get(day) else "FAILED",
                "underlying": "",
                "rows": "",
                "passed": "",
                "warned": "",
                "failed": "",
                "why": "",
                "manifest": "yes" if (symbol, day) in have_manifest else "no",
            }
            if rec is not None:
                outcomes = json.loads(rec.check_outcomes)
                warned = sorted(
                    n for n, o in outcomes.items() if not o["passed"] and o["severity"] == "WARN"
                )
                failed = sorted(
                    n for n, o in outcomes.items() if not o["passed"] and o["severity"] == "ERROR"
                )
                row.update(
                    underlying=rec.underlying,
                    rows=int(rec.rows),
                    passed=len(outcomes) - len(warned) - len(failed),
                    warned=", ".join(warned) or "-",
                    failed=", ".join(failed) or "-",
                    why=_why(rec),
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _why(rec: object) -> str:
    """The reason codes of the verdict layers that are not ok (``-`` when clean)."""
    parts = []
    for layer in ("engineering", "source", "policy"):
        status = getattr(rec, f"verdict_{layer}", "ok")
        if status and status != "ok":
            parts.append(f"{layer} {status}: {getattr(rec, f'reason_{layer}', '')}")
    return "; ".join(parts) or "-"


def exit_code(table: pd.DataFrame) -> int:
    """0 when every run succeeded and every symbol-day has a manifest, else 1."""
    ok = (table["run"] == "ok") & (table["manifest"] == "yes")
    return 0 if bool(ok.all()) else 1


def backfill(
    settings: Settings,
    symbols: Sequence[MainSymbol],
    start: dt.date,
    end: dt.date,
    workers: int,
    out: Callable[[str], None] = print,
) -> int:
    """Plan, run, summarize; returns the exit code."""
    from ghtrader_assets.metadata import markdown_table

    plan = plan_backfill(settings, symbols, start, end)
    return run_plan(settings, plan, workers, out, markdown_table)


def run_plan(
    settings: Settings,
    plan: BackfillPlan,
    workers: int,
    out: Callable[[str], None],
    markdown_table: Callable[..., str] | None = None,
) -> int:
    """Run a plan with progress lines and print the summary table; returns the exit code."""
    if markdown_table is None:
        from ghtrader_assets.metadata import markdown_table
    days = list(plan.days)
    out(
        f"  {plan.symbol_days} symbol-days over {len(days)} trading days "
        f"({days[0]}..{days[-1]}), {workers} in parallel, pool "
        f"{', '.join(map(repr, settings.source_pools))} limit {settings.source_pool_limit}"
    )
    for symbol, day, reason in plan.skipped[:5]:
        out(f"  skipped {symbol} {day}: {reason}")
    if len(plan.skipped) > 5:
        out(f"  ... and {len(plan.skipped) - 5} more symbol-days not listed")
    for line in set_source_pool_limits(settings):
        out(line)
    runs = execute_plan(plan, workers, out, pool=settings.source_pools)
    materialize_coverage()
    table = summary_table(settings, plan, runs)
    out("")
    out(markdown_table(table, for_ui=False))
    out("")
    out(f"Data:      {settings.data_dir / 'store'}")
    out(f"Manifests: {settings.data_dir / 'manifests'}")
    out(
        f"Dagster UI: DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '')} dagster dev -w workspace.yaml"
    )
    code = exit_code(table)
    if code:
        out("Some days failed or have no manifest: see the table and the runs in the UI.")
    return code

"""The coverage report: what the store holds per symbol, against the trading calendar.

Cheap to refresh: it reads the store's coverage bounds (the embedded store's partition
catalog or one QuestDB query, cached), the stored days and per-day gap totals and verdicts,
never ticks. With a catalog the days and the per-day figures come from it (no file opened:
O(symbols) queries); otherwise from the partition lists and the validation-summary table.
Partitions the store knows to be damaged are counted in ``corrupt_days`` and named in
``corrupt_sample``. Shared by the ``coverage_report`` asset and ``ghtrader coverage``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.schema import SKIP_LEDGER, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.sessions import listed_days
from ghtrader_assets.stores.base import StoreError, TickStore
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation.verdict import status_from_summary


@dataclass(frozen=True)
class ReportColumn:
    """One column of the coverage report: its name, table type and what it means."""

    name: str
    type: str  # a Dagster TableColumn type: string | int | float
    description: str


#: The coverage report's columns, in the order the UI shows them: what needs attention
#: (blocked days, the worst day) first, so a 1600 px window shows it without scrolling.
COLUMNS: tuple[ReportColumn, ...] = (
    ReportColumn("symbol", "string", "Main continuous symbol"),
    ReportColumn("blocking_failure_days", "int", "Stored days whose blocking checks failed"),
    ReportColumn(
        "worst_day",
        "string",
        "The latest blocked day and its reason code, else the day with most gap seconds",
    ),
    ReportColumn("missing_days", "int", "Expected days not stored"),
    ReportColumn("days_behind", "int", "Expected days after the last stored day"),
    ReportColumn(
        "days_expected",
        "int",
        "Partitions (trading days from GHTRADER_START_DATE to the last completed day) on "
        "which the product was listed",
    ),
    ReportColumn("days_present", "int", "Trading days stored"),
    ReportColumn("first_day", "string", "First stored trading day"),
    ReportColumn("last_day", "string", "Last stored trading day"),
    ReportColumn("rows", "int", "Tick rows stored"),
    ReportColumn("gap_count", "int", "In-session gaps above the threshold, all days"),
    ReportColumn("gap_seconds", "float", "Empty in-session seconds in those gaps, all days"),
    ReportColumn("missing_sample", "string", "The first five missing days"),
    ReportColumn("skipped_days", "int", "Days the source skipped (skip ledger)"),
    ReportColumn("skip_reasons", "string", "Why, with counts"),
    ReportColumn("corrupt_days", "int", "Stored days the store knows to be damaged"),
    ReportColumn("corrupt_sample", "string", "Up to three damaged partitions and why"),
)

REPORT_COLUMNS = [c.name for c in COLUMNS]


def coverage_report(
    store: TickStore,
    universe: Sequence[MainSymbol],
    *,
    as_of: dt.date | None = None,
    partition_keys: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per symbol: blocked and worst day, holes against the calendar, lag, gaps.

    With ``partition_keys`` (the trading-day partitions, from ``GHTRADER_START_DATE`` on)
    the calendar is those keys, as Dagster counts them: ``days_expected`` are the keys on
    which the product was listed (days before its listing or while delisted are not work,
    which Dagster does count as missing partitions), ``missing_days`` the expected days not
    stored and ``days_behind`` the expected days after the last stored one
    (:func:`_report_over_partitions`). Without them (a bare store):

    ``days_expected`` counts trading days between the first and last stored day on which
    the product was listed (:func:`ghtrader_assets.sessions.listed_days`: days before its
    listing or while delisted are not work); ``missing_days`` are the holes among them;
    ``days_behind`` counts such days after the last stored day up to ``as_of`` (default: the
    last completed trading day).

    With a partition catalog everything but the skip ledger comes from per-symbol
    aggregates; a symbol's day list is read only when its day count differs from the
    expected count (it has holes), to name them.
    """
    if partition_keys is not None:
        return _report_over_partitions(store, universe, list(partition_keys))
    as_of = as_of or calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    symbols = [s.raw for s in universe]
    agg, gaps = _aggregates(store, symbols)
    skips = _skips_by_symbol(store, symbols)
    damaged = {sym: group for sym, group in store.damaged(symbols).groupby("symbol")}
    rows = []
    for main in universe:
        sym = main.raw
        n_days = int(agg.at[sym, "n_days"]) if sym in agg.index else 0
        row: dict[str, object] = {"symbol": sym, "days_present": n_days}
        if n_days:
            first_day, last_day = str(agg.at[sym, "first_day"]), str(agg.at[sym, "last_day"])
            first, last = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
            listed = listed_days(main.exchange, main.product, calendar.trading_days(first, last))
            missing: list[str] = []
            if len(listed) != n_days:  # holes (or days the calendar does not know): name them
                present = set(store.partitions(TICKS, sym))
                missing = [d.isoformat() for d in listed if d.isoformat() not in present]
            later = (
                [d for d in calendar.trading_days(last, as_of) if d > last] if as_of > last else []
            )
            behind = listed_days(main.exchange, main.product, later)
            row.update(
                first_day=first_day,
                last_day=last_day,
                days_expected=len(listed),
                missing_days=len(missing),
                missing_sample=", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
                days_behind=len(behind),
                rows=int(agg.at[sym, "rows"]),
            )
        else:
            row.update(
                first_day="",
                last_day="",
                days_expected=0,
                missing_days=0,
                missing_sample="",
                days_behind=0,
                rows=0,
            )
        row.update(_symbol_tail(sym, gaps, skips, damaged))
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _aggregates(
    store: TickStore, symbols: list[str]
) -> tuple[pd.DataFrame, dict[str, dict[str, object]]]:
    """Per-symbol day counts/bounds/rows (``n_days``, ``first_day``, ``last_day``, ``rows``)
    and gap/verdict rollups: from the catalog when the store keeps one, else by reading."""
    ticks = store.catalog_summary(TICKS, symbols)
    if ticks is not None:
        agg = ticks.set_index("symbol")
        gaps = _rollups_from_catalog(store.catalog_summary(VALIDATION_SUMMARY, symbols))
        # The catalog counts error days and names the day with most gap seconds; a symbol
        # with error days gets its summaries read (only those symbols), so worst_day names
        # the blocked day with its reason, as without a catalog.
        for sym, rollup in gaps.items():
            if rollup["blocking_failure_days"]:
                gaps[sym] = _gap_rollup(store.read_table(VALIDATION_SUMMARY, symbols=[sym]))
    else:
        agg = store.coverage(symbols).set_index("symbol")
        summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols)
        gaps = {sym: _gap_rollup(group) for sym, group in summaries.groupby("symbol")}
    return agg, gaps


def _symbol_tail(
    sym: str,
    gaps: dict[str, dict[str, object]],
    skips: dict[str, pd.DataFrame],
    damaged: dict[str, pd.DataFrame],
) -> dict[str, object]:
    """Gap/verdict rollup, skip-ledger and damage fields of one symbol's row."""
    row: dict[str, object] = dict(gaps.get(sym, _NO_GAPS))
    mine = skips.get(sym)
    if mine is None:
        row.update(skipped_days=0, skip_reasons="")
    else:
        row["skipped_days"] = int(mine["trading_day"].nunique())
        row["skip_reasons"] = ", ".join(
            f"{reason} x{n}" for reason, n in mine["reason"].value_counts().sort_index().items()
        )
    bad = damaged.get(sym)
    if bad is None:
        row.update(corrupt_days=0, corrupt_sample="")
    else:
        row["corrupt_days"] = int(bad["trading_day"].nunique())
        row["corrupt_sample"] = "; ".join(
            f"{r.trading_day} {r.table}: {r.problem}"[:160] for r in bad.head(3).itertuples()
        )
    return row


def _report_over_partitions(
    store: TickStore, universe: Sequence[MainSymbol], keys: list[str]
) -> pd.DataFrame:
    """The report against Dagster's partition keys (see :func:`coverage_report`)."""
    symbols = [s.raw for s in universe]
    agg, gaps = _aggregates(store, symbols)
    skips = _skips_by_symbol(store, symbols)
    damaged = {sym: group for sym, group in store.damaged(symbols).groupby("symbol")}
    calendar_days = [dt.date.fromisoformat(k) for k in keys]
    rows = []
    for main in universe:
        sym = main.raw
        n_days = int(agg.at[sym, "n_days"]) if sym in agg.index else 0
        expected = [d.isoformat() for d in listed_days(main.exchange, main.product, calendar_days)]
        stored = set(store.partitions(TICKS, sym)) if n_days else set()
        missing = [d for d in expected if d not in stored]
        last = str(agg.at[sym, "last_day"]) if n_days else ""
        row: dict[str, object] = {
            "symbol": sym,
            "days_present": n_days,
            "first_day": str(agg.at[sym, "first_day"]) if n_days else "",
            "last_day": last,
            "days_expected": len(expected),
            "missing_days": len(missing),
            "missing_sample": ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
            "days_behind": sum(1 for d in expected if d > last),
            "rows": int(agg.at[sym, "rows"]) if n_days else 0,
        }
        row.update(_symbol_tail(sym, gaps, skips, damaged))
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _skips_by_symbol(store: TickStore, symbols: list[str]) -> dict[str, pd.DataFrame]:
    """Skip-ledger rows per symbol; a symbol whose ledger cannot be read gets one row that
    says so, instead of the report failing for every symbol."""
    try:
        table = store.read_table(SKIP_LEDGER, symbols=symbols)
        return {sym: group for sym, group in table.groupby("symbol")}
    except StoreError:
        out: dict[str, pd.DataFrame] = {}
        for sym in symbols:
            try:
                out[sym] = store.read_table(SKIP_LEDGER, symbols=[sym])
            except StoreError:
                out[sym] = pd.DataFrame({"trading_day": ["?"], "reason": ["unreadable ledger"]})
        return out


_NO_GAPS: dict[str, object] = {
    "gap_count": 0,
    "gap_seconds": 0.0,
    "blocking_failure_days": 0,
    "worst_day": "",
}


def _rollups_from_catalog(summary: pd.DataFrame | None) -> dict[str, dict[str, object]]:
    """The catalog's per-symbol gap totals as report fields."""
    out: dict[str, dict[str, object]] = {}
    for rec in (summary if summary is not None else pd.DataFrame()).itertuples(index=False):
        out[rec.symbol] = {
            "gap_count": int(rec.gap_count) if pd.notna(rec.gap_count) else 0,
            "gap_seconds": float(rec.gap_seconds) if pd.notna(rec.gap_seconds) else 0.0,
            "blocking_failure_days": int(rec.error_days) if pd.notna(rec.error_days) else 0,
            "worst_day": (
                f"{rec.worst_day} most gap seconds" if isinstance(rec.worst_day, str) else ""
            ),
        }
    return out


def day_statuses(summaries: pd.DataFrame) -> pd.Series:
    """``pass`` / ``warn`` / ``blocked`` of each stored summary row (index kept).

    ``blocked`` when a blocking check failed (its ``check_outcomes``), as the manifest
    decides; ``warn`` when the overall verdict is not ok; otherwise ``pass``."""
    return pd.Series(
        [
            status_from_summary(str(r.verdict_overall), _blocked(str(r.check_outcomes)))
            for r in summaries[["verdict_overall", "check_outcomes"]].itertuples(index=False)
        ],
        index=summaries.index,
        dtype=object,
    )


def _blocked(check_outcomes: str) -> bool:
    try:
        outcomes = json.loads(check_outcomes)
    except ValueError:
        return False
    return any(o.get("blocking") and not o.get("passed") for o in outcomes.values())


def _gap_rollup(summaries: pd.DataFrame) -> dict[str, object]:
    """Gap totals, days that failed a blocking check, and the worst day.

    The worst day is the most recent blocked day with its reason code
    (``2026-03-03 blocked CROSSED_BOOK``; its own metadata has the hint and the largest
    gap); with none blocked, the day with
    most gap seconds, the earliest on ties (``2026-03-02 most gap seconds``), as the
    embedded store's catalog names it, so both read paths give the same report."""
    if summaries.empty:
        return dict(_NO_GAPS)
    gap_count = summaries["gap_count"].fillna(0)
    gap_seconds = summaries["gap_seconds_total"].fillna(0)
    status = day_statuses(summaries)
    blocked = summaries[status.eq("blocked")]
    if len(blocked):
        top = blocked.sort_values("trading_day").iloc[-1]
        reason = str(top.get("reason_overall") or "")
        detail = f" {reason}" if reason not in ("", "OK", "nan") else ""
        worst = f"{top['trading_day']} blocked{detail}"
    elif gap_seconds.max() > 0:
        by_day = summaries.assign(_gap=gap_seconds).sort_values("trading_day")
        worst = f"{by_day.loc[by_day['_gap'].idxmax(), 'trading_day']} most gap seconds"
    else:
        worst = ""
    return {
        "gap_count": int(gap_count.sum()),
        "gap_seconds": float(gap_seconds.sum()),
        "blocking_failure_days": int(len(blocked)),
        "worst_day": worst,
    }


def recent_verdicts(
    store: TickStore, universe: Sequence[MainSymbol], days: Sequence[str]
) -> pd.DataFrame:
    """Pass / warn / blocked per trading day (rows, newest first) and symbol (columns).

    A cell reads ``pass``, ``warn GAP_SECONDS``, ``blocked BOOK_CROSSED``, ``missing``
    (expected, not stored) or ``-`` (not listed that day). The one place to see at a glance
    which recent days of which symbols need attention."""
    symbols = [s.raw for s in universe]
    ordered = sorted(days, reverse=True)
    frame = pd.DataFrame({"trading_day": ordered})
    if not ordered:
        return frame.assign(**{s: pd.Series(dtype=object) for s in symbols})
    summaries = store.read_table(
        VALIDATION_SUMMARY, symbols=symbols, start_day=min(ordered), end_day=max(ordered)
    )
    status = day_statuses(summaries) if len(summaries) else pd.Series(dtype=object)
    cells: dict[tuple[str, str], str] = {}
    for idx, r in summaries.iterrows():
        reason = str(r.get("reason_overall") or "")
        word = str(status[idx])
        cells[(str(r["symbol"]), str(r["trading_day"]))] = (
            f"{word} {reason}" if word != "pass" and reason not in ("", "OK", "nan") else word
        )
    as_dates = [dt.date.fromisoformat(d) for d in ordered]
    for main in universe:
        listed = {d.isoformat() for d in listed_days(main.exchange, main.product, as_dates)}
        frame[main.raw] = [
            cells.get((main.raw, d), "missing" if d in listed else "-") for d in ordered
        ]
    return frame

"""The coverage report: what the store holds per symbol, against the trading calendar.

Cheap to refresh: it reads the store's coverage bounds (Parquet footers or one QuestDB
query, cached), the partition lists and the small validation-summary table, never ticks.
Shared by the ``coverage_report`` asset and ``ghtrader coverage``.
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
from ghtrader_assets.stores.base import TickStore
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
        "worst_day", "string", "The worst stored day: status, reason code, largest gap (s)"
    ),
    ReportColumn("days_present", "int", "Trading days stored"),
    ReportColumn(
        "days_expected",
        "int",
        "Partitions (trading days from GHTRADER_START_DATE to the last completed day) on "
        "which the product was listed",
    ),
    ReportColumn("missing_days", "int", "Expected days not stored"),
    ReportColumn("days_behind", "int", "Expected days after the last stored day"),
    ReportColumn("first_day", "string", "First stored trading day"),
    ReportColumn("last_day", "string", "Last stored trading day"),
    ReportColumn("rows", "int", "Tick rows stored"),
    ReportColumn("gap_count", "int", "In-session gaps above the threshold, all days"),
    ReportColumn("gap_seconds", "float", "Empty in-session seconds in those gaps, all days"),
    ReportColumn("missing_sample", "string", "The first five missing days"),
    ReportColumn("skipped_days", "int", "Days the source skipped (skip ledger)"),
    ReportColumn("skip_reasons", "string", "Why, with counts"),
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
    which the product was listed (:func:`ghtrader_assets.sessions.listed_days`: days before
    its listing or while delisted are not work, which Dagster does count as missing
    partitions), ``missing_days`` the expected days not stored and ``days_behind`` the
    expected days after the last stored one. Without them (a bare store), the calendar runs
    from the first stored day to ``as_of`` (default: the last completed trading day).
    """
    if partition_keys is not None:
        return _report_over_partitions(store, universe, list(partition_keys))
    as_of = as_of or calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    symbols = [s.raw for s in universe]
    bounds = store.coverage(symbols).set_index("symbol")
    summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols)
    skips = store.read_table(SKIP_LEDGER, symbols=symbols)
    rows = []
    for main in universe:
        sym = main.raw
        present = store.partitions(TICKS, sym)
        row: dict[str, object] = {"symbol": sym, "days_present": len(present)}
        if present:
            first, last = dt.date.fromisoformat(present[0]), dt.date.fromisoformat(present[-1])
            listed = listed_days(main.exchange, main.product, calendar.trading_days(first, last))
            expected = [d.isoformat() for d in listed]
            missing = sorted(set(expected) - set(present))
            later = [d for d in calendar.trading_days(last, as_of) if d > last]
            behind = listed_days(main.exchange, main.product, later)
            row.update(
                first_day=present[0],
                last_day=present[-1],
                days_expected=len(expected),
                missing_days=len(missing),
                missing_sample=", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
                days_behind=len(behind),
                rows=int(bounds.at[sym, "rows"]) if sym in bounds.index else 0,
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
        row.update(_gap_rollup(summaries[summaries["symbol"] == sym]))
        row.update(_skip_rollup(skips[skips["symbol"] == sym]))
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _report_over_partitions(
    store: TickStore, universe: Sequence[MainSymbol], keys: list[str]
) -> pd.DataFrame:
    """The report against Dagster's partition keys (see :func:`coverage_report`)."""
    symbols = [s.raw for s in universe]
    bounds = store.coverage(symbols).set_index("symbol")
    summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols)
    skips = store.read_table(SKIP_LEDGER, symbols=symbols)
    calendar_days = [dt.date.fromisoformat(k) for k in keys]
    rows = []
    for main in universe:
        sym = main.raw
        present = store.partitions(TICKS, sym)
        stored = set(present)
        expected = [d.isoformat() for d in listed_days(main.exchange, main.product, calendar_days)]
        missing = [d for d in expected if d not in stored]
        last = present[-1] if present else ""
        row: dict[str, object] = {
            "symbol": sym,
            "days_present": len(present),
            "first_day": present[0] if present else "",
            "last_day": last,
            "days_expected": len(expected),
            "missing_days": len(missing),
            "missing_sample": ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
            "days_behind": sum(1 for d in expected if d > last),
            "rows": int(bounds.at[sym, "rows"]) if sym in bounds.index else 0,
        }
        row.update(_gap_rollup(summaries[summaries["symbol"] == sym]))
        row.update(_skip_rollup(skips[skips["symbol"] == sym]))
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _skip_rollup(mine: pd.DataFrame) -> dict[str, object]:
    return {
        "skipped_days": int(mine["trading_day"].nunique()),
        "skip_reasons": ", ".join(
            f"{reason} x{n}" for reason, n in mine["reason"].value_counts().sort_index().items()
        ),
    }


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


_RANK = {"pass": 0, "warn": 1, "blocked": 2}


def _gap_rollup(summaries: pd.DataFrame) -> dict[str, object]:
    """Gap totals, days that failed a blocking check, and the worst day: the most recent
    of the worst status, ties broken by gap seconds (``2026-03-03 blocked BOOK_CROSSED,
    max gap 44 s``)."""
    if summaries.empty:
        return {"gap_count": 0, "gap_seconds": 0.0, "blocking_failure_days": 0, "worst_day": ""}
    gap_count = summaries["gap_count"].fillna(0)
    gap_seconds = summaries["gap_seconds_total"].fillna(0)
    status = day_statuses(summaries)
    ranked = summaries.assign(
        _rank=status.map(_RANK), _gap=gap_seconds, _status=status
    ).sort_values(["_rank", "_gap", "trading_day"], ascending=False)
    top = ranked.iloc[0]
    if top["_rank"] == 0 and top["_gap"] <= 0:
        worst = ""
    else:
        reason = str(top.get("reason_overall") or "")
        detail = f" {reason}" if top["_rank"] > 0 and reason not in ("", "OK", "nan") else ""
        gap = top.get("max_gap_seconds")
        worst = f"{top['trading_day']} {top['_status']}{detail}, max gap {int(gap or 0)} s"
    return {
        "gap_count": int(gap_count.sum()),
        "gap_seconds": float(gap_seconds.sum()),
        "blocking_failure_days": int(status.eq("blocked").sum()),
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

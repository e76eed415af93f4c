"""The coverage report: what the store holds per symbol, against the trading calendar.

Cheap to refresh: it reads the store's coverage bounds (Parquet footers or one QuestDB
query, cached), the partition lists and the small validation-summary table, never ticks.
Shared by the ``coverage_report`` asset and ``ghtrader coverage``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.schema import SKIP_LEDGER, TICKS, VALIDATION_SUMMARY
from ghtrader_assets.sessions import listed_days
from ghtrader_assets.stores.base import TickStore
from ghtrader_assets.symbols import MainSymbol

REPORT_COLUMNS = [
    "symbol",
    "first_day",
    "last_day",
    "days_present",
    "days_expected",
    "missing_days",
    "missing_sample",
    "days_behind",
    "rows",
    "gap_count",
    "gap_seconds",
    "blocking_failure_days",
    "worst_day",
    "skipped_days",
    "skip_reasons",
]


def coverage_report(
    store: TickStore, universe: Sequence[MainSymbol], *, as_of: dt.date | None = None
) -> pd.DataFrame:
    """One row per symbol: stored range, holes against the calendar, lag, gap totals.

    ``days_expected`` counts trading days between the first and last stored day on which
    the product was listed (:func:`ghtrader_assets.sessions.listed_days`: days before its
    listing or while delisted are not work); ``missing_days`` are the holes among them;
    ``days_behind`` counts such days after the last stored day up to ``as_of`` (default: the
    last completed trading day).
    """
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
        mine = skips[skips["symbol"] == sym]
        row["skipped_days"] = int(mine["trading_day"].nunique())
        row["skip_reasons"] = ", ".join(
            f"{reason} x{n}" for reason, n in mine["reason"].value_counts().sort_index().items()
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _gap_rollup(summaries: pd.DataFrame) -> dict[str, object]:
    """Gap totals, days that failed a blocking check, and the day with most gap seconds."""
    if summaries.empty:
        return {"gap_count": 0, "gap_seconds": 0.0, "blocking_failure_days": 0, "worst_day": ""}
    gap_count = summaries["gap_count"].fillna(0)
    gap_seconds = summaries["gap_seconds_total"].fillna(0)
    failed = summaries["verdict_overall"].astype(str).eq("error")
    worst = summaries.loc[gap_seconds.idxmax(), "trading_day"] if gap_seconds.max() > 0 else ""
    return {
        "gap_count": int(gap_count.sum()),
        "gap_seconds": float(gap_seconds.sum()),
        "blocking_failure_days": int(failed.sum()),
        "worst_day": str(worst),
    }

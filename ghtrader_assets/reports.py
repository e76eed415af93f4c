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
from collections.abc import Sequence

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.schema import SKIP_LEDGER, TICKS, VALIDATION_SUMMARY
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
    "corrupt_days",
    "corrupt_sample",
]


def coverage_report(
    store: TickStore, universe: Sequence[MainSymbol], *, as_of: dt.date | None = None
) -> pd.DataFrame:
    """One row per symbol: stored range, holes against the calendar, lag, gap totals.

    ``days_expected`` counts trading days between the first and last stored day;
    ``missing_days`` are the holes among them; ``days_behind`` counts trading days after the
    last stored day up to ``as_of`` (default: the last completed trading day).
    """
    as_of = as_of or calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    symbols = [s.raw for s in universe]
    bounds = store.coverage(symbols).set_index("symbol")
    ticks_cat = store.catalog_rows(TICKS, symbols)
    if ticks_cat is not None:
        days_of = ticks_cat.groupby("symbol")["trading_day"].apply(list).to_dict()
        summaries = store.catalog_rows(VALIDATION_SUMMARY, symbols)
        summaries = summaries.rename(
            columns={"gap_seconds": "gap_seconds_total", "verdict": "verdict_overall"}
        )
    else:
        days_of = {sym: store.partitions(TICKS, sym) for sym in symbols}
        summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols)
    skips = store.read_table(SKIP_LEDGER, symbols=symbols)
    damaged = store.damaged(symbols)
    rows = []
    for sym in symbols:
        present = sorted(days_of.get(sym, []))
        row: dict[str, object] = {"symbol": sym, "days_present": len(present)}
        if present:
            first, last = dt.date.fromisoformat(present[0]), dt.date.fromisoformat(present[-1])
            expected = [d.isoformat() for d in calendar.trading_days(first, last)]
            missing = sorted(set(expected) - set(present))
            behind = [d for d in calendar.trading_days(last, as_of) if d > last]
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
        bad = damaged[damaged["symbol"] == sym]
        bad_days = sorted(set(bad["trading_day"].astype(str)))
        row["corrupt_days"] = len(bad_days)
        row["corrupt_sample"] = "; ".join(
            f"{r.trading_day} {r.table}: {r.problem}"[:160] for r in bad.head(3).itertuples()
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _gap_rollup(summaries: pd.DataFrame) -> dict[str, object]:
    """Gap totals, days that failed a blocking check, and the day with most gap seconds."""
    if summaries.empty:
        return {"gap_count": 0, "gap_seconds": 0.0, "blocking_failure_days": 0, "worst_day": ""}
    gap_count = pd.to_numeric(summaries["gap_count"], errors="coerce").fillna(0)
    gap_seconds = pd.to_numeric(summaries["gap_seconds_total"], errors="coerce").fillna(0)
    failed = summaries["verdict_overall"].astype(str).eq("error")
    worst = summaries.loc[gap_seconds.idxmax(), "trading_day"] if gap_seconds.max() > 0 else ""
    return {
        "gap_count": int(gap_count.sum()),
        "gap_seconds": float(gap_seconds.sum()),
        "blocking_failure_days": int(failed.sum()),
        "worst_day": str(worst),
    }

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
from ghtrader_assets.sessions import listed_days
from ghtrader_assets.stores.base import StoreError, TickStore
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

    ``days_expected`` counts trading days between the first and last stored day on which
    the product was listed (:func:`ghtrader_assets.sessions.listed_days`: days before its
    listing or while delisted are not work); ``missing_days`` are the holes among them;
    ``days_behind`` counts such days after the last stored day up to ``as_of`` (default: the
    last completed trading day).

    With a partition catalog everything but the skip ledger comes from per-symbol
    aggregates; a symbol's day list is read only when its day count differs from the
    expected count (it has holes), to name them.
    """
    as_of = as_of or calendar.last_completed_trading_day(pd.Timestamp.now(tz=calendar.TZ))
    symbols = [s.raw for s in universe]
    ticks = store.catalog_summary(TICKS, symbols)
    if ticks is not None:
        agg = ticks.set_index("symbol")
        gaps = _rollups_from_catalog(store.catalog_summary(VALIDATION_SUMMARY, symbols))
    else:
        agg = store.coverage(symbols).set_index("symbol")
        summaries = store.read_table(VALIDATION_SUMMARY, symbols=symbols)
        gaps = {sym: _gap_rollup(group) for sym, group in summaries.groupby("symbol")}
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
        row.update(gaps.get(sym, _NO_GAPS))
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
            "worst_day": str(rec.worst_day) if isinstance(rec.worst_day, str) else "",
        }
    return out


def _gap_rollup(summaries: pd.DataFrame) -> dict[str, object]:
    """Gap totals, days that failed a blocking check, and the day with most gap seconds."""
    if summaries.empty:
        return dict(_NO_GAPS)
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

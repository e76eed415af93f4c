"""``ghtrader status``: per symbol, how fresh the store is and how the last day went.

Cheap by construction: one cached coverage call for the last stored day of every symbol,
then per symbol the two small partitions of that day (validation summary, metrics). Shared
with the Prometheus collector (:mod:`ghtrader_assets.metrics`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.metrics import INGEST_RATE, SUMMARY_ASSET, TICKS_ASSET, VALIDATION_SECONDS
from ghtrader_assets.schema import METRICS, VALIDATION_SUMMARY
from ghtrader_assets.stores.base import TickStore
from ghtrader_assets.symbols import MainSymbol

STATUS_COLUMNS = [
    "symbol",
    "last_day",
    "last_tick",
    "days_behind",
    "freshness",
    "rows",
    "checks",
    "checks_failed",
    "ingest_rows_per_second",
    "write_mb_per_second",
    "validation_seconds",
]


def _as_of(now: dt.datetime | pd.Timestamp | None, close: dt.time) -> dt.date:
    return calendar.last_completed_trading_day(
        pd.Timestamp.now(tz=calendar.TZ) if now is None else now, close
    )


def days_behind(last_day: str, as_of: dt.date) -> int:
    """Trading days after ``last_day`` up to and including ``as_of``."""
    last = dt.date.fromisoformat(last_day)
    return sum(1 for d in calendar.trading_days(last, as_of) if d > last)


def freshness(behind: int | None) -> str:
    if behind is None:
        return "no data"
    if behind == 0:
        return "fresh"
    return f"{behind} trading day{'s' if behind > 1 else ''} behind"


def check_outcomes(summary: pd.DataFrame) -> tuple[str, int]:
    """``("ok" | "warn: a, b" | "error: c", failed count)`` from a day's summary row."""
    if summary.empty:
        return "not validated", 0
    row = summary.iloc[0]
    outcomes = json.loads(str(row["check_outcomes"]) or "{}")
    failed = sorted(name for name, o in outcomes.items() if not o.get("passed", False))
    verdict = str(row.get("verdict_overall", "") or ("warn" if failed else "ok"))
    return (f"{verdict}: {', '.join(failed)}" if failed else verdict), len(failed)


def _metric(metrics: pd.DataFrame, asset: str, metric: str) -> float:
    hit = metrics[(metrics["asset"] == asset) & (metrics["metric"] == metric)]["value"]
    return float(hit.iloc[-1]) if len(hit) else float("nan")


def status_table(
    store: TickStore,
    universe: Sequence[MainSymbol],
    *,
    now: dt.datetime | pd.Timestamp | None = None,
    close: dt.time = calendar.DEFAULT_CLOSE,
) -> pd.DataFrame:
    """One row per symbol: last stored day, freshness against the last completed trading
    day (``now``, default the current time), the day's check outcomes and figures."""
    as_of = _as_of(now, close)
    symbols = [s.raw for s in universe]
    coverage = store.coverage(symbols).set_index("symbol") if symbols else pd.DataFrame()
    rows = []
    for sym in symbols:
        last_day = coverage.at[sym, "last_day"] if sym in coverage.index else None
        if last_day is None or pd.isna(last_day):
            rows.append({"symbol": sym, "freshness": freshness(None), "checks": "-"})
            continue
        last_day = str(last_day)
        last_ts = coverage.at[sym, "last_ts"]
        summary = store.read_partition(VALIDATION_SUMMARY, sym, last_day)
        metrics = store.read_partition(METRICS, sym, last_day)
        checks, failed = check_outcomes(summary)
        behind = days_behind(last_day, as_of)
        rows.append(
            {
                "symbol": sym,
                "last_day": last_day,
                "last_tick": ""
                if pd.isna(last_ts)
                else last_ts.tz_convert(calendar.TZ).strftime("%Y-%m-%d %H:%M:%S"),
                "days_behind": behind,
                "freshness": freshness(behind),
                "rows": int(summary.iloc[0]["rows"]) if len(summary) else 0,
                "checks": checks,
                "checks_failed": failed,
                "ingest_rows_per_second": _metric(metrics, TICKS_ASSET, INGEST_RATE),
                "write_mb_per_second": _metric(metrics, TICKS_ASSET, "write_mb_per_second"),
                "validation_seconds": _metric(metrics, SUMMARY_ASSET, VALIDATION_SECONDS),
            }
        )
    out = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    for col in ("days_behind", "rows", "checks_failed"):
        out[col] = out[col].astype("Int64")
    return out.fillna({"last_day": "", "last_tick": ""})


def recent_metrics(
    store: TickStore,
    universe: Sequence[MainSymbol],
    *,
    days: int = 20,
    now: dt.datetime | pd.Timestamp | None = None,
    close: dt.time = calendar.DEFAULT_CLOSE,
) -> pd.DataFrame:
    """Metric rows of the last ``days`` trading days (to the last completed one)."""
    as_of = _as_of(now, close)
    start = as_of
    for _ in range(days - 1):
        start = calendar.previous_trading_day(start)
    return store.read_table(
        METRICS,
        symbols=[s.raw for s in universe],
        start_day=start.isoformat(),
        end_day=as_of.isoformat(),
    )

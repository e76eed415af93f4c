"""``ghtrader status``: per symbol, how fresh the store is and how the last day went.

Cheap by construction, O(symbols) whatever the history: one coverage call for the last
stored day of every symbol, then that day's check outcome and figures. With a store that
keeps a partition catalog (the embedded store) those come from the catalog in two indexed
queries; otherwise from the day's two small partitions (validation summary, metrics).
Shared with the Prometheus collector (:mod:`ghtrader_assets.metrics`).

Damaged partitions (a file that is unreadable or no longer what was written) are counted
per symbol; ``verify_files=True`` first checks the files of each symbol's last day against
the catalog (a ``stat`` each, a full read only if one changed), which the CLI does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ghtrader_assets import calendar
from ghtrader_assets.metrics import INGEST_RATE, SUMMARY_ASSET, TICKS_ASSET, VALIDATION_SECONDS
from ghtrader_assets.schema import METRICS, VALIDATION_SUMMARY
from ghtrader_assets.stores.base import StoreError, TickStore
from ghtrader_assets.symbols import MainSymbol

NAN = float("nan")

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
    "corrupt_days",
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


@dataclass(frozen=True)
class _DayFacts:
    """What status shows about one symbol's last day."""

    checks: str
    failed: int
    rows: int
    figures: dict[str, float]


def _facts_from_catalog(store: TickStore, last_days: dict[str, str]) -> dict[str, _DayFacts] | None:
    """Check outcome and figures of each symbol's last day from the catalog (``None`` when
    the store keeps none)."""
    symbols = list(last_days)
    days = sorted(set(last_days.values()))
    summaries = store.catalog_rows(VALIDATION_SUMMARY, symbols, days=days)
    if summaries is None:
        return None
    metrics = store.catalog_rows(METRICS, symbols, days=days)
    by_day = {
        (r.symbol, r.trading_day): r
        for r in summaries.itertuples(index=False)
        if last_days.get(r.symbol) == r.trading_day
    }
    figures = {
        (r.symbol, r.trading_day): r.facts
        for r in (metrics.itertuples(index=False) if metrics is not None else ())
    }
    out: dict[str, _DayFacts] = {}
    for sym, day in last_days.items():
        rec = by_day.get((sym, day))
        if rec is None or rec.state != "ok":
            checks, failed, rows = ("corrupt" if rec is not None else "not validated"), 0, 0
        else:
            names = [n for n in (rec.checks_failed or "").split(",") if n]
            verdict = str(rec.verdict or ("warn" if names else "ok"))
            checks = f"{verdict}: {', '.join(names)}" if names else verdict
            failed, rows = len(names), int(rec.facts.get("rows", 0))
        out[sym] = _DayFacts(checks, failed, rows, dict(figures.get((sym, day), {})))
    return out


def _facts_from_partitions(store: TickStore, sym: str, day: str) -> _DayFacts:
    summary = store.read_partition(VALIDATION_SUMMARY, sym, day)
    metrics = store.read_partition(METRICS, sym, day)
    checks, failed = check_outcomes(summary)
    figures = {
        f"{a}.{m}": _metric(metrics, a, m)
        for a, m in (
            (TICKS_ASSET, INGEST_RATE),
            (TICKS_ASSET, "write_mb_per_second"),
            (SUMMARY_ASSET, VALIDATION_SECONDS),
        )
    }
    rows = int(summary.iloc[0]["rows"]) if len(summary) else 0
    return _DayFacts(checks, failed, rows, figures)


def status_table(
    store: TickStore,
    universe: Sequence[MainSymbol],
    *,
    now: dt.datetime | pd.Timestamp | None = None,
    close: dt.time = calendar.DEFAULT_CLOSE,
    verify_files: bool = False,
) -> pd.DataFrame:
    """One row per symbol: last stored day, freshness against the last completed trading
    day (``now``, default the current time), the day's check outcomes and figures, and how
    many of its stored partitions are damaged."""
    as_of = _as_of(now, close)
    symbols = [s.raw for s in universe]
    coverage = store.coverage(symbols).set_index("symbol") if symbols else pd.DataFrame()
    last_days = {
        sym: str(coverage.at[sym, "last_day"])
        for sym in symbols
        if sym in coverage.index and pd.notna(coverage.at[sym, "last_day"])
    }
    verify = getattr(store, "verify", None)
    if verify_files and last_days and callable(verify):
        verify(list(last_days), days=sorted(set(last_days.values())))
    bad_tables: dict[tuple[str, str], list[str]] = {}
    corrupt: dict[str, int] = {}
    if symbols:
        for rec in store.damaged(symbols).itertuples(index=False):
            bad_tables.setdefault((rec.symbol, rec.trading_day), []).append(str(rec.table))
        for sym, _day in bad_tables:
            corrupt[sym] = corrupt.get(sym, 0) + 1
    behind_of: dict[str, int] = {}
    facts = _facts_from_catalog(store, last_days) if last_days else {}
    rows = []
    for sym in symbols:
        last_day = last_days.get(sym)
        if last_day is None:
            rows.append(
                {
                    "symbol": sym,
                    "freshness": freshness(None),
                    "checks": "-",
                    "corrupt_days": corrupt.get(sym, 0),
                }
            )
            continue
        last_ts = coverage.at[sym, "last_ts"]
        day = facts[sym] if facts is not None else _try_partitions(store, sym, last_day)
        checks = day.checks
        if (sym, last_day) in bad_tables:
            checks = "corrupt: " + ", ".join(sorted(bad_tables[(sym, last_day)]))
        if last_day not in behind_of:  # symbols mostly share their last day
            behind_of[last_day] = days_behind(last_day, as_of)
        behind = behind_of[last_day]
        rows.append(
            {
                "symbol": sym,
                "last_day": last_day,
                "last_tick": ""
                if pd.isna(last_ts)
                else last_ts.tz_convert(calendar.TZ).strftime("%Y-%m-%d %H:%M:%S"),
                "days_behind": behind,
                "freshness": freshness(behind),
                "rows": day.rows,
                "checks": checks,
                "checks_failed": day.failed,
                "ingest_rows_per_second": day.figures.get(f"{TICKS_ASSET}.{INGEST_RATE}", NAN),
                "write_mb_per_second": day.figures.get(f"{TICKS_ASSET}.write_mb_per_second", NAN),
                "validation_seconds": day.figures.get(f"{SUMMARY_ASSET}.{VALIDATION_SECONDS}", NAN),
                "corrupt_days": corrupt.get(sym, 0),
            }
        )
    out = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    for col in ("days_behind", "rows", "checks_failed", "corrupt_days"):
        out[col] = out[col].astype("Int64")
    return out.fillna({"last_day": "", "last_tick": ""})


def _try_partitions(store: TickStore, sym: str, day: str) -> _DayFacts:
    """The day's facts from its partitions; an unreadable one is shown as such instead of
    failing the whole table."""
    try:
        return _facts_from_partitions(store, sym, day)
    except StoreError as exc:
        return _DayFacts(f"unreadable: {exc}"[:120], 0, 0, {})


def recent_metrics(
    store: TickStore,
    universe: Sequence[MainSymbol],
    *,
    days: int = 20,
    now: dt.datetime | pd.Timestamp | None = None,
    close: dt.time = calendar.DEFAULT_CLOSE,
) -> pd.DataFrame:
    """Metric rows of the last ``days`` trading days (to the last completed one): from the
    partition catalog when the store keeps one (no file opened), else from the table.
    Columns ``symbol, trading_day, asset, metric, value``."""
    as_of = _as_of(now, close)
    start = as_of
    for _ in range(days - 1):
        start = calendar.previous_trading_day(start)
    symbols = [s.raw for s in universe]
    cat = store.catalog_rows(
        METRICS, symbols, start_day=start.isoformat(), end_day=as_of.isoformat()
    )
    if cat is not None:
        flat = [
            (r.symbol, r.trading_day, *key.split(".", 1), value)
            for r in cat.itertuples(index=False)
            if r.state == "ok"
            for key, value in r.facts.items()
        ]
        return pd.DataFrame(flat, columns=["symbol", "trading_day", "asset", "metric", "value"])
    return store.read_table(
        METRICS,
        symbols=[s.raw for s in universe],
        start_day=start.isoformat(),
        end_day=as_of.isoformat(),
    )

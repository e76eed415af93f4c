"""Quarantine: where a rejected download goes instead of replacing a good stored day.

A re-download that fails a blocking check must not replace a stored day that passed (a
provider hiccup, a truncated file, another contract's ticks under the right header). The
good day stays; the rejected ticks and their validation summary are written to two tables
of their own, ``ticks_main_l5_rejected`` and ``validation_summary_rejected``, same columns
and same ``(symbol, trading_day)`` partitions as the real ones, so they can be inspected
with the same calls::

    store.read_partition(REJECTED_TICKS, "KQ.m@SHFE.cu", "2026-03-02")
    store.read_partition(REJECTED_SUMMARY, "KQ.m@SHFE.cu", "2026-03-02")["check_outcomes"]

Each table keeps the latest rejected download per symbol-day (a later rejection replaces
it). Nothing reads these tables on the data path: coverage, manifests and the status table
only ever see the stored (good) day. Both stores create them like any other table.
"""

from __future__ import annotations

import pandas as pd

from ghtrader_assets.schema import TICKS, VALIDATION_SUMMARY, TableSpec
from ghtrader_assets.stores.base import TickStore

#: Ticks of downloads refused because they fail blocking checks where the stored day passes.
#: Not partition-pruned by ``ts``: a rejected download may hold ticks outside its day.
REJECTED_TICKS = TableSpec(
    name=f"{TICKS.name}_rejected",
    schema=TICKS.schema,
    timestamp=TICKS.timestamp,
    dedup_keys=TICKS.dedup_keys,
    symbol_columns=TICKS.symbol_columns,
)

#: The validation summaries of those downloads: which checks failed and why.
REJECTED_SUMMARY = TableSpec(
    name=f"{VALIDATION_SUMMARY.name}_rejected",
    schema=VALIDATION_SUMMARY.schema,
    timestamp=VALIDATION_SUMMARY.timestamp,
    dedup_keys=VALIDATION_SUMMARY.dedup_keys,
    symbol_columns=VALIDATION_SUMMARY.symbol_columns,
)

QUARANTINE_TABLES: tuple[TableSpec, ...] = (REJECTED_TICKS, REJECTED_SUMMARY)


def quarantine(
    store: TickStore, symbol: str, trading_day: str, ticks: pd.DataFrame, summary: pd.DataFrame
) -> str:
    """Store a rejected download (ticks and summary); returns where its ticks went."""
    stats = store.write_partition(REJECTED_TICKS, symbol, trading_day, ticks)
    store.write_partition(REJECTED_SUMMARY, symbol, trading_day, summary)
    return stats.location or f"{REJECTED_TICKS.name} ({symbol}, {trading_day})"

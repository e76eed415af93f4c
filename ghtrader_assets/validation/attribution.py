"""Gap attribution: ask the source again whether it has ticks where we have a gap.

Off by default (``attribution_enabled``). For a day with over-threshold gaps the day is
downloaded again (sources answer per day, not per window) and each gap, largest first and
at most ``attribution_max_gaps`` of them, is marked:

* ``provider_missing``: the provider has no tick in the gap window either. The hole is in
  the source's data; re-downloading will not help (verdict: source layer, warn).
* ``provider_has_data``: the provider has ticks there, so we lost them on the way (a
  download cut short, a trimming bug): the engineering layer turns error.
* ``not_checked``: beyond the gap budget, the day budget was spent, or the source failed.

The day budget (``attribution_max_days``) is shared by all days of one run through an
:class:`AttributionBudget`, because every attributed day costs a full download from a
rate-limited provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from ghtrader_assets.sources.base import SourceError
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.verdict import Finding

ATTRIBUTIONS = ("unattributed", "provider_missing", "provider_has_data", "not_checked")


class AttributionBudget:
    """How many more days may be re-downloaded for attribution (thread-safe)."""

    def __init__(self, max_days: int) -> None:
        if max_days < 0:
            raise ValueError(f"attribution budget must be >= 0 days, got {max_days}")
        self._left = max_days
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return self._left

    def take(self) -> bool:
        """Spend one day of budget; False when none is left."""
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def attribute_gaps(
    gaps: pd.DataFrame,
    refetch: Callable[[], pd.DataFrame],
    *,
    config: ValidationConfig,
    budget: AttributionBudget | None = None,
) -> pd.DataFrame:
    """``gaps`` (VALIDATION_GAPS rows of one day) with the ``attribution`` column filled."""
    out = gaps.copy()
    if out.empty:
        return out
    out["attribution"] = "not_checked"
    budget = budget if budget is not None else AttributionBudget(config.attribution_max_days)
    if not budget.take():
        return out
    try:
        fresh = refetch()
    except SourceError:
        return out  # the source could not answer: leave the gaps not_checked
    times = np.sort(_ns(fresh["ts"])) if len(fresh) else np.zeros(0, dtype=np.int64)
    starts, ends = _ns(out["ts"]), _ns(out["gap_end"])
    inside = np.searchsorted(times, ends, side="left") - np.searchsorted(times, starts, side="left")
    order = np.argsort(-out["seconds"].to_numpy(), kind="stable")[: config.attribution_max_gaps]
    labels = out["attribution"].to_numpy(dtype=object)
    labels[order] = np.where(inside[order] > 0, "provider_has_data", "provider_missing")
    out["attribution"] = pd.array(labels, dtype="str")
    return out


def _ns(values: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8


def findings_of(gaps: pd.DataFrame) -> list[Finding]:
    """Verdict findings implied by attributed gaps."""
    if gaps.empty:
        return []
    labels = gaps["attribution"].astype(str)
    has, missing = (
        int((labels == "provider_has_data").sum()),
        int((labels == "provider_missing").sum()),
    )
    out = []
    if has:
        out.append(
            Finding(
                "engineering",
                "ERROR",
                "GAP_NOT_INGESTED",
                f"the provider has ticks in {has} gap window(s): re-ingest the day",
            )
        )
    if missing:
        out.append(
            Finding(
                "source",
                "WARN",
                "PROVIDER_GAP",
                f"the provider itself lacks ticks in {missing} gap window(s); re-downloading will not help",
            )
        )
    return out

"""Exact and conflicting duplicate ticks.

An *exact* duplicate repeats an earlier row in every column: ingestion drops it before
storing (:func:`drop_exact_duplicates`) and the ``duplicates`` check reports the count as a
warning. A *conflicting* duplicate shares the ``(ts, id)`` key with another row but differs in
a value: the store's dedup key would keep only one version, so it is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ghtrader_assets.validation.model import RuleResult
from ghtrader_assets.validation.samples import rows_sample


def drop_exact_duplicates(ticks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``ticks`` without rows that repeat an earlier row in every column, and how many went.

    Ingestion calls this before storing and hands the count to :func:`validate_day`
    (``duplicates_dropped=``) so the ``duplicates`` check reports it. Rows that share the
    ``(ts, id)`` key but differ in a value are kept: they are a conflict for the check to
    report, not a repeat to hide.
    """
    mask = exact_duplicate_mask(ticks)
    n = int(mask.sum())
    if not n:
        return ticks, 0
    return ticks.loc[~mask].reset_index(drop=True), n


def _key_shared_mask(df: pd.DataFrame) -> np.ndarray | None:
    """Rows whose ``(ts, id)`` key occurs more than once (``None`` without key columns).

    Conformed frames take a numpy path (one pass when already sorted, else a lexsort),
    which is several times faster than ``DataFrame.duplicated(subset=...)``."""
    if not {"ts", "id"} <= set(df.columns):
        return None
    n = len(df)
    if n < 2:
        return np.zeros(n, dtype=bool)
    if not isinstance(df["ts"].dtype, pd.DatetimeTZDtype) or df["id"].dtype != np.int64:
        return df.duplicated(subset=["ts", "id"], keep=False).to_numpy()
    t, ids = pd.DatetimeIndex(df["ts"]).asi8, df["id"].to_numpy()
    order = None if keys_sorted(t, ids) else np.lexsort((ids, t))
    st, si = (t, ids) if order is None else (t[order], ids[order])
    same = (st[1:] == st[:-1]) & (si[1:] == si[:-1])
    shared = np.zeros(n, dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    if order is None:
        return shared
    out = np.empty(n, dtype=bool)
    out[order] = shared
    return out


def keys_sorted(t: np.ndarray, ids: np.ndarray) -> bool:
    """True when rows are ordered by (ts, id)."""
    if t.size < 2:
        return True
    step = t[1:] - t[:-1]
    if np.any(step < 0):
        return False
    ties = step == 0
    return not ties.any() or bool(np.all(ids[1:][ties] >= ids[:-1][ties]))


def exact_duplicate_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows equal to an earlier row. Only rows sharing the key can be exact repeats, so the
    full-row comparison runs on those candidates alone (a clean day costs one key pass)."""
    if df.empty:
        return np.zeros(len(df), dtype=bool)
    candidates = _key_shared_mask(df)
    if candidates is None:
        return df.duplicated(keep="first").to_numpy()
    mask = np.zeros(len(df), dtype=bool)
    if candidates.any():
        mask[candidates] = df.loc[candidates].duplicated(keep="first").to_numpy()
    return mask


def conflicting_key_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows sharing their key with another row that is not an exact copy (run after exact
    duplicates are gone)."""
    shared = _key_shared_mask(df)
    return np.zeros(len(df), dtype=bool) if shared is None else shared


def duplicate_rules(
    frame: pd.DataFrame,
    original: pd.DataFrame,
    exact_present: np.ndarray,
    conflicting: np.ndarray,
    dropped: int,
) -> dict[str, RuleResult]:
    """Both duplicate rules: exact repeats (dropped at ingestion plus any still present in
    ``original``) and rows of ``frame`` whose key collides with different values."""
    present = int(exact_present.sum())
    exact = RuleResult(
        "exact_duplicates",
        float(present + dropped),
        metadata={"duplicates_dropped": int(dropped), "duplicates_present": present},
    )
    if present:
        exact.sample = rows_sample(
            original, np.flatnonzero(exact_present), ("last_price", "volume")
        )
    conflict = RuleResult("conflicting_duplicates", float(conflicting.sum()))
    if conflicting.any():
        conflict.sample = rows_sample(frame, np.flatnonzero(conflicting), ("last_price", "volume"))
    return {"exact_duplicates": exact, "conflicting_duplicates": conflict}

"""Short samples of offending rows (or gaps, or minutes) attached to failed checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ghtrader_assets.validation.model import SAMPLE_ROWS, RuleResult


def rows_sample(frame: pd.DataFrame, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """The first offending ``rows`` of ``frame`` with ``ts``, ``id`` and ``columns``."""
    shown = [c for c in ("ts", "id", *columns) if c in frame.columns]
    part = frame.iloc[rows[:SAMPLE_ROWS]][shown].reset_index(drop=True)
    return part


def check_sample(failed: list[RuleResult], fq: pd.DataFrame) -> pd.DataFrame:
    """Up to ``SAMPLE_ROWS`` offending items: a fair share of each failed rule first, then
    more of the earlier rules; a ``rule`` column names which rule each row broke."""
    parts: list[pd.DataFrame] = []
    for r in failed:
        if r.sample is not None:
            part = r.sample.head(SAMPLE_ROWS).copy()
        elif r.rows is not None and r.rows.size:
            part = rows_sample(fq, r.rows, r.columns)
        else:
            continue
        if "rule" in part.columns:
            part = part.drop(columns="rule")
        part.insert(0, "rule", r.name)
        parts.append(part)
    if not parts:
        return pd.DataFrame({"rule": pd.Series([], dtype="str")})
    share = max(1, SAMPLE_ROWS // len(parts))
    ordered = [p.head(share) for p in parts] + [p.iloc[share:] for p in parts]
    return pd.concat([p for p in ordered if len(p)], ignore_index=True).head(SAMPLE_ROWS)

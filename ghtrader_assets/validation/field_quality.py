"""Field-quality rules: the pandera TICKS schema plus vectorised cross-column/row rules.

Per-column facts (names, order, dtypes, required non-nulls, positive prices, non-negative
volumes) are exactly what :data:`ghtrader_assets.schema.TICKS` declares, so they are checked
by running that pandera schema lazily and sorting its failure cases into rules: this keeps
one definition of "a valid tick row". Rules that relate several columns or consecutive rows
(crossed book, ladders, cumulative fields, limit band, nulls) are numpy masks over the
float columns: a 60k-row day costs a few milliseconds.

Sequential rules (cumulative decrease, null runs) never compare across a *segment* start:
with sampling (see :mod:`~ghtrader_assets.validation.engine`) the frame is a concatenation
of contiguous blocks and a block's first row has no predecessor.

Non-finite values: ``inf``/``-inf`` in any numeric column fail the schema's ``finite`` check
(so field_quality fails at ERROR and blocks, the sample naming column and row), and those rows
are kept out of outlier statistics, where one ``inf`` would poison every rolling figure.

Limit band: TqSdk ticks carry no limit prices, so the rule runs only when the caller passes
``limits=(lower, upper)``; otherwise it is skipped and the metadata says so. With limits,
a null ask while the bid sits at the upper limit (and a null bid at the lower limit) is a
limit-locked book, not a missing field, and is not counted as null.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from ghtrader_assets.schema import BOOK_COLUMNS, PRICE_COLUMNS, TICKS
from ghtrader_assets.validation.arrays import (
    Segments,
    longest_run,
    prev_running_max,
    prev_value,
    segments_of,
)
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.model import RuleResult

#: Key fields whose nulls are judged: summary column suffix -> tick column.
KEY_NULL_FIELDS: dict[str, str] = {
    "bid1": "bid_price1",
    "ask1": "ask_price1",
    "last": "last_price",
    "volume": "volume",
    "open_interest": "open_interest",
}
DEPTH_COLUMNS: tuple[str, ...] = tuple(c for c in BOOK_COLUMNS if c[-1] in "2345")
BAND_COLUMNS: tuple[str, ...] = (
    "last_price",
    "highest",
    "lowest",
    *(f"{side}_price{lvl}" for side in ("bid", "ask") for lvl in range(1, 6)),
)
#: Relative tolerance for float comparisons of cumulative amounts and limit prices.
REL_TOL = 1e-9

_PANDERA_RULES = {"positive": "non_positive_price", "non_negative": "negative_volume"}
NUMERIC_COLUMNS: tuple[str, ...] = (
    *PRICE_COLUMNS,
    "volume",
    "amount",
    "open_interest",
    *BOOK_COLUMNS,
)


def float_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Numeric tick columns as float64 arrays; a missing or non-numeric column becomes NaN
    (the schema rule reports it, the other rules then see it as null)."""
    n = len(df)
    out: dict[str, np.ndarray] = {}
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            out[col] = np.full(n, np.nan)
            continue
        s = df[col]
        if s.dtype != np.float64:
            s = pd.to_numeric(s, errors="coerce")
        out[col] = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def non_finite_rows(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Rows holding ``inf`` or ``-inf`` in any numeric column (NaN is a null, not this)."""
    n = len(cols["last_price"])
    mask = np.zeros(n, dtype=bool)
    for x in cols.values():
        mask |= np.isinf(x)
    return mask


def _pandera_rule(column: object, check_number: object, error: object) -> str | None:
    """The value rule a TICKS column-check failure belongs to (``None``: a schema failure).

    pandera reports a built-in check by its error text (``greater_than(0)``), so the
    failure is traced back to the Check object, whose ``name`` the schema sets."""
    col = TICKS.schema.columns.get(str(column))
    if col is None or check_number is None or pd.isna(check_number):
        return None
    k = int(check_number)
    if not 0 <= k < len(col.checks):
        return None
    check = col.checks[k]
    if str(error) != str(check.error):
        return None
    return _PANDERA_RULES.get(check.name or "")


def schema_rules(df: pd.DataFrame) -> dict[str, RuleResult]:
    """Run the TICKS pandera schema and split its failures into three rules."""
    rows: dict[str, list[int]] = {"non_positive_price": [], "negative_volume": []}
    schema_cases = pd.DataFrame(columns=["column", "check", "failure_case"])
    try:
        TICKS.schema.validate(df, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        rule = pd.Series(
            [
                _pandera_rule(c, k, e)
                for c, k, e in zip(
                    cases["column"], cases["check_number"], cases["check"], strict=True
                )
            ],
            index=cases.index,
            dtype=object,
        )
        for name in rows:
            idx = pd.to_numeric(cases.loc[rule == name, "index"], errors="coerce").dropna()
            rows[name] = sorted(set(idx.astype(np.int64).tolist()))
        schema_cases = cases.loc[rule.isna(), ["column", "check", "failure_case", "index"]]
    out = {
        name: RuleResult(name, float(len(r)), rows=np.asarray(r, dtype=np.int64))
        for name, r in rows.items()
    }
    out["non_positive_price"].columns = ("last_price", "bid_price1", "ask_price1")
    out["negative_volume"].columns = (
        "volume",
        "amount",
        "open_interest",
        "bid_volume1",
        "ask_volume1",
    )
    sample = schema_cases.head(10).astype(str).reset_index(drop=True)
    out["schema"] = RuleResult(
        "schema",
        float(len(schema_cases)),
        sample=sample,
        metadata={"schema_failed_columns": _failed_columns(schema_cases)}
        if len(schema_cases)
        else {},
    )
    return out


def _failed_columns(cases: pd.DataFrame) -> str:
    """Column names behind schema failures; frame-level failures (a missing or an
    unexpected column) carry the column name as their failure case."""
    frame_level = cases["check"].astype(str).isin(("column_in_dataframe", "column_in_schema"))
    names = set(cases.loc[~frame_level, "column"].astype(str))
    names |= set(cases.loc[frame_level, "failure_case"].astype(str))
    return ", ".join(sorted(names))


def row_rules(
    cols: dict[str, np.ndarray],
    config: ValidationConfig,
    *,
    five_levels: bool,
    limits: tuple[float, float] | None,
    segment_starts: np.ndarray | None = None,
    null_exempt: np.ndarray | None = None,
) -> tuple[dict[str, RuleResult], np.ndarray]:
    """Book, cumulative, limit and null rules. Returns the results and a mask of rows that
    broke a hard value rule (outlier statistics leave those rows out). ``null_exempt``:
    rows whose empty quotes are normal (off-session snapshots before the open or after the
    close), left out of the null rules."""
    n = len(cols["last_price"])
    segments = segments_of(n, segment_starts)
    out: dict[str, RuleResult] = {}
    bad_rows = non_finite_rows(cols)
    with np.errstate(invalid="ignore"):
        b1, a1 = cols["bid_price1"], cols["ask_price1"]
        crossed = b1 >= a1  # NaN compares False: only rows with both sides quoted
        out["crossed_book"] = _rows_rule("crossed_book", crossed, ("bid_price1", "ask_price1"))

        bad_rows |= crossed
        # bids must strictly fall and asks strictly rise with depth; NaN levels are skipped
        for side, worse in (("bid", np.greater_equal), ("ask", np.less_equal)):
            mask = np.zeros(n, dtype=bool)
            for lvl in range(1, 5):
                mask |= worse(cols[f"{side}_price{lvl + 1}"], cols[f"{side}_price{lvl}"])
            shown = tuple(f"{side}_price{lvl}" for lvl in range(1, 6))
            out[f"{side}_ladder"] = _rows_rule(f"{side}_ladder", mask, shown)
            bad_rows |= mask

        decrease = np.zeros(n, dtype=bool)
        for col in ("volume", "amount"):
            x = cols[col]
            prev = prev_running_max(x, segments)
            decrease |= x < prev - REL_TOL * np.abs(prev)
        out["cumulative_decrease"] = _rows_rule(
            "cumulative_decrease", decrease, ("volume", "amount")
        )
        bad_rows |= decrease

        if config.open_interest_decrease.enabled:
            oi = cols["open_interest"]
            out["open_interest_decrease"] = _rows_rule(
                "open_interest_decrease", oi < prev_value(oi, segments), ("open_interest",)
            )
        else:
            out["open_interest_decrease"] = RuleResult(
                "open_interest_decrease", float("nan"), skipped="disabled in configuration"
            )

        if limits is None:
            out["limit_band"] = RuleResult(
                "limit_band",
                float("nan"),
                skipped="no limit prices given (TqSdk ticks carry none); rule not evaluated",
            )
        else:
            lower, upper = limits
            band = np.zeros(n, dtype=bool)
            for col in BAND_COLUMNS:
                x = cols[col]
                band |= (x < lower - REL_TOL * abs(lower)) | (x > upper + REL_TOL * abs(upper))
            out["limit_band"] = _rows_rule(
                "limit_band", band, ("last_price", "bid_price1", "ask_price1")
            )
            out["limit_band"].metadata.update(lower_limit=float(lower), upper_limit=float(upper))
            bad_rows |= band

    out.update(
        _null_rules(
            cols,
            config,
            five_levels=five_levels,
            limits=limits,
            segments=segments,
            exempt=null_exempt,
        )
    )
    return out, bad_rows


def locked_sides(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with an empty ask while the bid and the last trade sit at the day's high, and
    with an empty bid while the ask and the last trade sit at the day's low: a book locked
    at its price limit (all offers taken), inferred when the limit prices are unknown (CSV
    and TqSdk ticks carry none). Such an empty side is the market, not a missing field."""
    bid, ask, last = cols["bid_price1"], cols["ask_price1"], cols["last_price"]
    high, low = cols["highest"], cols["lowest"]
    with np.errstate(invalid="ignore"):
        at_high = (np.abs(bid - high) <= REL_TOL * np.abs(high)) & (
            np.abs(last - high) <= REL_TOL * np.abs(high)
        )
        at_low = (np.abs(ask - low) <= REL_TOL * np.abs(low)) & (
            np.abs(last - low) <= REL_TOL * np.abs(low)
        )
    return np.isnan(ask) & at_high, np.isnan(bid) & at_low


def _null_rules(
    cols: dict[str, np.ndarray],
    config: ValidationConfig,
    *,
    five_levels: bool,
    limits: tuple[float, float] | None,
    segments: Segments,
    exempt: np.ndarray | None = None,
) -> dict[str, RuleResult]:
    n = len(cols["last_price"])
    rates: dict[str, float] = {}
    worst_field, worst_rate = "", 0.0
    any_null = np.zeros(n, dtype=bool)
    run_len, run_field, run_at = 0, "", -1
    exempt_bid = exempt_ask = None
    if limits is not None:
        lower, upper = limits
        with np.errstate(invalid="ignore"):
            exempt_ask = cols["bid_price1"] >= upper - REL_TOL * abs(upper)
            exempt_bid = cols["ask_price1"] <= lower + REL_TOL * abs(lower)
    else:
        exempt_ask, exempt_bid = locked_sides(cols)
    for key, col in KEY_NULL_FIELDS.items():
        null = np.isnan(cols[col])
        if exempt is not None:
            null &= ~exempt
        if key == "ask1" and exempt_ask is not None:
            null &= ~exempt_ask
        if key == "bid1" and exempt_bid is not None:
            null &= ~exempt_bid
        rate = float(null.mean()) if n else 0.0
        rates[key] = rate
        if rate > worst_rate:
            worst_field, worst_rate = key, rate
        any_null |= null
        length, at = longest_run(null, segments)
        if length > run_len:
            run_len, run_field, run_at = length, key, at
    meta = {f"null_rate_{k}": v for k, v in rates.items()}
    if worst_field:
        meta["null_rate_worst_field"] = worst_field
    shown = tuple(KEY_NULL_FIELDS.values())
    out = {
        "null_rate": RuleResult(
            "null_rate",
            worst_rate if n else 0.0,
            rows=np.flatnonzero(any_null),
            columns=shown,
            metadata=meta,
        )
    }
    run_rows = np.arange(run_at, run_at + min(run_len, 10)) if run_len else np.zeros(0, np.int64)
    out["null_run"] = RuleResult(
        "null_run",
        float(run_len),
        rows=run_rows,
        columns=shown,
        metadata={"null_run_field": run_field} if run_len else {},
    )
    if five_levels:
        depth = (
            np.column_stack([np.isnan(cols[c]) for c in DEPTH_COLUMNS])
            if n
            else np.zeros((0, 1), bool)
        )
        rate = float(depth.mean()) if n else 0.0
        out["null_rate_depth"] = RuleResult(
            "null_rate_depth",
            rate,
            rows=np.flatnonzero(depth.any(axis=1)),
            columns=("bid_price2", "ask_price2", "bid_price5", "ask_price5"),
        )
    else:
        depth_rate = float(np.mean([np.isnan(cols[c]).mean() for c in DEPTH_COLUMNS])) if n else 0.0
        out["null_rate_depth"] = RuleResult(
            "null_rate_depth",
            depth_rate,
            skipped="the exchange publishes level 1 only; levels 2-5 are null by design",
        )
    return out


def _rows_rule(name: str, mask: np.ndarray, columns: tuple[str, ...]) -> RuleResult:
    return RuleResult(
        name, float(np.count_nonzero(mask)), rows=np.flatnonzero(mask), columns=columns
    )

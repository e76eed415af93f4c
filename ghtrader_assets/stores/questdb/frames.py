"""Frame preparation before a write and normalisation after a read.

Before a write the frame is conformed to its spec and checked so that what QuestDB stores
is exactly what a read returns:

* every row belongs to the partition (symbol, trading_day) being written;
* rows with equal dedup keys are collapsed (last wins), as QuestDB's ``DEDUP UPSERT KEYS``
  would do on the server. Doing it here makes the row count we verify after the write equal
  to the rows actually stored, and it is logged, never silent. The scan is linear on the
  usual input (``ts`` sorted): only rows sharing a ``ts`` with a neighbour are compared;
* timestamps survive QuestDB's microsecond ``TIMESTAMP``: a value with sub-microsecond
  digits is refused, except a tick ``ts`` equal to its own ``datetime`` (TqSdk's exact
  nanoseconds), which the read path restores from that ``LONG`` column;
* on tables that keep the calendar invariant, every ``ts`` lies in its trading day's window
  (otherwise a read with partition-pruning ``ts`` bounds would not find the row).

Speed: a frame that already has the schema's columns, order and dtypes (the pipeline
conforms every output before the IO manager hands it over) is not conformed again, and
every check is a vectorised pass over numpy arrays; the write path's frame work is a few
milliseconds for a 60k-row tick day (``bench/ingest.py`` prints it).

After a read, frames are conformed to the schema dtypes (QWP gives Categorical symbols,
PGWire gives Python objects), ``ts`` is restored to nanoseconds and rows are sorted by the
dedup keys so results are deterministic whichever transport produced them.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ghtrader_assets.schema import TableSpec, conform, empty_frame
from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb.ddl import is_string_dtype
from ghtrader_assets.stores.questdb.queries import day_bounds

logger = logging.getLogger(__name__)

_EXACT_NS_COLUMN = "datetime"


def _timestamp_columns(spec: TableSpec) -> list[str]:
    return [n for n, dtype in _schema_dtypes(spec) if dtype.startswith("datetime64")]


def _ns(series: pd.Series) -> np.ndarray:
    """int64 nanoseconds since the epoch (NaT -> INT64_MIN)."""
    return series.to_numpy(dtype="datetime64[ns]").view("int64")


def prepare_for_write(
    spec: TableSpec,
    symbol: str,
    trading_day: dt.date,
    df: pd.DataFrame,
    *,
    pruned: bool,
    where: str,
) -> pd.DataFrame:
    """The conformed, checked and de-duplicated frame to send; raises :class:`StoreError`
    naming ``where`` (table and partition) and the offending values."""
    if is_conformed(df, spec):
        frame = df
    else:
        try:
            frame = conform(df, spec)
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{where}: frame does not fit schema {spec.name!r}: {exc}") from None
    day = trading_day.isoformat()
    for col, want in (("symbol", symbol), ("trading_day", day)):
        if col in frame.columns:
            bad = (frame[col] != want).fillna(True).astype(bool)  # a missing value is wrong too
            if bad.any():
                sample = sorted(set(frame.loc[bad, col].astype(str)))[:3]
                raise StoreError(
                    f"{where}: {int(bad.sum())} rows have {col} {sample}, expected {want!r}; "
                    "nothing was written"
                )
    values = _ns(frame[spec.timestamp])  # read once, used by every check below
    missing_ts = values == np.iinfo(np.int64).min
    if missing_ts.any():
        raise StoreError(
            f"{where}: {int(missing_ts.sum())} rows have no {spec.timestamp} (the designated "
            "timestamp cannot be null); nothing was written"
        )
    _check_timestamps(spec, frame, where, values)
    if pruned and len(frame):
        lo, hi = day_bounds(trading_day)
        lo_ns, hi_ns = pd.Timestamp(lo).value, pd.Timestamp(hi).value
        outside = (values < lo_ns) | (values >= hi_ns)
        if outside.any():
            first = frame[spec.timestamp][outside].iloc[0]
            raise StoreError(
                f"{where}: {int(outside.sum())} rows have {spec.timestamp} outside trading day "
                f"{day} [{lo.isoformat()}, {hi.isoformat()}), first {first}; nothing was written"
            )
    keys = list(spec.dedup_keys)
    dup = duplicate_mask(frame, keys, spec.timestamp, values)
    if dup is not None and dup.any():
        logger.warning(
            "%s: %d rows share dedup keys %s with a later row; keeping the last of each "
            "(QuestDB DEDUP UPSERT semantics)",
            where,
            int(dup.sum()),
            keys,
        )
        frame = frame.loc[~dup].reset_index(drop=True)
    return frame


_DTYPES: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}


def _schema_dtypes(spec: TableSpec) -> list[tuple[str, str]]:
    """(column, dtype name) of ``spec``, computed once: pandera's dtype names are slow to
    build and this runs on every write."""
    key = (spec.name, tuple(spec.columns))
    found = _DTYPES.get(key)
    if found is None:
        found = _DTYPES[key] = [(n, str(c.dtype)) for n, c in spec.schema.columns.items()]
    return found


def is_conformed(df: pd.DataFrame, spec: TableSpec) -> bool:
    """Whether ``df`` already is what :func:`~ghtrader_assets.schema.conform` would return
    (same columns in order, schema dtypes, a 0..n-1 index), so it need not be copied."""
    if list(df.columns) != spec.columns:
        return False
    index = df.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return False
    dtypes = df.dtypes
    for name, want in _schema_dtypes(spec):
        have = dtypes[name]
        if is_string_dtype(want):
            # Any pandas string dtype ("str", "string", python- or Arrow-backed) sends and
            # compares the same; object columns still go through conform.
            if not isinstance(have, pd.StringDtype):
                return False
        elif str(have) != want:
            return False
    return True


def duplicate_mask(
    frame: pd.DataFrame, keys: list[str], ts: str, ts_ns: np.ndarray | None = None
) -> np.ndarray | None:
    """Rows that share all ``keys`` with a later row (``None``: no duplicates possible).

    Every key set contains ``ts``, so duplicates share a timestamp. When ``ts`` is sorted
    (as sources deliver ticks) rows with equal ``ts`` are adjacent: strictly increasing
    values mean no duplicates at all, otherwise only the runs of equal values are
    compared. Unsorted frames fall back to pandas' full scan.
    """
    if len(frame) < 2:
        return None
    values = _ns(frame[ts]) if ts_ns is None else ts_ns
    step = np.diff(values)
    if (step > 0).all():
        return None
    if (step >= 0).all():
        tie = np.zeros(len(values), dtype=bool)
        tie[1:] |= step == 0
        tie[:-1] |= step == 0
        rows = np.flatnonzero(tie)
        sub = frame.iloc[rows].duplicated(subset=keys, keep="last").to_numpy()
        mask = np.zeros(len(values), dtype=bool)
        mask[rows[sub]] = True
        return mask
    return frame.duplicated(subset=keys, keep="last").to_numpy()


def _check_timestamps(
    spec: TableSpec, frame: pd.DataFrame, where: str, ts_ns: np.ndarray | None = None
) -> None:
    exact = frame[_EXACT_NS_COLUMN].to_numpy() if _EXACT_NS_COLUMN in frame.columns else None
    for col in _timestamp_columns(spec):
        values = ts_ns if col == spec.timestamp and ts_ns is not None else _ns(frame[col])
        valid = values != np.iinfo(np.int64).min
        sub_us = valid & (values % 1000 != 0)
        if col == spec.timestamp and exact is not None:
            # Allowed: ts == datetime exactly. Refused: ts differing from datetime while
            # sub-microsecond, or while equal to datetime floored to microseconds (the read
            # path could not tell it from a restorable value).
            differs = values != exact
            ambiguous = differs & (values == exact - exact % 1000)
            bad = differs & (sub_us | ambiguous)
        else:
            bad = sub_us
        if bad.any():
            first = frame[col][bad].iloc[0]
            raise StoreError(
                f"{where}: {int(bad.sum())} values of {col} have sub-microsecond precision "
                f"(first {first}); QuestDB TIMESTAMP stores microseconds. Round them, or keep "
                f"the exact nanoseconds in {_EXACT_NS_COLUMN!r}; nothing was written"
            )


def normalise_read(spec: TableSpec, raw: pd.DataFrame) -> pd.DataFrame:
    """A frame read from QuestDB, with the schema's columns, dtypes and a stable order.

    ``raw`` is the reader's own fresh frame, so columns are converted in place, one by one,
    and only where the dtype differs (QWP: Categorical symbols, naive microsecond ``ts``;
    PGWire: Python objects); the frame is not rebuilt (a rebuild copies every float
    column). Rows come back in designated-timestamp order from a one-symbol read, so the
    sort is skipped when the order already holds (checked in one pass over ``ts``).
    """
    if raw is None or len(raw) == 0:
        return empty_frame(spec)
    have = dict(zip(raw.columns.tolist(), raw.dtypes.tolist(), strict=True))
    wanted = [c for c in spec.columns if c in have]
    frame = raw if list(have) == wanted else raw[wanted]
    frame = frame.copy(deep=False)
    if _EXACT_NS_COLUMN in have and spec.timestamp in have:
        # One pass from the stored microseconds to the tick's exact nanoseconds.
        ns = _as_ns_int(frame[spec.timestamp])
        exact = frame[_EXACT_NS_COLUMN].to_numpy(dtype="int64")
        ns = np.where(ns == exact - exact % 1000, exact, ns)
        frame[spec.timestamp] = pd.Series(
            pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"), index=frame.index
        )
        have[spec.timestamp] = frame[spec.timestamp].dtype
    for name, want in _schema_dtypes(spec):
        dtype = have.get(name)
        if dtype is None or str(dtype) == want:
            continue  # absent (added by conform below) or already right: not touched
        s = frame[name]
        if is_string_dtype(want):
            frame[name] = _strings(s, want)
        elif want.startswith("datetime64"):
            frame[name] = _utc_ns(s)
        else:
            frame[name] = s.astype(want)
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)
    if len(wanted) != len(spec.columns):  # optional columns absent (e.g. book levels)
        frame = conform(frame, spec)
    order = [spec.timestamp] + [k for k in spec.dedup_keys if k not in (spec.timestamp, "symbol")]
    if "symbol" in frame.columns:
        order = ["symbol", *order]
    if _is_sorted(frame, order, spec.timestamp):
        return frame
    return frame.sort_values(order, kind="mergesort").reset_index(drop=True)


def _as_ns_int(s: pd.Series) -> np.ndarray:
    """int64 nanoseconds of a datetime column of any unit (naive meaning UTC)."""
    if not (isinstance(s.dtype, pd.DatetimeTZDtype) or str(s.dtype).startswith("datetime64")):
        s = _utc_ns(s)
    return s.to_numpy(dtype="datetime64[ns]").view("int64")


def _strings(s: pd.Series, dtype: str) -> pd.Series:
    """String values of the schema's ``dtype`` with nulls kept as nulls, from QWP's
    Categorical (each distinct value converted once) or PGWire's Python objects."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        categories = s.cat.categories.astype(dtype)
        values = categories.take(s.cat.codes.to_numpy(), allow_fill=True, fill_value=None)
        return pd.Series(values, index=s.index, name=s.name)
    if isinstance(s.dtype, pd.StringDtype):
        return s.astype(dtype)
    return s.astype(object).where(s.notna(), None).astype(dtype)


def _utc_ns(s: pd.Series) -> pd.Series:
    """``datetime64[ns, UTC]`` from a naive (UTC) or aware datetime column, else parsed."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if str(s.dtype).startswith("datetime64"):
        return s.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")


def _is_sorted(frame: pd.DataFrame, order: list[str], ts: str) -> bool:
    """True when ``frame`` is already in ``order``: one symbol (or none) and strictly
    increasing ``ts`` (ties would need the other keys compared: left to the sort)."""
    if "symbol" in order:
        symbols = frame["symbol"]
        if len(symbols) and not (symbols == symbols.iloc[0]).all():
            return False
    values = _ns(frame[ts])
    return bool((np.diff(values) > 0).all())

"""The read API for research: ticks of one symbol over a range of trading days.

This is the stable way to get ticks out, whichever store holds them::

    from ghtrader_assets.ticks import read_ticks

    df = read_ticks("KQ.m@SHFE.cu", "2025-06-02", "2025-06-13")            # main continuous
    df = read_ticks("SHFE.cu2507", "2025-06-02", "2025-06-13")             # one contract
    tbl = read_ticks("KQ.m@SHFE.cu", "2025-06-02", columns=["ts", "last_price"], output="arrow")

What it returns and why:

* **Main continuous** (``KQ.m@EXCHANGE.product``): every stored tick of the days in range,
  ordered by trading day then time, with the ``underlying`` column naming the contract each
  row came from, so a researcher sees the rolls instead of a silently spliced series.
* **One contract** (``EXCHANGE.productYYMM``): the rows of that contract, i.e. the days on
  which it was the main contract (the store holds main-contract ticks only).
* ``columns`` projects; the embedded store then reads only those Parquet columns
  (each partition file through one open handle, so a concurrent replace never tears a read). Unknown
  names raise :class:`ReadError` naming the nearest columns.
* ``output="pandas"`` (default; ``ts`` is tz-aware UTC, ``datetime`` is TqSdk's exact
  nanoseconds) or ``"arrow"`` (a :class:`pyarrow.Table`).
* The embedded store is read straight from its Parquet partitions with pyarrow (pruned by
  directory: only the days asked for are opened); QuestDB through the store's bulk read
  (QWP where the server offers it). Reads only: nothing is written or locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ghtrader_assets.products import UnknownProductError, product_spec
from ghtrader_assets.schema import TICKS
from ghtrader_assets.stores.base import StoreError, TickStore
from ghtrader_assets.symbols import SymbolError, parse_contract, parse_main_symbol

Output = Literal["pandas", "arrow"]


class ReadError(ValueError):
    """The request names something that does not exist (symbol, column, date, output)."""


def _day(value: str | dt.date, name: str) -> str:
    if isinstance(value, dt.datetime):
        raise ReadError(f"{name}={value!r}: give a trading day (YYYY-MM-DD), not a datetime")
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ReadError(f"{name}={value!r} is not a trading day in YYYY-MM-DD form") from None


def resolve_symbol(symbol: str) -> tuple[str, str | None]:
    """``(main symbol, contract or None)`` for a main symbol or a contract code of a known
    product (an unknown one names the nearest known products: a typo is not an empty
    result)."""
    try:
        main, contract = parse_main_symbol(symbol), None
    except SymbolError:
        try:
            parsed = parse_contract(symbol)
        except SymbolError:
            raise ReadError(
                f"symbol {symbol!r} is neither a main symbol (KQ.m@SHFE.cu) nor a contract "
                "(SHFE.cu2507)"
            ) from None
        main, contract = parse_main_symbol(f"KQ.m@{parsed.exchange}.{parsed.product}"), parsed.raw
    try:
        product_spec(main.exchange, main.product)
    except UnknownProductError as exc:
        raise ReadError(f"symbol {symbol!r}: {exc}") from None
    return main.raw, contract


def check_columns(columns: Sequence[str] | None) -> list[str]:
    """The tick columns to return, validated against the tick schema (order kept)."""
    known = TICKS.columns
    if columns is None:
        return list(known)
    if isinstance(columns, str):
        raise ReadError(f"columns must be a list of names, got the string {columns!r}")
    out: list[str] = []
    for name in columns:
        if name not in known:
            near = difflib.get_close_matches(str(name), known, n=3) or known[:5]
            raise ReadError(f"no tick column {name!r}; nearest: {', '.join(near)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ReadError("columns is empty: name at least one tick column")
    return out


def read_ticks(
    symbol: str,
    start: str | dt.date,
    end: str | dt.date | None = None,
    *,
    columns: Sequence[str] | None = None,
    output: Output = "pandas",
    store: TickStore | None = None,
) -> pd.DataFrame | pa.Table:
    """Ticks of ``symbol`` for trading days ``start..end`` (inclusive; ``end`` defaults to
    ``start``), from ``store`` (default: the store the ``GHTRADER_*`` settings name).

    Rows are ordered by trading day, then ``ts`` (ties as stored). An empty range returns an
    empty result with the schema's columns and types."""
    if output not in ("pandas", "arrow"):
        raise ReadError(f"output={output!r}: choose 'pandas' or 'arrow'")
    main, contract = resolve_symbol(symbol)
    lo = _day(start, "start")
    hi = _day(end, "end") if end is not None else lo
    if hi < lo:
        raise ReadError(f"end {hi} is before start {lo}")
    wanted = check_columns(columns)
    store = store if store is not None else default_store()
    # Row order needs ts; the contract filter needs underlying. Both dropped unless asked.
    extra = ["ts", *(["underlying"] if contract else [])]
    needed = list(dict.fromkeys([*wanted, *extra]))
    table = _read_arrow(store, main, lo, hi, needed)
    if contract is not None:
        table = table.filter(pc.equal(table["underlying"], contract))
    table = table.select(wanted)
    if output == "arrow":
        return table
    return _to_pandas(table)


def _read_arrow(store: TickStore, main: str, lo: str, hi: str, columns: list[str]) -> pa.Table:
    raw = getattr(store, "inner", store)  # the metrics proxy wraps the real store
    from ghtrader_assets.stores.embedded import EmbeddedStore, arrow_schema

    if isinstance(raw, EmbeddedStore):
        schema = arrow_schema(TICKS)
        tables = [
            _read_file(raw.partition_path(TICKS, main, day), columns)
            for day in raw.partitions(TICKS, main)
            if lo <= day <= hi
        ]
        wanted = pa.schema([schema.field(c) for c in columns])
        tables = [_in_time_order(t).cast(wanted) for t in tables if t is not None]
        return pa.concat_tables(tables) if tables else wanted.empty_table()
    frame = store.read_table(TICKS, symbols=[main], start_day=lo, end_day=hi)
    frame = frame.sort_values(["trading_day", "ts"], kind="stable")
    return pa.Table.from_pandas(frame[columns], preserve_index=False)


def _in_time_order(table: pa.Table) -> pa.Table:
    """One day's rows by ``ts``; a file already in that order (the usual case)
    is returned as it is, which saves a sort of every column."""
    ts = table["ts"]
    if table.num_rows < 2:
        return table
    ordered = pc.all(pc.less_equal(ts.slice(0, len(ts) - 1), ts.slice(1))).as_py()
    return table if ordered else table.sort_by("ts")  # stable: ties keep the stored order


def _read_file(path: Path, columns: list[str]) -> pa.Table | None:
    """One partition file, footer and body from one open handle: a writer replacing the
    file meanwhile (atomic rename) leaves this reader on the version it opened."""
    try:
        with open(path, "rb") as fh:
            return pq.read_table(fh, columns=columns)
    except FileNotFoundError:  # listed, then removed: not there any more
        return None
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{TICKS.name} partition {path}: unreadable: {exc}") from exc


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas()


def default_store() -> TickStore:
    """The store the ``GHTRADER_*`` settings name, as the CLI and the assets use it."""
    from ghtrader_assets.config import Settings
    from ghtrader_assets.definitions import build_resources

    return build_resources(Settings.from_env())["store"].get_store()


def export_ticks(
    symbol: str,
    start: str,
    end: str | None,
    out: Path,
    columns: Sequence[str] | None = None,
    store: TickStore | None = None,
) -> int:
    """Write :func:`read_ticks` to ``out``: Parquet for ``.parquet``/``.pq``, CSV for ``.csv``
    (``.csv.gz`` compressed). Written to a temporary file and renamed, so ``out`` is whole or
    absent. Returns the number of rows."""
    import os

    import pyarrow.csv as pacsv

    suffixes = "".join(out.suffixes[-2:]).lower()
    if out.suffix.lower() in (".parquet", ".pq"):
        kind = "parquet"
    elif suffixes in (".csv", ".csv.gz") or out.suffix.lower() == ".csv":
        kind = "csv"
    else:
        raise ReadError(f"--out {out}: name a .parquet, .csv or .csv.gz file")
    table = read_ticks(symbol, start, end, columns=columns, output="arrow", store=store)
    if not out.parent.is_dir():
        raise ReadError(f"--out {out}: the folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if kind == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            compression = "gzip" if suffixes.endswith(".gz") else None
            with (
                pa.CompressedOutputStream(str(tmp), compression)
                if compression
                else open(tmp, "wb") as sink
            ):
                pacsv.write_csv(table, sink)
        os.replace(tmp, out)
    except OSError as exc:  # read-only folder, full disk...: the user's to fix
        raise ReadError(f"--out {out}: cannot write it: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return table.num_rows

"""QuestDB table definitions derived from :class:`~ghtrader_assets.schema.TableSpec`, and
schema-drift detection against a live table.

Layout decisions (documented here because every read and write depends on them):

* **Designated timestamp** ``ts`` is ``TIMESTAMP`` (microseconds). Ticks arrive at a 500 ms
  cadence, so microseconds lose nothing in practice, and ``TIMESTAMP`` is the type every
  QuestDB function, PGWire driver and the QWP reader handle natively. TqSdk's exact
  nanoseconds are kept in the ``datetime`` ``LONG`` column, and the read path restores ``ts``
  from it (see :mod:`.frames`), so a tick round-trips exactly at nanosecond precision.
* ``PARTITION BY DAY WAL DEDUP UPSERT KEYS(<spec.dedup_keys>)``: WAL is required for dedup;
  the keys always contain ``ts`` (QuestDB demands it) and, for ticks, TqSdk's ``id`` so two
  distinct ticks that share a timestamp are never collapsed.
* String columns listed in ``spec.symbol_columns`` are ``SYMBOL`` (dictionary-encoded, fast
  equality filters); other strings are ``VARCHAR``.
* One extra column, ``write_id LONG``, stamps each row with the write that stored it. It is
  how a re-materialization retires rows that are no longer in the new frame (QuestDB has no
  ``DELETE``; see :mod:`.store`). Reads never return it.

Every identifier is validated against a strict pattern and double-quoted, so names that are
SQL keywords (``rows``) are safe and nothing user-supplied reaches SQL text unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ghtrader_assets.schema import TableSpec, schema_hash
from ghtrader_assets.stores.base import StoreError

#: Internal column holding the id of the write that stored the row.
WRITE_ID_COLUMN = "write_id"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")

#: pandas/pandera dtype -> QuestDB column type (``str`` is SYMBOL or VARCHAR, see above).
_TYPE_MAP = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "int64": "LONG",
    "int32": "INT",
    "int16": "SHORT",
    "bool": "BOOLEAN",
    "datetime64[ns, UTC]": "TIMESTAMP",
    "datetime64[us, UTC]": "TIMESTAMP",
}
#: Symbol-map capacity hints (QuestDB grows the map past them, but a good hint keeps the
#: hash map fast). ``trading_day`` gains ~250 values a year; contracts ~12 per product-year.
_SYMBOL_CAPACITY = {"trading_day": 16384, "underlying": 16384}
_DEFAULT_SYMBOL_CAPACITY = 1024


def is_string_dtype(dtype: str) -> bool:
    """Whether a pandera dtype name is a string type (``str`` under pandas 3, which
    pandera may print as ``string[pyarrow]`` or ``string[python]``)."""
    return dtype in ("str", "string", "object") or dtype.startswith("string[")


class SchemaDriftError(StoreError):
    """A live QuestDB table does not have the layout its :class:`TableSpec` says."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise :class:`StoreError`.

    Only letters, digits and underscores (not leading digit), at most 127 characters: the
    same names QuestDB accepts over ILP, with nothing that could close a quote.
    """
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise StoreError(f"invalid QuestDB {what} {name!r}: expected {_IDENT_RE.pattern}")
    return name


def quote(name: str, what: str = "identifier") -> str:
    """A validated, double-quoted identifier."""
    return f'"{validate_identifier(name, what)}"'


@dataclass(frozen=True)
class ColumnDef:
    name: str
    qdb_type: str  # e.g. "DOUBLE", "SYMBOL"


def column_defs(spec: TableSpec) -> list[ColumnDef]:
    """The QuestDB columns for ``spec``, in schema order, plus :data:`WRITE_ID_COLUMN`."""
    out: list[ColumnDef] = []
    for name, col in spec.schema.columns.items():
        validate_identifier(name, f"column name in {spec.name}")
        dtype = str(col.dtype)
        if is_string_dtype(dtype):
            qdb_type = "SYMBOL" if name in spec.symbol_columns else "VARCHAR"
        elif dtype in _TYPE_MAP:
            qdb_type = _TYPE_MAP[dtype]
        else:
            raise StoreError(
                f"{spec.name}.{name}: pandas dtype {dtype!r} has no QuestDB mapping "
                f"(supported: str, {', '.join(_TYPE_MAP)})"
            )
        out.append(ColumnDef(name, qdb_type))
    if WRITE_ID_COLUMN in spec.schema.columns:
        raise StoreError(f"{spec.name}: column name {WRITE_ID_COLUMN!r} is reserved by the store")
    out.append(ColumnDef(WRITE_ID_COLUMN, "LONG"))
    return out


def _check_spec(spec: TableSpec) -> None:
    cols = spec.schema.columns
    if spec.timestamp not in cols or _TYPE_MAP.get(str(cols[spec.timestamp].dtype)) != "TIMESTAMP":
        raise StoreError(
            f"{spec.name}: designated timestamp {spec.timestamp!r} is not a timestamp column"
        )
    if spec.timestamp not in spec.dedup_keys:
        raise StoreError(
            f"{spec.name}: dedup keys {list(spec.dedup_keys)} must include the designated "
            f"timestamp {spec.timestamp!r} (QuestDB requires it)"
        )
    missing = [k for k in spec.dedup_keys if k not in cols]
    if missing:
        raise StoreError(f"{spec.name}: dedup keys {missing} are not columns of the schema")


def _type_clause(col: ColumnDef) -> str:
    if col.qdb_type == "SYMBOL":
        capacity = _SYMBOL_CAPACITY.get(col.name, _DEFAULT_SYMBOL_CAPACITY)
        return f"SYMBOL CAPACITY {capacity} CACHE"
    return col.qdb_type


_PARTITION_UNITS = ("DAY", "MONTH", "YEAR")


def create_table_sql(spec: TableSpec, table: str, partition_by: str = "DAY") -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``spec`` under the physical name ``table``."""
    _check_spec(spec)
    if partition_by not in _PARTITION_UNITS:
        raise StoreError(f"{spec.name}: partition unit {partition_by!r} not in {_PARTITION_UNITS}")
    cols = ",\n  ".join(f"{quote(c.name)} {_type_clause(c)}" for c in column_defs(spec))
    keys = ", ".join(quote(k) for k in spec.dedup_keys)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(table, 'table name')} (\n  {cols}\n)"
        f" TIMESTAMP({quote(spec.timestamp)}) PARTITION BY {partition_by} WAL"
        f" DEDUP UPSERT KEYS({keys})"
    )


#: Suffix of the view over each table that shows exactly the rows the store's reads return.
CURRENT_VIEW_SUFFIX = "_current"
#: Mirrors :data:`.queries.RETIRED_DAY` (kept here to avoid an import cycle; a test pins
#: them equal).
_RETIRED_LITERAL = "retired"


def current_view_name(table: str) -> str:
    """``<table>_current``: the name researchers query instead of the raw table."""
    return validate_identifier(f"{table}{CURRENT_VIEW_SUFFIX}", "view name")


def create_view_sql(spec: TableSpec, table: str, *, replace: bool = False) -> str:
    """The view of ``table`` whose rows are exactly what the store's reads return: the
    schema's columns (no ``write_id``) of every row a re-materialization has not retired.

    A view, not a copy: it costs nothing on write and its ``WHERE`` is pushed into the
    table scan, so ``ts`` filters on it still prune partitions. ``replace`` rewrites the
    definition (after columns were added); otherwise an existing view is left alone, so
    concurrent start-ups do not race on it.
    """
    cols = ", ".join(quote(c.name) for c in column_defs(spec) if c.name != WRITE_ID_COLUMN)
    head = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW IF NOT EXISTS"
    return (
        f"{head} {quote(current_view_name(table), 'view name')} AS (SELECT {cols} "
        f"FROM {quote(table, 'table name')} WHERE {quote('trading_day')} != "
        f"'{_RETIRED_LITERAL}')"
    )


def table_columns_sql(table: str) -> str:
    """Query the live layout. ``table_columns`` takes a string literal; the name is a
    validated identifier so it cannot break out of the quotes. ``column`` is a keyword."""
    validate_identifier(table, "table name")
    return f'SELECT "column", "type", "designated", "upsertKey" FROM table_columns(\'{table}\')'


def add_column_sql(table: str, col: ColumnDef) -> str:
    return (
        f"ALTER TABLE {quote(table, 'table name')} ADD COLUMN IF NOT EXISTS "
        f"{quote(col.name)} {_type_clause(col)}"
    )


@dataclass(frozen=True)
class Drift:
    """Differences between a spec and a live table (empty lists: no drift)."""

    missing: list[ColumnDef]
    mistyped: list[tuple[str, str, str]]  # (column, expected, found)
    designated: tuple[str | None, str] | None  # (found, expected) when wrong
    keys: tuple[list[str], list[str]] | None  # (found, expected) when different

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mistyped or self.designated or self.keys)

    @property
    def only_missing(self) -> bool:
        return bool(self.missing) and not (self.mistyped or self.designated or self.keys)


def detect_drift(spec: TableSpec, live: Iterable[Sequence[object]]) -> Drift:
    """Compare ``spec`` with rows of ``table_columns()``: ``(column, type, designated,
    upsertKey)``. Extra live columns are tolerated (an older reader ignores a newer column;
    writes leave it null)."""
    rows = [(str(r[0]), str(r[1]).upper(), bool(r[2]), bool(r[3])) for r in live]
    found = {name: qtype for name, qtype, _, _ in rows}
    expected = column_defs(spec)
    missing = [c for c in expected if c.name not in found]
    mistyped = [
        (c.name, c.qdb_type, found[c.name])
        for c in expected
        if c.name in found and found[c.name] != c.qdb_type
    ]
    designated_found = next((name for name, _, d, _ in rows if d), None)
    designated = None if designated_found == spec.timestamp else (designated_found, spec.timestamp)
    keys_found = sorted(name for name, _, _, k in rows if k)
    keys_expected = sorted(spec.dedup_keys)
    keys = None if keys_found == keys_expected else (keys_found, keys_expected)
    return Drift(missing, mistyped, designated, keys)


def drift_message(spec: TableSpec, table: str, drift: Drift) -> str:
    """A message naming every difference and how to fix it."""
    parts = [
        f"QuestDB table {table!r} does not match schema {spec.name!r} "
        f"(schema_hash {schema_hash(spec)}):"
    ]
    if drift.missing:
        parts.append(
            "missing columns: " + ", ".join(f"{c.name} {c.qdb_type}" for c in drift.missing)
        )
    if drift.mistyped:
        parts.append(
            "mistyped columns: "
            + ", ".join(f"{n} (expected {e}, found {f})" for n, e, f in drift.mistyped)
        )
    if drift.designated:
        parts.append(
            f"designated timestamp is {drift.designated[0]!r}, expected {drift.designated[1]!r}"
        )
    if drift.keys:
        parts.append(f"dedup upsert keys are {drift.keys[0]}, expected {drift.keys[1]}")
    fix = (
        "add the missing columns ("
        + "; ".join(add_column_sql(table, c) for c in drift.missing)
        + ")"
        " or set auto_add_columns"
        if drift.only_missing
        else "rename or drop the table, or use another table_prefix, and re-materialize"
    )
    parts.append(f"fix: {fix}")
    return " ".join(parts)

"""The store interface: partitioned tables keyed by (symbol, trading_day).

Every table in :mod:`ghtrader_assets.schema` is stored per main symbol and trading day. A
write *replaces* that partition (idempotent by construction: re-materializing leaves exactly
one copy) and must be atomic: readers see the old partition or the new one, never half.
Both implementations expose the same reads so assets, checks and the CLI are store-agnostic.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ghtrader_assets.schema import TableSpec, empty_frame

logger = logging.getLogger(__name__)

#: The columns of :meth:`TickStore.coverage`, in order: the same from every store.
COVERAGE_COLUMNS = ("symbol", "first_day", "last_day", "n_days", "rows", "first_ts", "last_ts")

#: The columns of :meth:`TickStore.catalog_rows`: what a store's partition catalog knows
#: about each stored partition (``facts``: a dict of figures, e.g. a metrics partition's
#: ``{"ticks.ingest_rows_per_second": ...}`` or a summary's ``{"rows": ...}``).
CATALOG_COLUMNS = (
    "table",
    "symbol",
    "trading_day",
    "rows",
    "bytes",
    "first_ts",
    "last_ts",
    "state",
    "problem",
    "verdict",
    "checks_failed",
    "gap_count",
    "gap_seconds",
    "facts",
)
#: The columns of :meth:`TickStore.catalog_summary`: one aggregate row per symbol, kept
#: current by every write (gap figures and ``error_days``/``worst_day`` come from the
#: validation-summary table's partitions).
CATALOG_SUMMARY_COLUMNS = (
    "symbol",
    "n_days",
    "rows",
    "first_day",
    "last_day",
    "first_ts",
    "last_ts",
    "last_nonempty_day",
    "corrupt_days",
    "gap_count",
    "gap_seconds",
    "error_days",
    "worst_day",
)
#: The columns of :meth:`TickStore.damaged`.
DAMAGED_COLUMNS = ("table", "symbol", "trading_day", "problem")


class StoreError(RuntimeError):
    """A store operation failed; the message names the table and partition."""


class CorruptPartitionError(StoreError):
    """A stored partition exists but cannot be parsed (truncated, garbage inside, checksum
    mismatch): it vouches for nothing, and replacing it is the cure.

    Only this error may let a writer treat a stored partition as absent. Any other failure
    to read (a server that does not answer, too many open files, a permission error) says
    nothing about the stored data, so guards that protect a good day re-raise it: the step
    fails and is retried, and the stored day is never replaced by accident."""


@dataclass(frozen=True)
class WriteStats:
    """What one partition write did: for metadata and metrics."""

    table: str
    symbol: str
    trading_day: str
    rows: int
    bytes: int
    seconds: float
    location: str  # a path or table name a user can look at


class TickStore(ABC):
    """A store of partitioned tables. Implementations are safe to use from several
    processes at once (Dagster runs steps in separate processes)."""

    kind: str

    @abstractmethod
    def write_partition(
        self, spec: TableSpec, symbol: str, trading_day: str, df: pd.DataFrame
    ) -> WriteStats:
        """Replace the (symbol, trading_day) partition of ``spec`` with ``df`` atomically.

        ``df`` is conformed to ``spec`` first; rows whose symbol/trading_day differ from the
        partition raise :class:`StoreError` and nothing already stored is touched."""

    @abstractmethod
    def read_partition(self, spec: TableSpec, symbol: str, trading_day: str) -> pd.DataFrame:
        """The rows of one partition (empty frame with the schema's dtypes if absent)."""

    @abstractmethod
    def read_table(
        self,
        spec: TableSpec,
        symbols: Sequence[str] | None = None,
        start_day: str | None = None,
        end_day: str | None = None,
    ) -> pd.DataFrame:
        """Rows of many partitions (inclusive day bounds); for small tables such as
        validation summaries and manifests."""

    @abstractmethod
    def partitions(self, spec: TableSpec, symbol: str) -> list[str]:
        """Sorted trading days stored for ``symbol`` in ``spec``."""

    @abstractmethod
    def coverage(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Tick coverage for many symbols in one call: one row per symbol with columns
        ``symbol, first_day, last_day, n_days, rows, first_ts, last_ts`` (symbols with no
        data have n_days 0 and nulls). Cached; every write invalidates the cache."""

    @abstractmethod
    def latest(self, symbols: Sequence[str]) -> pd.DataFrame:
        """The latest stored tick per symbol (one row per symbol that has data)."""

    def catalog_rows(
        self,
        spec: TableSpec,
        symbols: Sequence[str],
        *,
        start_day: str | None = None,
        end_day: str | None = None,
        days: Sequence[str] | None = None,
    ) -> pd.DataFrame | None:
        """Per stored partition of ``spec``, what the store's partition catalog records
        (:data:`CATALOG_COLUMNS`), without opening partitions; ``None`` when the store keeps
        no catalog, in which case callers read the tables themselves."""
        return None

    def catalog_summary(self, spec: TableSpec, symbols: Sequence[str]) -> pd.DataFrame | None:
        """Per symbol, the catalog's aggregate over its partitions of ``spec``
        (:data:`CATALOG_SUMMARY_COLUMNS`; symbols without partitions are left out); ``None``
        when the store keeps no catalog."""
        return None

    def damaged(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Stored partitions known to be corrupt or unreadable (:data:`DAMAGED_COLUMNS`).
        A server-side store has no files to damage: empty by default."""
        return pd.DataFrame(columns=list(DAMAGED_COLUMNS))

    def settle(self) -> None:
        """Make this store's writes so far visible and verified, or raise
        :class:`StoreError` naming each table, symbol and day that did not land as written.

        The step that wrote calls it before it ends (the IO manager, after an output's
        writes), so a write the server lost fails that step, not a later reader or the
        process's exit. A store whose writes are complete when ``write_partition`` returns
        (the embedded one) has nothing to do.
        """
        return None

    def close(self) -> None:
        """Release connections and senders."""
        return None


def read_for_replace(store: TickStore, spec: TableSpec, symbol: str, day: str) -> pd.DataFrame:
    """The partition's rows for a read-modify-write, or an empty frame (logged) when the
    stored partition is corrupt: a corrupt partition must never block replacing it. Any
    other read failure propagates (writing on would drop the stored rows)."""
    try:
        return store.read_partition(spec, symbol, day)
    except CorruptPartitionError as exc:
        logger.warning("%s; it is replaced by this write", exc)
        return empty_frame(spec)

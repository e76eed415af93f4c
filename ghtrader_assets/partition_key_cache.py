"""Trading-day partition keys listed once per process and last partition, not once per call.

Why: before a step runs, Dagster looks up the data versions of the step's upstream assets
(``DataVersionCache._fetch_input_asset_version_info``). For the unpartitioned coverage
report, every upstream (each symbol's validation summary and manifest) maps to *all* of its
partitions, so Dagster lists every partition key of every upstream, one after another:
80 full listings of about 460 trading days at 40 symbols, each one a walk through the cron
schedule and its exclusions (about 0.08 s). It then finds more than
``SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD`` (100) keys and uses the latest
materialization instead, so the listings decide nothing. They cost about 0.15 s of CPU per
symbol every time the report is materialized (``ghtrader demo``, ``ghtrader backfill``, the
automation, a UI launch), and grow with history (``bench/overhead.py``).

The keys of a :class:`~dagster.TimeWindowPartitionsDefinition` depend only on the
definition itself (start, cron schedule, timezone, format, exclusions, end) and on its last
partition window at the time of the call, so they are kept per (definition, last window
start): the same list Dagster would build, built once. A new trading day after the close
is a new last window, hence a new listing; definitions are compared by value, as Dagster
compares them. Nothing else of Dagster changes, and only while the cache is installed
(:func:`install`, done when the definitions load).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

from dagster import TimeWindowPartitionsDefinition, partition_loading_context

#: Listings kept per process (one per partitions definition and last window in practice).
MAX_ENTRIES = 16

_CACHE: OrderedDict[tuple[TimeWindowPartitionsDefinition, float], tuple[str, ...]] = OrderedDict()
_LOCK = threading.Lock()
_ORIGINAL: Callable[..., Sequence[str]] | None = None


def cached_partition_keys(
    self: TimeWindowPartitionsDefinition,
    current_time: datetime | None = None,
    dynamic_partitions_store=None,
) -> Sequence[str]:
    """``TimeWindowPartitionsDefinition.get_partition_keys``, listed once per last window."""
    assert _ORIGINAL is not None
    with partition_loading_context(current_time, dynamic_partitions_store):
        last = self._get_last_partition_window(self._get_current_timestamp())  # noqa: SLF001
        if last is None:
            return []
        key = (self, last.start.timestamp())
        with _LOCK:
            keys = _CACHE.get(key)
            if keys is not None:
                _CACHE.move_to_end(key)
        if keys is None:
            # Within the same loading context: Dagster lists up to the same last window.
            keys = tuple(_ORIGINAL(self))
            with _LOCK:
                _CACHE[key] = keys
                while len(_CACHE) > MAX_ENTRIES:
                    _CACHE.popitem(last=False)
        return list(keys)  # a fresh list: callers may change it


def install() -> None:
    """Route ``TimeWindowPartitionsDefinition.get_partition_keys`` through the cache (once)."""
    global _ORIGINAL
    if _ORIGINAL is not None:
        return
    _ORIGINAL = TimeWindowPartitionsDefinition.get_partition_keys
    TimeWindowPartitionsDefinition.get_partition_keys = cached_partition_keys  # type: ignore[method-assign]


def clear() -> None:
    """Forget every listing (tests)."""
    with _LOCK:
        _CACHE.clear()

"""A small thread-safe TTL cache for store summaries (coverage bounds, latest ticks).

Coverage and latest-tick queries are asked often (sensors, the coverage report, the CLI) and
change only when a partition is written, so both stores keep their results here. The rules:

* every write in this process calls :meth:`CoverageCache.invalidate`;
* entries also expire after ``ttl_seconds`` so writes made by *other* processes (Dagster runs
  each step in its own process) become visible within that bound even when the store has no
  cheaper way to notice them (stores that do, such as the embedded store's generation marker,
  put it in the key);
* ``enabled=False`` turns the cache into a no-op, for benchmarks of the uncached path and for
  callers that need read-your-writes across processes.

Values are returned as stored (no copy): callers must treat them as read-only or copy them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

#: Bound on the number of entries so a caller that asks about many different symbol sets
#: cannot grow the cache without limit; least recently used entries go first.
DEFAULT_MAX_ENTRIES = 256


class CoverageCache:
    """A thread-safe, size-bounded TTL cache with explicit invalidation.

    ``ttl_seconds=None`` means entries never expire by age (only :meth:`invalidate` or
    eviction removes them); ``ttl_seconds <= 0`` makes every entry expire at once.
    ``clock`` is injectable so tests need not sleep.
    """

    def __init__(
        self,
        ttl_seconds: float | None = 30.0,
        enabled: bool = True,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds is not None and math.isnan(ttl_seconds):
            raise ValueError("CoverageCache: ttl_seconds must be a number or None, not NaN")
        if max_entries < 1:
            raise ValueError(f"CoverageCache: max_entries must be >= 1, got {max_entries}")
        self.ttl_seconds = ttl_seconds
        self.enabled = enabled
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value for ``key``, or ``None`` if absent, expired or disabled."""
        if not self.enabled:
            return None
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                self.misses += 1
                return None
            stored_at, value = item
            if self.ttl_seconds is not None and self._clock() - stored_at >= self.ttl_seconds:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` under ``key`` (a no-op when disabled). ``None`` is not cacheable
        because :meth:`get` uses it to signal a miss."""
        if not self.enabled or value is None:
            return
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def invalidate(self) -> None:
        """Drop every entry (called after each write)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

"""What the benchmark scripts share: the median wall time of a call, and where the real
exchange ticks are.

Run as ``python bench/<script>.py``, a script finds this module beside it (the script's
folder is first on ``sys.path``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def median_seconds(
    fn: Callable[[], object],
    repeats: int,
    *,
    warmup: bool = False,
    before: Callable[[], object] | None = None,
) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (a shared machine: medians, not
    means). ``warmup`` makes one untimed call first (imports, schema caches); ``before``
    runs untimed ahead of every timed call (e.g. clearing a cache for a cold figure)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def realdata() -> Path | None:
    """``shared/realdata`` beside the repository (or any folder above it), if present."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "realdata"
        if candidate.is_dir():
            return candidate
    return None

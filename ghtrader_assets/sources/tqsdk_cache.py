"""A private tick-cache directory per TqSdk source: real parallelism and bounded disk.

tqsdk's ``DataSeries`` (``data_series.py``) caches every downloaded tick in
``~/.tqsdk/data_series_1`` (the module constant ``CACHE_DIR``) and holds the file lock
``.<SYMBOL>.0.lock`` there for the whole download, inside the event loop
(``data_series.py:79-80``). Two workers downloading the same contract therefore run one at
a time, and the waiting one is frozen (its websocket unserviced). Consecutive days of one
main symbol share their underlying, so a parallel backfill of one symbol ran serially.

Our answer: every source downloads into its own directory ``<root>/<host>-<pid>-<n>``, so
no two downloads ever share a lock file, whatever the pool limit and however Dagster
schedules the days. Because ``CACHE_DIR`` is one module constant and a ``TqApi`` runs its
event loop in the thread that calls it, the constant is replaced (once) by
:class:`_ThreadCacheDir`, an ``os.PathLike`` that resolves to the directory of the source
active in the calling thread (tqsdk only uses ``CACHE_DIR`` through ``os`` functions, which
accept path-like objects); threads without an active source get tqsdk's default.

The cache is no use to us: each day is downloaded once, over a window that does not
overlap another day's. So the contract's files are deleted after every download (the disk a
backfill needs is one day's download at a time: rows x 232 B on SHFE, x 104 B elsewhere),
the directory is removed on close, and directories left by dead processes on this host are
swept when a new one is made.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ghtrader_assets.sources.tqsdk_api import import_tqsdk

logger = logging.getLogger(__name__)

#: Bytes tqsdk's cache stores per tick: id + datetime (int64) and float64 fields; SHFE
#: (five levels) has 27 fields, other exchanges 11 (``DataSeries._get_data_cols``).
BYTES_PER_TICK_FIVE_LEVELS = 16 + 8 * 27
BYTES_PER_TICK_ONE_LEVEL = 16 + 8 * 11

_counter = itertools.count(1)
_active = threading.local()
_install_lock = threading.Lock()


def cache_bytes_per_tick(contract: str) -> int:
    """Disk bytes tqsdk's cache takes per tick of ``contract`` (its exchange decides)."""
    five = contract.split(".", 1)[0] in {"SHFE", "SSE", "SZSE"}
    return BYTES_PER_TICK_FIVE_LEVELS if five else BYTES_PER_TICK_ONE_LEVEL


class _ThreadCacheDir(os.PathLike):
    """``tqsdk.data_series.CACHE_DIR`` replacement: the calling thread's cache directory."""

    def __init__(self, default: str) -> None:
        self.default = default

    def __fspath__(self) -> str:
        return getattr(_active, "path", None) or self.default

    def __str__(self) -> str:
        return self.__fspath__()

    def __repr__(self) -> str:
        return f"_ThreadCacheDir({self.__fspath__()!r})"


def _install() -> None:
    """Replace tqsdk's cache-dir constant by the per-thread one (idempotent)."""
    data_series = import_tqsdk("tqsdk.data_series")

    with _install_lock:
        if not isinstance(data_series.CACHE_DIR, _ThreadCacheDir):
            data_series.CACHE_DIR = _ThreadCacheDir(os.fspath(data_series.CACHE_DIR))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CacheDir:
    """One source's private tqsdk cache directory under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.host = socket.gethostname()
        self.path = self.root / f"{self.host}-{os.getpid()}-{next(_counter)}"
        self._made = False

    def _make(self) -> None:
        if not self._made:
            self.root.mkdir(parents=True, exist_ok=True)
            self._sweep()
            self.path.mkdir(parents=True, exist_ok=True)
            self._made = True

    @contextmanager
    def active(self) -> Iterator[Path]:
        """Make tqsdk cache into this directory for calls made by this thread meanwhile."""
        _install()
        self._make()
        previous = getattr(_active, "path", None)
        _active.path = str(self.path)
        try:
            yield self.path
        finally:
            _active.path = previous

    def size_bytes(self) -> int:
        if not self.path.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def clear(self, contract: str) -> int:
        """Delete ``contract``'s cached ticks (all durations) and its lock file; bytes freed."""
        freed = 0
        if not self.path.is_dir():
            return 0
        for p in self.path.iterdir():
            if p.name.startswith((f"{contract}.", f".{contract}.")) and p.is_file():
                freed += p.stat().st_size
                p.unlink(missing_ok=True)
        return freed

    def remove(self) -> None:
        """Remove the whole directory (on close)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._made = False

    def _sweep(self) -> None:
        """Remove directories that processes of this host left behind when they died."""
        prefix = f"{self.host}-"
        for p in self.root.iterdir():
            if not (p.is_dir() and p.name.startswith(prefix)):
                continue
            parts = p.name[len(prefix) :].split("-")
            if len(parts) == 2 and parts[0].isdigit() and not _pid_alive(int(parts[0])):
                logger.info("removing the tqsdk cache of dead process %s: %s", parts[0], p)
                shutil.rmtree(p, ignore_errors=True)

"""Owning one ``TqApi``: a construction that cleans up, a wall-clock deadline, a recycle budget.

Three behaviours of the real tqsdk 3.10 library that a long backfill runs into:

* **A failed construction leaks its event loop.** ``TqApi.__init__`` creates an asyncio loop
  first and raises later (bad account, name service down, maintenance) without closing it;
  the caller never gets the object to close. :func:`construct` builds the instance in two
  steps so a failure can close it (or at least its loop).
* **tqsdk's 30 s deadline restarts on every update.** ``_get_data_series`` loops
  ``deadline = time.time() + 30; wait_update(deadline=deadline)`` (``api.py:1037-1042``),
  and ``wait_update`` returns on *any* update (``api.py:2107``). ``DataSeries`` subscribes to
  the contract's quote, so a download the server never answers runs forever while the market
  trades. :class:`WallDeadline` caps every wait of the api at our own wall-clock deadline per
  call by wrapping the instance's ``wait_update``: when it passes, ``wait_update`` returns
  ``False`` and tqsdk raises its own ``TqTimeoutError``, which the source reports as
  :class:`CallDeadlineError` (retried on a fresh ``TqApi``: closing the old one cancels the
  abandoned request).
* **Downloaded ticks stay in memory** (``api._data``) for the life of the instance (about
  4 KiB per tick). :class:`RecycleBudget` counts days and rows so the source closes the
  instance after a budget and logs in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ghtrader_assets.sources.base import SourceUnavailableError

logger = logging.getLogger(__name__)


def import_tqsdk(name: str = "tqsdk") -> ModuleType:
    """``importlib.import_module(name)`` for tqsdk, with :mod:`logging` left as it was.

    Why: importing tqsdk runs ``shinny_structlog``, which replaces ``logging.Logger.root``,
    ``logging.Logger.manager`` and ``logging.getLogger`` for the whole process. Every logger
    made before that import (this package's module loggers, Dagster's) then hangs off a root
    that no handler is attached to any more: once the TqSdk source was used, the warnings
    of the CSV reader, the stores and the source itself no longer reached the handlers
    Dagster, the CLI or pytest attach to the root. The three are put back after the import.
    tqsdk keeps working (its ``ShinnyLoggerAdapter`` wraps any ``Logger``); its ``TqApi``
    logger, which tqsdk sets to DEBUG, does not propagate into ours, so its messages go
    where they went before (nowhere, warnings to stderr) instead of flooding a run's log.
    """
    saved = (logging.Logger.root, logging.Logger.manager, logging.getLogger)
    try:
        return importlib.import_module(name)
    finally:
        logging.Logger.root, logging.Logger.manager, logging.getLogger = saved
        logging.getLogger("TqApi").propagate = False


class CallDeadlineError(SourceUnavailableError):
    """A TqSdk call ran past our wall-clock deadline (transient: retried on a new TqApi)."""


def construct(cls: type, *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)``, but a constructor that raises leaves nothing open."""
    api = cls.__new__(cls)
    try:
        api.__init__(*args, **kwargs)
    except BaseException:
        close_failed(api)
        raise
    return api


def close_failed(api: Any) -> None:
    """Close a half-built TqApi: ``close()`` if it gets that far, else its event loop."""
    # Half-initialised: attributes close() needs may be missing, hence the loop below.
    with contextlib.suppress(Exception):
        api.close()
    loop = getattr(api, "_loop", None)
    if loop is not None and not loop.is_closed():
        try:
            # Tasks tqsdk created before failing (e.g. its notify watcher) are cancelled and
            # run to their end, so nothing is left pending ("Task was destroyed ...").
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending and not loop.is_running():
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
        except Exception as exc:  # noqa: BLE001 - best effort; the original error matters
            logger.warning("could not close the event loop of a failed TqApi: %s", exc)


class WallDeadline:
    """Caps every ``wait_update`` of one api at the deadline of the call in progress."""

    def __init__(self, api: Any, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._original = api.wait_update
        self._limit: float | None = None
        self.expired = False
        api.wait_update = self._wait_update  # instance attribute shadows TqApi.wait_update

    def _wait_update(self, deadline: float | None = None, _task: Any = None) -> bool:
        limit = self._limit
        if limit is not None:
            if self._wall() >= limit:
                self.expired = True
                return False  # tqsdk raises its TqTimeoutError for the call
            deadline = limit if deadline is None else min(deadline, limit)
        if _task is None:
            updated = self._original(deadline=deadline)
        else:
            updated = self._original(deadline=deadline, _task=_task)
        if not updated and limit is not None and self._wall() >= limit:
            self.expired = True
        return bool(updated)

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Run the body (one TqSdk call) under a deadline ``seconds`` from now."""
        self._limit, self.expired = self._wall() + seconds, False
        try:
            yield
        finally:
            self._limit = None


@dataclass
class RecycleBudget:
    """How much one TqApi has downloaded, against the budget after which it is recycled."""

    max_days: int
    max_rows: int
    days: int = 0
    rows: int = 0

    def add(self, rows: int) -> bool:
        """Count one download; ``True`` when the api should now be recycled."""
        self.days += 1
        self.rows += rows
        return self.days >= self.max_days or self.rows >= self.max_rows

    def reset(self) -> None:
        self.days = self.rows = 0

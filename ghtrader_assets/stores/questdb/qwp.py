"""QWP (QuestDB's WebSocket protocol): the fast path for bulk writes and bulk reads.

``questdb.connect("ws::addr=HOST:9000;")`` returns a thread-safe, pooled handle with
``dataframe(df, table_name=, symbols=, at=)`` for columnar ingestion and
``query(sql, binds).to_pandas()`` for columnar reads. Queries take positional ``$1..$N``
bind parameters (``questdb`` 6.0 binds ``str``, ``int``, ``float``, ``datetime`` and more;
see ``QuestDB.query``), so the store's parameterised statements are used unchanged via
:meth:`~.queries.Query.qwp_sql`: no value is ever spliced into QWP SQL text.

Transport choice (``QuestDBSettings.transport``):

* ``ilp_http``: never try QWP.
* ``qwp``: connect eagerly; a server without QWP (or unreachable) is a :class:`StoreError`.
* ``auto``: try QWP once per store; if the connection fails, log once and fall back to
  ILP/HTTP writes and PGWire reads for the life of the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from ghtrader_assets.stores.base import StoreError
from ghtrader_assets.stores.questdb.queries import Query
from ghtrader_assets.stores.questdb.settings import QuestDBSettings

logger = logging.getLogger(__name__)

Connect = Callable[..., Any]


def default_connect(settings: QuestDBSettings) -> Any:
    """Open a QWP handle; credentials go as keywords, never into a logged string."""
    import questdb

    return questdb.connect(
        host=settings.host,
        port=settings.ilp_port,
        tls=settings.tls,
        **settings.auth_kwargs(),
    )


class QwpTransport:
    """Lazily opened QWP handle with the ``auto`` fallback decided exactly once."""

    def __init__(
        self, settings: QuestDBSettings, connect: Callable[[QuestDBSettings], Any] = default_connect
    ) -> None:
        self._settings = settings
        self._connect = connect
        self._lock = threading.Lock()
        self._handle: Any = None
        self._decided = settings.transport == "ilp_http"
        self.fallback_reason: str | None = None

    @property
    def mode(self) -> str:
        return self._settings.transport

    def handle(self) -> Any | None:
        """The QWP handle, or ``None`` when writes and reads must use ILP/HTTP and PGWire."""
        if self._decided:
            return self._handle
        with self._lock:
            if self._decided:
                return self._handle
            try:
                self._handle = self._connect(self._settings)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {self._settings.redact(exc)}"
                if self._settings.transport == "qwp":
                    raise StoreError(
                        f"QuestDB at {self._settings.host}:{self._settings.ilp_port}: QWP "
                        f"connection failed ({reason}); set transport 'auto' or 'ilp_http' "
                        "for a server without QWP"
                    ) from None
                self.fallback_reason = reason
                logger.warning(
                    "QuestDB at %s:%s offers no QWP (%s); using ILP/HTTP for writes and "
                    "PGWire for reads",
                    self._settings.host,
                    self._settings.ilp_port,
                    reason,
                )
            self._decided = True
            return self._handle

    def require(self) -> Any:
        handle = self.handle()
        if handle is None:
            raise StoreError("internal: QWP handle requested while QWP is not in use")
        return handle

    def query_df(self, query: Query) -> pd.DataFrame:
        """Run ``query`` over QWP and return a pandas frame (columnar, no row objects)."""
        handle = self.require()
        return handle.query(query.qwp_sql(), list(query.params)).to_pandas()

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
            if self._settings.transport != "ilp_http":
                self._decided = False
        if handle is not None:
            try:
                handle.close(timeout=10)
            except Exception:  # a failing close must not mask the caller's work
                logger.debug("closing the QWP handle raised", exc_info=True)

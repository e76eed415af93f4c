"""Batched, retried writes of one table's rows: ILP over HTTP, or QWP.

ILP/HTTP (``from questdb import Sender``): one sender per store, reused across writes,
auto-flush off. The writer appends ``batch_rows`` rows of *one* table and flushes with
``transactional=True``, so each flush is exactly one HTTP request and one WAL transaction;
a partition of at most ``batch_rows`` rows (a whole tick day with the default) is therefore
replaced atomically. QWP (``questdb.connect(...).dataframe``) commits per server frame
instead; the writer still calls it once per batch so failures are reported per batch.

Transient failures (connection refused or reset, DNS, timeouts, HTTP 5xx) are retried with
exponential backoff up to ``max_retries`` times per batch; a flush failure clears the
sender's buffer, so each attempt re-serialises the batch. Permanent failures (a type the
column cannot take, bad names, authentication) are not retried. Either way the error
raised is a :class:`StoreError` naming the table, the partition, the batch and which
batches were already committed. Re-sending rows is always safe: the table deduplicates on
its upsert keys, so a re-materialization after a failure leaves no duplicates.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ghtrader_assets.stores.base import StoreError

logger = logging.getLogger(__name__)

_TRANSIENT_CODES = frozenset(
    {"SocketError", "CouldNotResolveAddr", "ConnectTimeout", "FailoverRetry", "ServerInternalError"}
)
# ServerFlushError covers both a rejected row (HTTP 400, permanent) and a server in trouble
# (HTTP 5xx, transient); the client only gives us the message to tell them apart.
_TRANSIENT_TEXT = re.compile(
    r"\b50[0-9]\b|internal server error|service unavailable|bad gateway|gateway timeout|"
    r"connection (refused|reset|aborted|closed)|timed out|timeout|broken pipe",
    re.IGNORECASE,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying (the server may succeed on a later attempt)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    code = getattr(getattr(exc, "code", None), "name", None)
    if code in _TRANSIENT_CODES:
        return True
    if code in ("ServerFlushError", "ProtocolVersionError"):
        return bool(_TRANSIENT_TEXT.search(str(exc)))
    return False


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (1-based): exponential, capped, with jitter so
        several step processes do not retry in lockstep."""
        raw = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return raw * (0.5 + random.random() / 2)


class SenderLike(Protocol):
    """The part of :class:`questdb.Sender` the writer uses (fakes implement it in tests)."""

    def establish(self) -> Any: ...

    def dataframe(self, df: pd.DataFrame, *, table_name: str, symbols: Any, at: Any) -> Any: ...

    def flush(self, buffer: Any = None, clear: bool = True, transactional: bool = False) -> Any: ...

    def close(self, flush: bool = True) -> Any: ...


class BatchWriter:
    """Writes a frame to one table in batches; subclasses say how one batch is sent."""

    transport = "?"

    def __init__(
        self,
        batch_rows: int,
        retry: RetryPolicy,
        *,
        redact: Callable[[object], str] = str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.batch_rows = batch_rows
        self.retry = retry
        self._redact = redact
        self._sleep = sleep
        self._lock = threading.Lock()

    def write(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        symbols: Sequence[str],
        at: str,
        where: str,
    ) -> int:
        """Send ``frame`` to ``table``; returns the number of batches committed."""
        n = len(frame)
        n_batches = -(-n // self.batch_rows) if n else 0
        with self._lock:
            for i in range(n_batches):
                start = i * self.batch_rows
                batch = frame.iloc[start : start + self.batch_rows]
                self._send_with_retries(table, batch, symbols, at, where, i + 1, n_batches, start)
        return n_batches

    def _send_with_retries(
        self,
        table: str,
        batch: pd.DataFrame,
        symbols: Sequence[str],
        at: str,
        where: str,
        number: int,
        total: int,
        start: int,
    ) -> None:
        attempt = 0
        while True:
            try:
                self._send(table, batch, list(symbols), at)
                return
            except Exception as exc:  # classified below, always re-raised
                self._reset()
                transient = is_transient(exc)
                if transient and attempt < self.retry.max_retries:
                    attempt += 1
                    delay = self.retry.delay(attempt)
                    logger.warning(
                        "%s: %s batch %d/%d failed (%s); retry %d/%d in %.2fs",
                        where,
                        self.transport,
                        number,
                        total,
                        self._redact(exc),
                        attempt,
                        self.retry.max_retries,
                        delay,
                    )
                    self._sleep(delay)
                    continue
                done = (
                    f"batches 1-{number - 1} of {total} were committed"
                    if number > 1
                    else "no batch was committed"
                )
                kind = (
                    f"transient error, {attempt} retries exhausted"
                    if transient
                    else "permanent error, not retried"
                )
                raise StoreError(
                    f"{where}: {self.transport} write to table {table!r} failed at batch "
                    f"{number}/{total} (rows {start}-{start + len(batch) - 1}; {kind}): "
                    f"{type(exc).__name__}: {self._redact(exc)}. {done}; re-materialize the "
                    "partition (writes are idempotent: the table deduplicates on its keys)"
                ) from None

    def _send(self, table: str, batch: pd.DataFrame, symbols: list[str], at: str) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        """Drop connection state after a failure so the next attempt starts clean."""

    def close(self) -> None:
        """Release the connection."""


class IlpHttpWriter(BatchWriter):
    """ILP over HTTP through one reused :class:`questdb.Sender` (created lazily)."""

    transport = "ILP/HTTP"

    def __init__(
        self,
        sender_factory: Callable[[], SenderLike],
        batch_rows: int,
        retry: RetryPolicy,
        **kw: Any,
    ) -> None:
        super().__init__(batch_rows, retry, **kw)
        self._factory = sender_factory
        self._sender: SenderLike | None = None

    def _get_sender(self) -> SenderLike:
        if self._sender is None:
            sender = self._factory()
            sender.establish()
            self._sender = sender
        return self._sender

    def _send(self, table: str, batch: pd.DataFrame, symbols: list[str], at: str) -> None:
        sender = self._get_sender()
        sender.dataframe(batch, table_name=table, symbols=symbols, at=at)
        sender.flush(transactional=True)

    def _reset(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            try:
                sender.close(flush=False)
            except Exception:  # a broken sender may fail to close; drop it
                logger.debug("closing a failed ILP sender raised", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._reset()


class QwpWriter(BatchWriter):
    """QWP (WebSocket) through a shared ``questdb.QuestDB`` handle (see :mod:`.qwp`)."""

    transport = "QWP"

    def __init__(
        self, handle_getter: Callable[[], Any], batch_rows: int, retry: RetryPolicy, **kw: Any
    ) -> None:
        super().__init__(batch_rows, retry, **kw)
        self._handle = handle_getter

    def _send(self, table: str, batch: pd.DataFrame, symbols: list[str], at: str) -> None:
        # QWP commits its first internal batch, then pipelines the rest to a final commit.
        # One internal batch per our batch keeps a tick day to a single commit unless the
        # server's per-batch byte cap forces a split (then readers may briefly see a prefix).
        self._handle().dataframe(
            micros(batch),
            table_name=table,
            symbols=symbols,
            at=at,
            max_rows_per_batch=max(len(batch), 1),
        )


def micros(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with nanosecond timestamp columns as microseconds.

    QWP is typed: ``datetime64[ns]`` travels as TIMESTAMP_NANOS, ``datetime64[us]`` as
    TIMESTAMP, the type of our columns. Sending the column's own type leaves the server no
    conversion to refuse; the values lose nothing it would keep (TIMESTAMP is microseconds,
    and exact tick nanoseconds travel in the ``datetime`` LONG column).
    """
    out = frame
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns":
            if out is frame:
                out = frame.copy(deep=False)
            # Integer arithmetic on the int64 view: a floor to microseconds without pandas'
            # per-element rounding machinery (NaT stays NaT: INT64_MIN is a multiple of 1000
            # away from nothing we keep, so it is masked explicitly).
            ns = frame[name].to_numpy(dtype="datetime64[ns]").view("int64")
            nat = ns == np.iinfo(np.int64).min
            us = np.where(nat, np.iinfo(np.int64).min, ns // 1000).view("datetime64[us]")
            out[name] = pd.Series(
                pd.DatetimeIndex(us).tz_localize("UTC"), index=frame.index, name=name
            )
    return out

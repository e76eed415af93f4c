"""The real source: TqSdk Pro (``GHTRADER_SOURCE=tqsdk``).

What it does for one main symbol and trading day D (P = the previous trading day):

* **Roll schedule.** TqSdk's main-contract table (``continuous_table.json``, what
  ``query_his_cont_quotes`` reads) gives the real contract behind ``KQ.m@EXCHANGE.product``
  per trading day. The source fetches it itself (:mod:`~ghtrader_assets.sources.
  tqsdk_roll_table`: HTTP timeout, once per source and again after a TTL; tqsdk reads it once
  per process without timeout). A day after the table's last published date is unconfirmed
  and checked against ``quote.underlying_symbol`` of the live main quote.
* **Ticks.** ``TqApi.get_tick_data_series`` for the underlying over [P 18:00, D 16:00) local,
  under our wall-clock deadline and into this source's own cache directory
  (:mod:`~ghtrader_assets.sources.tqsdk_api`, :mod:`~ghtrader_assets.sources.tqsdk_cache`),
  then trimmed to D's sessions: rows from before the window (tqsdk starts with the last tick
  before it) are dropped, an answer without any tick in the window is retried and never
  stored as an empty day, missing levels become NaN/NaN. The sessions are D's own, from
  the dated session history (:func:`~ghtrader_assets.sessions.session_windows`, built on
  ``cnfutures-session-timeline``): hours change over the years, and TqSdk's
  ``trading_time`` only knows today's, so it is never used. A product the history does not
  know (a listing newer than the installed release) is refused when the definitions load:
  validation, automation and coverage need its dated hours too; upgrade the package.
* **True L5.** On five-level exchanges (SHFE, INE) a row is kept only when it carries depth:
  at least one of bid/ask price levels 2-5 is a positive number. Requiring all sixteen level
  2-5 fields would drop legitimate rows with a one-sided or thin book (limit-locked markets,
  far months). Level-1-only rows there are dropped and counted in :class:`TickStats`; a day
  whose in-session rows are all level 1 raises :class:`DaySkippedError` (``no_l5``). Note
  that tqsdk 3.10's ``get_tick_data_series`` only stores five levels for SHFE (not INE):
  when the frame has no level 2-5 columns at all nothing can be filtered, rows are kept and
  ``TickStats.depth_columns`` is ``False`` (and a warning is logged once per exchange).

Account safety: one ``TqApi`` per source instance, created lazily in the thread and process
that first uses the source; use from any other thread or process raises
:class:`SourceThreadError` because ``TqApi`` is not thread-safe. ``close()`` (or the context
manager) closes it on every path. The password comes only from the constructor (the Dagster
resource fills it from ``EnvVar("GHTRADER_TQ_PASSWORD")``) or :meth:`TqSdkSource.from_env`;
it is never logged, never in an exception message (every provider text is redacted) and the
source refuses to be pickled. After a maintenance error the connection is dropped and
re-created on the next attempt, so there is still at most one ``TqApi`` alive per source.
The ``TqApi`` is also recycled after a budget of downloaded days or rows, because it keeps
every tick it downloaded in memory (:class:`~ghtrader_assets.sources.tqsdk_settings.
TqSdkSettings`).

Errors: transient ones (``TqTimeoutError``, our call deadline, connection/HTTP errors, the
auth server's 5xx, the name service) are retried with
backoff under a :class:`~ghtrader_assets.sources.retry.RetryPolicy` and a shared
:class:`~ghtrader_assets.sources.retry.CircuitBreaker`; maintenance waits long; an unknown
symbol (:class:`UnknownSymbolError`) and a rejected account
(:class:`AuthenticationError`) fail at once, without tqsdk's traceback chained.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import random
import re
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from ghtrader_assets import calendar, sessions
from ghtrader_assets.calendar import TZ
from ghtrader_assets.products import FIVE_LEVEL_EXCHANGES
from ghtrader_assets.schema import ROLL_SCHEDULE, TICKS, conform, empty_frame
from ghtrader_assets.sessions import SessionWindow
from ghtrader_assets.sources.base import (
    MalformedInputError,
    NoDataError,
    RollEntry,
    SourceError,
    SourceUnavailableError,
    TickSource,
    UnknownSymbolError,
)
from ghtrader_assets.sources.retry import (
    CircuitBreaker,
    Classified,
    Clock,
    ErrorKind,
    Retrier,
    RetryPolicy,
    Sleep,
    system_clock,
)
from ghtrader_assets.sources.skip_ledger import DaySkippedError, SkipReason
from ghtrader_assets.sources.tqsdk_api import (
    CallDeadlineError,
    RecycleBudget,
    WallDeadline,
    construct,
    import_tqsdk,
)
from ghtrader_assets.sources.tqsdk_cache import CacheDir
from ghtrader_assets.sources.tqsdk_roll_table import RollTable, RollTableFetcher, http_fetch
from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings
from ghtrader_assets.symbols import Contract, MainSymbol, SymbolError, parse_contract

logger = logging.getLogger(__name__)

T = TypeVar("T")

ENV_USER = "GHTRADER_TQ_USER"
ENV_PASSWORD = "GHTRADER_TQ_PASSWORD"

#: Ticks are requested from the previous trading day at this local time (night opens 21:00) ...
FETCH_FROM = dt.time(18, 0)
#: ... up to this local time on the trading day (the day session closes at 15:00).
FETCH_UNTIL = dt.time(16, 0)

#: TqSdk's ``get_tick_data_series`` columns besides the book levels (``symbol`` and
#: ``duration`` follow them and are dropped).
REQUIRED_TICK_COLUMNS = ("id", "datetime", "last_price", "volume", "bid_price1", "ask_price1")
DEPTH_PRICE_COLUMNS = tuple(f"{side}_price{lvl}" for lvl in (2, 3, 4, 5) for side in ("bid", "ask"))

#: A TqApi-like object (``tqsdk.TqApi`` or the test fake) built from (user, password).
ApiFactory = Callable[[str, str], Any]

_AUTH_RE = re.compile(
    r"用户权限认证失败|快期账户|请输入 auth|invalid_grant|invalid user credentials", re.I
)
#: ``TqAuth._request_token``: "用户权限认证失败 (%d,%s)" with the auth server's HTTP status;
#: a 5xx is the server failing, not the account.
_AUTH_STATUS_RE = re.compile(r"用户权限认证失败 \((\d{3})")
#: ``TqAuth._get_md_url``: the name service that hands out the market-data address failed.
_NAME_SERVICE_RE = re.compile(r"调用名称服务失败")
#: ``TqAuth._has_md_grants`` and the account checks: the account lacks a grant.
_GRANT_RE = re.compile(r"您的账户不支持")
_PRO_RE = re.compile(r"专业版|tq_dl")
_UNKNOWN_RE = re.compile(r"主连合约代码|不存在")
_NETWORK_RE = re.compile(r"超时|网络|连接|timed? ?out|connection|network", re.I)
_LOOKUP_TIMEOUT_RE = re.compile(r"合约信息超时|行情信息超时")


class MissingCredentialsError(SourceUnavailableError):
    """No TqSdk account is configured."""


class AuthenticationError(SourceUnavailableError):
    """TqSdk rejected the account, or the account lacks the TqSdk Pro permission."""


class EmptyDownloadError(SourceUnavailableError):
    """TqSdk returned no ticks for a day with sessions (retried: never stored as empty)."""


class SourceThreadError(SourceError):
    """A source (and its TqApi) was used from a thread or process other than its owner's."""


def default_api_factory(user: str, password: str) -> Any:
    """Build the real ``TqApi``. tqsdk is imported here because importing it takes seconds
    (and prints a notice), which every process that never uses the real source should skip.
    A failed construction closes the event loop tqsdk would leave open."""
    tqsdk = import_tqsdk()
    return construct(tqsdk.TqApi, auth=tqsdk.TqAuth(user, password))


@dataclass(frozen=True)
class TickStats:
    """What :meth:`TqSdkSource.ticks` kept and dropped for one symbol-day (asset metadata)."""

    symbol: str
    trading_day: str
    underlying: str
    raw_rows: int
    outside_session_rows: int
    l1_only_rows: int
    rows: int
    five_levels: bool
    depth_columns: bool
    windows: tuple[tuple[str, str, str], ...] = field(default=())
    before_window_rows: int = 0

    def as_metadata(self) -> dict[str, object]:
        return {
            "raw_rows": self.raw_rows,
            "outside_session_rows": self.outside_session_rows,
            "l1_only_rows_dropped": self.l1_only_rows,
            "rows": self.rows,
            "five_levels": self.five_levels,
            "depth_columns": self.depth_columns,
            "windows": [f"{kind} {start}..{end}" for start, end, kind in self.windows],
            "before_window_rows_dropped": self.before_window_rows,
        }


def schedule_hash(df: pd.DataFrame) -> str:
    """A short stable hash of a roll schedule's (symbol, trading_day) -> underlying mapping.

    Row order, index, the ``ts``/``source`` columns and dtypes do not matter; any change of
    an underlying, an added or removed day does.
    """
    missing = [c for c in ("symbol", "trading_day", "underlying") if c not in df.columns]
    if missing:
        raise KeyError(f"schedule_hash: roll schedule frame lacks columns {missing}")
    triples = sorted(
        zip(
            df["symbol"].astype(str).tolist(),
            df["trading_day"].astype(str).tolist(),
            df["underlying"].astype(str).tolist(),
            strict=True,
        )
    )
    return hashlib.sha256(json.dumps(triples).encode()).hexdigest()[:16]


def _local_midnight(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(), tzinfo=TZ))


class TqSdkSource(TickSource):
    """Roll schedules and true-L5 ticks from TqSdk Pro; see the module docstring."""

    name = "tqsdk"

    def __init__(
        self,
        user: str,
        password: str,
        *,
        api_factory: ApiFactory | None = None,
        retry_policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = system_clock,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        settings: TqSdkSettings | None = None,
        roll_fetcher: RollTableFetcher | None = None,
        account: str = "",
    ) -> None:
        # ``account``: the name in GHTRADER_TQ_ACCOUNTS (several accounts), "" for the
        # single-account form. It names the variables in messages, and keeps the circuit
        # breaker and the tick cache apart per account.
        self.account = account
        suffix = f"_{account.upper()}" if account else ""
        self._variables = (f"{ENV_USER}{suffix}", f"{ENV_PASSWORD}{suffix}")
        missing = [
            env
            for env, value in zip(self._variables, (user, password), strict=True)
            if not (value or "").strip()
        ]
        if missing:
            whose = f"account {account!r}" if account else "account"
            raise MissingCredentialsError(
                f"no TqSdk {whose} configured: set {' and '.join(self._variables)} "
                f"(a Shinny/快期 account with TqSdk Pro); missing: {', '.join(missing)}"
            )
        self._user = user.strip()
        self._password = password
        self._factory = api_factory or default_api_factory
        self._clock = clock
        self._retrier = Retrier(
            retry_policy,
            # One breaker per account: a failing account must not stop the others' steps.
            breaker
            if breaker is not None
            else CircuitBreaker.shared(f"tqsdk_{account}" if account else "tqsdk"),
            clock=clock,
            sleep=sleep,
            rng=rng,
        )
        self.settings = settings if settings is not None else TqSdkSettings.from_env()
        self._roll_fetcher = roll_fetcher or http_fetch
        # Each account caches under its own root (per-source directories below it).
        cache_root = self.settings.cache_dir / account if account else self.settings.cache_dir
        self.cache = CacheDir(cache_root)
        self._budget = RecycleBudget(self.settings.recycle_days, self.settings.recycle_rows)
        self._deadline: WallDeadline | None = None
        self.api_generations = 0  # how many TqApi instances this source created
        self._api: Any = None
        self._owner: tuple[int, int] | None = None  # (pid, thread ident)
        self._closed = False
        self._table: RollTable | None = None
        self._live_mains: dict[MainSymbol, str] = {}
        self._listed: dict[tuple[str, str], frozenset[str]] = {}
        self._warned: set[str] = set()
        self.last_stats: TickStats | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> TqSdkSource:
        """Build from ``GHTRADER_TQ_USER`` / ``GHTRADER_TQ_PASSWORD`` (``os.environ`` by default)."""
        env = os.environ if env is None else env
        return cls(env.get(ENV_USER, ""), env.get(ENV_PASSWORD, ""), **kwargs)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._api is not None else "idle")
        account = f"account={self.account!r}, " if self.account else ""
        return f"TqSdkSource({account}user={self._user!r}, password=***, {state})"

    def __getstate__(self) -> Any:
        raise TypeError(
            "TqSdkSource cannot be pickled (it holds account credentials and a TqApi that is "
            "bound to one thread): create it inside the process that uses it"
        )

    # -- public API -------------------------------------------------------------------------

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        """The underlying that is main for ``symbol`` on ``trading_day``.

        Raises :class:`DaySkippedError` (``not_listed`` / ``not_a_trading_day``),
        :class:`NoDataError` for a day after the current trading day,
        :class:`UnknownSymbolError` for a main symbol TqSdk does not know.
        """
        self._check_owner()
        underlying = self._underlying(symbol, trading_day)
        return RollEntry(symbol, trading_day, underlying, self.name)

    def roll_schedule(self, symbol: MainSymbol, days: Iterable[dt.date]) -> pd.DataFrame:
        """The roll schedule for ``days`` as a :data:`ROLL_SCHEDULE` frame, with its
        :func:`schedule_hash` in every row. Days the source skips (not listed, not a trading
        day for TqSdk) are left out and logged."""
        self._check_owner()
        rows = []
        for day in sorted(set(days)):
            try:
                entry = self.roll_entry(symbol, day)
            except DaySkippedError as exc:
                logger.info("roll schedule: %s", exc)
                continue
            rows.append((symbol.raw, day.isoformat(), entry.underlying))
        df = pd.DataFrame(rows, columns=["symbol", "trading_day", "underlying"])
        df["ts"] = [
            _local_midnight(dt.date.fromisoformat(d)).tz_convert("UTC") for d in df["trading_day"]
        ]
        df["source"] = self.name
        df["schedule_hash"] = schedule_hash(df)
        return conform(df, ROLL_SCHEDULE)

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        frame, _ = self.ticks_with_stats(entry)
        return frame

    def ticks_with_stats(self, entry: RollEntry) -> tuple[pd.DataFrame, TickStats]:
        """Ticks of ``entry`` (TICKS schema, sorted by ts, id) and what was kept or dropped.

        Raises :class:`DaySkippedError` (``no_l5`` / ``no_sessions`` / ``not_a_trading_day``),
        :class:`UnknownSymbolError`, :class:`MalformedInputError` for a frame without the
        columns TqSdk documents, and :class:`SourceUnavailableError` subclasses when the
        service cannot be reached within the retry limits.
        """
        self._check_owner()
        contract = self._contract(entry.underlying, entry)
        windows = self._windows(entry, contract)
        prev = calendar.previous_trading_day(entry.trading_day)
        start = dt.datetime.combine(prev, FETCH_FROM)
        end = dt.datetime.combine(entry.trading_day, FETCH_UNTIL)
        what = f"get_tick_data_series({entry.underlying}, {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M})"

        start_ns = int(pd.Timestamp(start, tz=TZ).value)

        def fetch(api: Any) -> pd.DataFrame:
            try:
                with self._lookup_guard(api, contract, entry):
                    raw = api.get_tick_data_series(
                        symbol=entry.underlying, start_dt=start, end_dt=end
                    )
            finally:
                self.cache.clear(entry.underlying)  # each window is downloaded once
            if _no_ticks_from(raw, start_ns):
                raise EmptyDownloadError(
                    f"{what} returned no ticks for {entry.symbol.raw} {entry.trading_day}, a "
                    f"day with {len(windows)} session windows (a failed download under "
                    "`python -O`, or a stale answer holding only a tick from before the "
                    "window); refusing an empty day"
                )
            return raw

        raw = self._call(what, fetch, subject=entry.underlying)
        rows = len(raw) if isinstance(raw, pd.DataFrame) else 0
        if self._budget.add(rows):
            logger.info(
                "recycling the TqApi after %d days / %d rows (tqsdk keeps every downloaded "
                "tick in memory for the life of a TqApi)",
                self._budget.days,
                self._budget.rows,
            )
            self._close_api()
        frame, stats = self._normalize(raw, entry, windows, start_ns)
        self.last_stats = stats
        logger.info(
            "%s %s (%s): %d ticks kept of %d (%d outside sessions, %d level-1-only dropped)",
            entry.symbol.raw,
            entry.trading_day,
            entry.underlying,
            stats.rows,
            stats.raw_rows,
            stats.outside_session_rows,
            stats.l1_only_rows,
        )
        return frame, stats

    def close(self) -> None:
        """Close the TqApi (if one was created). Idempotent; only from the owning thread."""
        if self._api is not None:
            self._check_owner(allow_closed=True)
        self._close_api()
        self.cache.remove()
        self._closed = True

    # -- ownership and the TqApi -------------------------------------------------------------

    def _check_owner(self, allow_closed: bool = False) -> None:
        if self._closed and not allow_closed:
            raise SourceError("this TqSdkSource is closed; create a new one")
        me = (os.getpid(), threading.get_ident())
        if self._owner is None:
            self._owner = me
            return
        if self._owner != me:
            pid, tid = self._owner
            raise SourceThreadError(
                f"TqSdkSource belongs to thread {tid} of process {pid} but was used from thread "
                f"{me[1]} of process {me[0]}: TqApi is not thread-safe, create one source per "
                "worker thread or process"
            )

    def _ensure_api(self) -> Any:
        if self._api is None:
            logger.info(
                "connecting to TqSdk as %s%s",
                self._user,
                f" (account {self.account})" if self.account else "",
            )
            api = self._factory(self._user, self._password)
            self._deadline = WallDeadline(api)
            self._budget.reset()
            self.api_generations += 1
            self._api = api
        return self._api

    def _close_api(self) -> None:
        api, self._api = self._api, None
        self._deadline = None
        if api is None:
            return
        try:
            api.close()
        except Exception as exc:  # noqa: BLE001 - closing must not mask the real outcome
            logger.warning("closing TqApi failed: %s", self._redact(f"{type(exc).__name__}: {exc}"))

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def _call(self, what: str, fn: Callable[[Any], T], *, subject: str) -> T:
        """Run ``fn(api)`` with retries; errors are classified with ``subject`` (the symbol)."""

        def on_failure(failure: Classified) -> None:
            if failure.kind in (ErrorKind.MAINTENANCE, ErrorKind.TRANSIENT):
                # Retry on a fresh TqApi: after a maintenance break the connection is gone,
                # and after a timeout the abandoned request still runs in the old API's event
                # loop holding tqsdk's per-contract cache file lock, which a second request
                # on the same API would wait for forever. Closing cancels it.
                self._close_api()

        timeout = self.settings.call_timeout

        def attempt() -> T:
            api = self._ensure_api()
            deadline = typing.cast(WallDeadline, self._deadline)
            with self.cache.active(), deadline.limit(timeout):
                try:
                    return fn(api)
                except Exception:
                    if deadline.expired:
                        raise CallDeadlineError(
                            f"TqSdk {what}: no answer within {timeout:g} s of wall-clock time "
                            "(tqsdk's own 30 s deadline restarts on every quote update, so a "
                            "stalled request never ends by itself); abandoned"
                        ) from None
                    raise

        return self._retrier.call(
            attempt,
            what=f"TqSdk {what}",
            classify=lambda exc: self._classify(exc, what, subject),
            on_failure=on_failure,
        )

    def _classify(self, exc: BaseException, what: str, subject: str) -> Classified:
        message = self._redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, CallDeadlineError | EmptyDownloadError):
            return Classified(ErrorKind.TRANSIENT, self._redact(str(exc)))
        if isinstance(exc, SourceError):  # raised on purpose by this module, already clear
            return Classified(ErrorKind.FATAL, message, exc)
        text = str(exc)
        status = _AUTH_STATUS_RE.search(text)
        if (status and int(status.group(1)) >= 500) or _NAME_SERVICE_RE.search(text):
            return Classified(ErrorKind.TRANSIENT, message)  # Shinny's servers, not the account
        if _GRANT_RE.search(text):
            return Classified(
                ErrorKind.FATAL,
                message,
                AuthenticationError(
                    f"the TqSdk account {self._user!r} has no permission for {what} ({message}); "
                    "the account needs the market-data grant for this exchange"
                ),
            )
        if _AUTH_RE.search(text):
            return Classified(
                ErrorKind.FATAL,
                message,
                AuthenticationError(
                    f"TqSdk rejected the account {self._user!r} ({message}); check "
                    f"{' and '.join(self._variables)}"
                ),
            )
        if _PRO_RE.search(text):
            return Classified(
                ErrorKind.FATAL,
                message,
                AuthenticationError(
                    f"the TqSdk account {self._user!r} lacks the TqSdk Pro permission that "
                    f"{what} needs ({message})"
                ),
            )
        if _UNKNOWN_RE.search(text):
            return Classified(
                ErrorKind.FATAL,
                message,
                UnknownSymbolError(f"TqSdk does not know symbol {subject!r} ({message})"),
            )
        if RetryPolicy.says_maintenance(text):
            return Classified(ErrorKind.MAINTENANCE, message)
        if (
            _is_tq_timeout(exc)
            or isinstance(exc, (TimeoutError, ConnectionError, OSError))
            or (isinstance(exc, AssertionError) and "下载" in text)  # DataSeries download failed
            or _NETWORK_RE.search(text)
        ):
            return Classified(ErrorKind.TRANSIENT, message)
        return Classified(
            ErrorKind.FATAL,
            message,
            SourceError(f"TqSdk {what} failed with an unexpected error: {message}"),
        )

    # -- roll schedule -----------------------------------------------------------------------

    def _underlying(self, symbol: MainSymbol, day: dt.date) -> str:
        today = calendar.trading_day_of(self._clock())
        if day > today:
            raise NoDataError(
                f"{symbol.raw} {day}: after the current trading day {today}; no roll yet"
            )
        table = self._roll_table()
        if not table.knows(symbol.raw):
            raise UnknownSymbolError(
                f"TqSdk's main-contract table {table.url} has no main symbol {symbol.raw!r}"
            )
        if not calendar.is_trading_day(day):
            raise DaySkippedError(
                symbol, day, SkipReason.NOT_A_TRADING_DAY, "not a trading day of the calendar"
            )
        answer = table.answer(symbol.raw, day)
        underlying = answer.contract
        if not answer.confirmed:
            underlying = self._confirm_roll(symbol, day, today, answer.contract, table)
        if not underlying:
            first = table.first_day(symbol.raw)
            raise DaySkippedError(
                symbol,
                day,
                SkipReason.NOT_LISTED,
                f"the main symbol had no underlying contract yet (TqSdk's table starts {first})",
            )
        try:
            parse_contract(underlying)
        except SymbolError as exc:
            raise MalformedInputError(
                f"TqSdk roll schedule of {symbol.raw} on {day}: {exc}"
            ) from None
        return underlying

    def _confirm_roll(
        self, symbol: MainSymbol, day: dt.date, today: dt.date, carried: str, table: RollTable
    ) -> str:
        """A day after the table's last published date: its row is only carried forward.

        The live main quote says which contract is main *now*. For the current trading day
        that is the answer. For an earlier unpublished day it confirms the carried contract
        when they agree (a main contract never moves back to an earlier one, so no switch
        happened in between); when they differ the switch day is unknown until the table
        is published, and the day is refused (retryable) rather than guessed.
        """
        live = self._live_main(symbol)
        if day == today:
            if carried and live != carried:
                logger.warning(
                    "%s %s: TqSdk's main-contract table (published through %s) carries %s "
                    "forward, the live main quote says %s; using %s",
                    symbol.raw,
                    day,
                    table.published_through,
                    carried,
                    live,
                    live,
                )
            return live
        if live == carried:
            return carried
        raise NoDataError(
            f"{symbol.raw} {day}: TqSdk's main-contract table is published only through "
            f"{table.published_through} and carries {carried or 'nothing'} forward, but the "
            f"main contract is now {live}; the switch day is unconfirmed until the table is "
            "updated (retry later)"
        )

    def _live_main(self, symbol: MainSymbol) -> str:
        """``quote.underlying_symbol`` of the main symbol (a live quote: it does not stall)."""
        cached = self._live_mains.get(symbol)
        if cached is None:
            cached = self._call(
                f"get_quote({symbol.raw}).underlying_symbol",
                lambda api: str(api.get_quote(symbol.raw).underlying_symbol or ""),
                subject=symbol.raw,
            )
            self._live_mains[symbol] = cached
        return cached

    def _roll_table(self) -> RollTable:
        """The main-contract table, fetched per source and again when older than the TTL."""
        now = self._clock()
        table = self._table
        if table is not None and table.age_seconds(now) <= self.settings.roll_table_ttl:
            return table
        url, timeout = self.settings.roll_table_url, self.settings.roll_table_timeout
        raw = self._retrier.call(
            lambda: self._roll_fetcher(url, timeout),
            what=f"TqSdk main-contract table {url}",
            classify=lambda exc: self._classify(exc, f"main-contract table {url}", url),
        )
        self._table = RollTable.parse(raw, url=url, fetched_at=now)
        self._live_mains.clear()
        logger.info(
            "TqSdk main-contract table fetched from %s: published through %s",
            url,
            self._table.published_through,
        )
        return self._table

    # -- sessions ----------------------------------------------------------------------------

    def _contract(self, underlying: str, entry: RollEntry) -> Contract:
        try:
            contract = parse_contract(underlying)
        except SymbolError as exc:
            raise UnknownSymbolError(f"{entry.symbol.raw} {entry.trading_day}: {exc}") from None
        if (contract.exchange, contract.product) != (entry.symbol.exchange, entry.symbol.product):
            raise MalformedInputError(
                f"underlying {underlying!r} is not a contract of {entry.symbol.raw}"
            )
        return contract

    def _windows(self, entry: RollEntry, contract: Contract) -> list[SessionWindow]:
        """The day's sessions as of that day, from the dated session history (TqSdk's
        ``trading_time`` only knows today's hours: a 2017 CZCE night ended at 23:30,
        today's at 23:00). Every product of the universe has a history: one without is
        refused when the definitions load (:func:`ghtrader_assets.products.spec_for`),
        since validation, automation and coverage need the same dated hours."""
        day = entry.trading_day
        if not calendar.is_trading_day(day):
            raise DaySkippedError(
                entry.symbol,
                day,
                SkipReason.NOT_A_TRADING_DAY,
                "TqSdk lists this day but ghtrader_assets.calendar does not; fix "
                "holidays_override.csv if TqSdk is right",
            )
        windows = sessions.session_windows(contract.exchange, contract.product, day)
        if not windows:
            raise DaySkippedError(
                entry.symbol,
                day,
                SkipReason.NO_SESSIONS,
                f"{contract.exchange}.{contract.product} has no sessions on {day} in the "
                "session history",
            )
        return windows

    @contextlib.contextmanager
    def _lookup_guard(self, api: Any, contract: Contract, entry: RollEntry) -> Iterator[None]:
        """TqSdk reports an unknown contract as a 30 s lookup *timeout*, indistinguishable
        from a slow network. On such a timeout ask the contract service once: a contract it
        does not list is an :class:`UnknownSymbolError` (no retries), anything else is
        re-raised and retried as a timeout."""
        try:
            yield
        except Exception as exc:
            lookup_failed = _is_tq_timeout(exc) and _LOOKUP_TIMEOUT_RE.search(str(exc))
            if lookup_failed and not self._is_listed(api, contract):
                raise UnknownSymbolError(
                    f"TqSdk does not know contract {contract.raw!r} (underlying of "
                    f"{entry.symbol.raw} on {entry.trading_day})"
                ) from None
            raise

    def _is_listed(self, api: Any, contract: Contract) -> bool:
        """Whether TqSdk's contract service lists ``contract`` (asked once per product, only
        after a contract lookup timed out). An empty answer proves nothing: assume listed."""
        key = (contract.exchange, contract.product)
        if key not in self._listed:
            found = api.query_quotes(
                ins_class="FUTURE", exchange_id=contract.exchange, product_id=contract.product
            )
            self._listed[key] = frozenset(str(s) for s in found)
        listed = self._listed[key]
        return not listed or contract.raw in listed

    # -- normalisation -----------------------------------------------------------------------

    def _normalize(
        self,
        raw: Any,
        entry: RollEntry,
        windows: list[SessionWindow],
        start_ns: int | None = None,
    ) -> tuple[pd.DataFrame, TickStats]:
        where = f"TqSdk get_tick_data_series({entry.underlying}) for {entry.symbol.raw} {entry.trading_day}"
        if not isinstance(raw, pd.DataFrame):
            raise MalformedInputError(f"{where} returned {type(raw).__name__}, not a DataFrame")
        exchange = entry.symbol.exchange
        five = exchange in FIVE_LEVEL_EXCHANGES
        span = tuple((w.start.isoformat(), w.end.isoformat(), w.kind) for w in windows)

        def stats(raw_rows: int, outside: int, l1: int, rows: int, depth: bool) -> TickStats:
            return TickStats(  # before_window counts rows tqsdk returned from before start_dt
                entry.symbol.raw,
                entry.trading_day.isoformat(),
                entry.underlying,
                raw_rows,
                outside,
                l1,
                rows,
                five,
                depth,
                span,
                before_window,
            )

        before_window = 0

        if raw.empty:  # TqSdk returns a frame without columns when the range has no ticks
            return empty_frame(TICKS), stats(0, 0, 0, 0, False)
        missing = [c for c in REQUIRED_TICK_COLUMNS if c not in raw.columns]
        if missing:
            raise MalformedInputError(
                f"{where}: columns {missing} missing (got {list(raw.columns)})"
            )
        try:
            ns = raw["datetime"].astype("int64")
        except (TypeError, ValueError) as exc:
            raise MalformedInputError(
                f"{where}: column 'datetime' is not int64 ns ({exc})"
            ) from None
        if start_ns is not None:
            # DataSeries starts the frame at the last cached tick at or before start_dt
            # (data_series.py:130): a stray row from before the requested window.
            early = (ns < start_ns).to_numpy()
            before_window = int(early.sum())
            if before_window:
                raw, ns = raw.loc[~early], ns[~early]
        ts = pd.to_datetime(ns, unit="ns", utc=True)
        # Sessions plus the opening-auction and closing prints next to them: the official
        # open and the day's final cumulative figures live there.
        in_session = sessions.in_session_mask(ts, windows) | sessions.boundary_mask(ts, windows)
        depth_columns = all(c in raw.columns for c in DEPTH_PRICE_COLUMNS)
        keep = in_session.copy()
        l1_only = 0
        if five and depth_columns:
            has_depth = (raw[list(DEPTH_PRICE_COLUMNS)].to_numpy(dtype="float64") > 0).any(axis=1)
            l1_mask = in_session & ~has_depth
            l1_only = int(l1_mask.sum())
            keep &= has_depth
            if in_session.any() and not keep.any():
                raise DaySkippedError(
                    entry.symbol,
                    entry.trading_day,
                    SkipReason.NO_L5,
                    f"{int(in_session.sum())} in-session ticks of {entry.underlying}, none with "
                    "book levels 2-5",
                )
        elif five:
            self._warn_once(
                f"depth:{exchange}",
                "%s: TqSdk returned no level 2-5 columns for %s (tqsdk's tick series keeps five "
                "levels for SHFE only); keeping level-1 rows",
                exchange,
                entry.underlying,
            )
        out = raw.loc[keep].drop(columns=["symbol", "duration"], errors="ignore").copy()
        _missing_levels_as_nan(out)
        out["datetime"] = ns[keep].to_numpy()
        out["ts"] = ts[keep].to_numpy()
        out["symbol"] = entry.symbol.raw
        out["underlying"] = entry.underlying
        out["source"] = self.name
        out["trading_day"] = entry.trading_day.isoformat()
        frame = conform(out.sort_values(["ts", "id"], kind="stable"), TICKS)
        outside = int((~in_session).sum())
        return frame, stats(len(raw), outside, l1_only, len(frame), depth_columns)

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, *args)


def _missing_levels_as_nan(frame: pd.DataFrame) -> None:
    """TqSdk sends a missing book level as volume 0.0 with price NaN (``DataSeries.
    _get_float_value`` turns the server's "-" into NaN); store it as NaN/NaN like every other
    source, so null rates and book checks see one representation of "no level"."""
    for level in range(1, 6):
        for side in ("bid", "ask"):
            price, volume = f"{side}_price{level}", f"{side}_volume{level}"
            if price in frame.columns and volume in frame.columns:
                frame.loc[frame[price].isna(), volume] = float("nan")


def _no_ticks_from(raw: Any, start_ns: int) -> bool:
    """Whether a tick frame holds no tick at or after ``start_ns``."""
    if not isinstance(raw, pd.DataFrame) or raw.empty:
        return isinstance(raw, pd.DataFrame)
    if "datetime" not in raw.columns:
        return False  # malformed: _normalize names what is missing
    try:
        return not bool((raw["datetime"].astype("int64") >= start_ns).any())
    except (TypeError, ValueError):
        return False


def _is_tq_timeout(exc: BaseException) -> bool:
    """``isinstance(exc, tqsdk.exceptions.TqTimeoutError)`` without importing tqsdk when it
    is not loaded (it is, whenever a TqApi raised)."""
    module = sys.modules.get("tqsdk.exceptions")
    cls = getattr(module, "TqTimeoutError", None) if module is not None else None
    return cls is not None and isinstance(exc, cls)


__all__ = [
    "ENV_PASSWORD",
    "ENV_USER",
    "AuthenticationError",
    "MissingCredentialsError",
    "SourceThreadError",
    "TickStats",
    "TqSdkSource",
    "default_api_factory",
    "schedule_hash",
]

"""A faithful stand-in for ``tqsdk.TqApi`` (3.10) so the TqSdk source is tested without network.

It mirrors what :mod:`ghtrader_assets.sources.tqsdk` relies on, as read from tqsdk's source,
*including how the library behaves once a backfill runs for a while* (issue 14):

* **Construction** (``TqApi.__init__``) creates an event loop first and logs in: no ``auth``
  raises ``Exception("请输入 auth ...")``, a rejected account ``"用户权限认证失败 (401,...)"``,
  the auth server failing ``"用户权限认证失败 (503,...)"``, the name service failing
  ``"调用名称服务失败: 502, ..."`` (``TqAuth``), a failed first connection
  ``TqTimeoutError("接收数据超时...")`` and, during the daily 19:00-19:30 window, the
  maintenance text (``connect.py:267``). **Maintenance is raised only here**: a disconnect
  during a data call surfaces as the call's ``TqTimeoutError`` after at least 30 s
  (scripted kind ``"disconnect"``; the fake clock advances 30 s). A failed construction
  **leaves its event loop open**, as TqApi does.
* ``get_tick_data_series`` follows ``_get_data_series`` and ``DataSeries``: the Pro check,
  ``_ensure_symbol`` (unknown contract: ``TqTimeoutError("获取 [...] 的合约信息超时...")``),
  a **blocking file lock** ``<CACHE_DIR>/.<SYMBOL>.0.lock`` held for the whole download
  (``tqsdk.data_series.CACHE_DIR`` resolved at call time, like the library), a download
  that takes ``market.download_seconds`` of real time, waited for in a loop of
  ``self.wait_update(deadline=time.time() + 30)`` whose deadline **restarts on every
  update**: with ``market.stall_downloads(quote_every=...)`` the server never answers but
  sends a quote every interval, so the call never ends by itself. The answer is **cached on
  disk** (232 bytes per SHFE tick, 104 elsewhere) and **retained in memory** by the
  instance (``Instance.retained_rows``). The frame starts with the **last tick before
  ``start_dt``** when there is one (``data_series.py:130``), a missing book level is
  **volume 0.0 with price NaN**, and under ``python -O`` (``market.python_optimize``) a
  failed download returns an **empty frame** instead of raising ``AssertionError``.
* ``query_his_cont_quotes`` follows ``TqContCalendar``: the table is read **once per
  process** (here: per market) and filled forward to the library's **weekday-only** current
  trading day, so today has a row even when the server has not published it.
  ``market.cont_table()`` is the raw ``continuous_table.json``; ``market.roll_fetcher`` serves
  it over "HTTP" to the source and records the timeout it was given.
* ``get_quote(symbol)`` waits for a market-data timestamp: a contract in
  ``market.no_md_timestamp`` (expired, the server sends none) costs 30 s and times out.
  ``query_symbol_info`` returns trading hours without waiting. ``query_quotes`` lists
  contracts. A missing market-data grant raises ``"您的账户不支持查看 ... 的行情数据..."``.
* After ``close()`` every call raises ``RuntimeError("Event loop is closed")``.

Failures are scripted per method (:meth:`FakeMarket.fail_next`), and every instance records
the process/thread that created, used and closed it. Only the download model uses real time
(short, test-chosen durations); TqSdk's other 30 s deadlines advance the fake clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import requests
from filelock import FileLock
from tqsdk import TqAuth
from tqsdk.data_series import DataSeries
from tqsdk.datetime import _convert_user_input_to_nano
from tqsdk.exceptions import TqTimeoutError

from ghtrader_assets import calendar
from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources.tqsdk_api import construct

#: TqSdk's published hours (quote.trading_time) for the products the tests use.
TRADING_TIME: dict[str, dict[str, list[list[str]]]] = {
    "SHFE.cu": {
        "day": [["09:00:00", "10:15:00"], ["10:30:00", "11:30:00"], ["13:30:00", "15:00:00"]],
        "night": [["21:00:00", "25:00:00"]],
    },
    "SHFE.au": {
        "day": [["09:00:00", "10:15:00"], ["10:30:00", "11:30:00"], ["13:30:00", "15:00:00"]],
        "night": [["21:00:00", "26:30:00"]],
    },
    "INE.sc": {
        "day": [["09:00:00", "10:15:00"], ["10:30:00", "11:30:00"], ["13:30:00", "15:00:00"]],
        "night": [["21:00:00", "26:30:00"]],
    },
    "DCE.m": {
        "day": [["09:00:00", "10:15:00"], ["10:30:00", "11:30:00"], ["13:30:00", "15:00:00"]],
        "night": [["21:00:00", "23:00:00"]],
    },
}

# The library's message texts (auth.py:138, auth.py:190-192, auth.py:213, connect.py:267).
AUTH_REJECTED = "用户权限认证失败 (401,{'error': 'invalid_grant', 'error_description': 'Invalid user credentials'})"
AUTH_UNAVAILABLE = "用户权限认证失败 (503,{'error': 'temporarily_unavailable', 'error_description': 'Service Unavailable'})"
NAME_SERVICE = "调用名称服务失败: 502, b'<html><head><title>502 Bad Gateway</title></head></html>'"
MAINTENANCE = "与 wss://api.shinnytech.com/t/nfmd/front/mobile 的连接失败，每日 19:00-19:30 为日常运维时间，请稍后再试"
NO_MD_GRANT = "您的账户不支持查看 {symbol} 的行情数据，需要购买后才能使用。升级网址：https://www.shinnytech.com/tqsdk-buy/"

#: Failure kinds only the constructor raises (the library raises them nowhere else).
CONSTRUCTION_ONLY = frozenset({"maintenance", "auth", "auth_unavailable", "name_service"})


class FakeClock:
    """A controllable clock: ``now()`` for sources and breakers, ``sleep()`` advances it."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start if start.tzinfo else start.replace(tzinfo=TZ)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += dt.timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


def _failure(kind: str | BaseException, method: str, detail: str) -> BaseException:
    """The exception TqSdk raises for a scripted failure ``kind``."""
    if isinstance(kind, BaseException):
        return kind
    if kind in ("timeout", "disconnect"):
        return TqTimeoutError(f"{method} 获取数据 ({detail}) 超时，请检查客户端及网络是否正常。")
    if kind == "connect_timeout":
        return TqTimeoutError("接收数据超时，请检查客户端及网络是否正常")
    if kind == "maintenance":
        return Exception(MAINTENANCE)
    if kind == "auth":
        return Exception(AUTH_REJECTED)
    if kind == "auth_unavailable":
        return Exception(AUTH_UNAVAILABLE)
    if kind == "name_service":
        return Exception(NAME_SERVICE)
    if kind == "http":
        return requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='files.shinnytech.com', port=443): Max retries exceeded"
        )
    if kind == "download":
        return AssertionError(f"下载 {detail} 的历史数据失败, 请检查日志")
    if kind == "bug":
        return KeyError("quotes")
    raise ValueError(f"unknown scripted failure kind {kind!r}")


@dataclass
class Instance:
    """What one FakeTqApi did: who created, used and closed it, and what it kept."""

    pid: int
    thread: int
    closed: bool = False
    closed_by: int | None = None
    loop_closed: bool = False
    calls: list[tuple[str, int]] = field(default_factory=list)
    retained_rows: int = 0  # downloaded ticks still held in memory (api._data)
    downloads: int = 0

    @property
    def threads(self) -> set[int]:
        return {self.thread} | {t for _, t in self.calls}


class FakeMarket:
    """The fake TqSdk service: accounts, contracts, ticks, main-contract history, failures."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        accounts: Mapping[str, str] | None = None,
        pro: bool = True,
    ) -> None:
        self.clock = clock
        self.accounts = dict(accounts or {"trader@example.com": "s3cret-Pa55"})
        self.pro = pro
        self.md_grant = True
        self.trading_time: dict[str, dict[str, list[list[str]]]] = {
            k: {p: [list(w) for w in ws] for p, ws in v.items()} for k, v in TRADING_TIME.items()
        }
        self.contracts: dict[str, pd.DataFrame] = {}
        self.rolls: dict[str, list[tuple[dt.date, str]]] = {}
        self.cont_lag_days = 0  # the main-contract table is this many trading days behind
        self.instances: list[Instance] = []
        self.calls: list[str] = []
        self.cross_thread_calls = 0
        self.tick_requests: list[tuple[str, Any, Any]] = []
        # Download model (real time): how long one download takes, and a stall.
        self.download_seconds = 0.0
        self.stalled = False
        self.quote_every: float | None = None
        self.library_deadline = 30.0  # tqsdk's per-wait deadline (restarted by every update)
        self.lock_waits: list[tuple[str, float, float, float]] = []  # symbol, asked, got, freed
        self.cache_bytes_written = 0
        self.python_optimize = bool(sys.flags.optimize)
        self.no_md_timestamp: set[str] = set()  # contracts whose quote never gets a datetime
        self.process_cont_table: dict[str, Any] | None = None  # TqContCalendar.continuous
        self.roll_fetches: list[tuple[str, float]] = []  # (url, timeout) of HTTP fetches
        self._failures: dict[str, list[str | BaseException]] = {}
        self._lock = threading.Lock()

    # -- scripting -------------------------------------------------------------------------

    def add_contract(self, symbol: str, ticks: pd.DataFrame | None = None) -> None:
        self.contracts[symbol] = ticks if ticks is not None else make_ticks(symbol, [])

    def set_rolls(self, main: str, switches: Mapping[dt.date, str]) -> None:
        """``main`` switches to each contract on the given trading day (forward-filled)."""
        self.rolls[main] = sorted(switches.items())
        for contract in switches.values():
            self.contracts.setdefault(contract, make_ticks(contract, []))

    def stall_downloads(self, quote_every: float | None = 0.01) -> None:
        """Downloads never get an answer; a quote update arrives every ``quote_every`` s."""
        self.stalled = True
        self.quote_every = quote_every

    def fail_next(
        self,
        method: str,
        kind: str = "timeout",
        times: int = 1,
        error: BaseException | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` ("__init__" for construction, "roll_table"
        for the HTTP table fetch) fail with the exception TqSdk raises for ``kind`` (see
        :func:`_failure`), or with ``error``. Construction-only kinds (maintenance, auth, name
        service) cannot be scripted on data calls: the library never raises them there."""
        if error is None and method not in ("__init__", "roll_table") and kind in CONSTRUCTION_ONLY:
            raise ValueError(
                f"tqsdk raises {kind!r} only while constructing TqApi, not from {method}; "
                "script it on '__init__' (a data call sees a 'disconnect')"
            )
        with self._lock:
            self._failures.setdefault(method, []).extend([error or kind] * times)

    def api_factory(self, user: str, password: str) -> FakeTqApi:
        """Drop-in for :func:`ghtrader_assets.sources.tqsdk.default_api_factory`."""
        return construct(FakeTqApi, auth=TqAuth(user, password), _market=self)

    # -- the main-contract table ------------------------------------------------------------

    def published_through(self) -> dt.date:
        """The last trading day the server's main-contract table has published."""
        days = calendar.trading_days(
            self.current_trading_day() - dt.timedelta(days=30), self.current_trading_day()
        )
        return days[len(days) - 1 - self.cont_lag_days]

    def cont_table(self) -> dict[str, list[list[str]]]:
        """``continuous_table.json`` as the server publishes it now: one row per trading day
        of each main symbol up to :meth:`published_through` (keys without ``KQ.m@``)."""
        last = self.published_through()
        out: dict[str, list[list[str]]] = {}
        for main, switches in self.rolls.items():
            first = switches[0][0]
            days = calendar.trading_days(first, last) if first <= last else []
            out[main[len("KQ.m@") :]] = [
                [d.strftime("%Y%m%d"), self.underlying_on(main, d)] for d in days
            ]
        return out

    def roll_fetcher(self, url: str, timeout: float) -> dict[str, list[list[str]]]:
        """The HTTP GET of the table, with the timeout the caller gave."""
        with self._lock:
            self.roll_fetches.append((url, timeout))
        failure = self._take_failure("roll_table")
        if failure is not None:
            raise _failure(failure, "roll_table", url)
        return self.cont_table()

    # -- internals used by FakeTqApi --------------------------------------------------------

    def _take_failure(self, method: str) -> str | BaseException | None:
        with self._lock:
            queue = self._failures.get(method)
            return queue.pop(0) if queue else None

    def _record(self, method: str) -> None:
        with self._lock:
            self.calls.append(method)

    def current_trading_day(self) -> dt.date:
        return calendar.trading_day_of(self.clock.now())

    def underlying_on(self, main: str, day: dt.date) -> str:
        current = ""
        for switch_day, contract in self.rolls.get(main, []):
            if switch_day <= day:
                current = contract
        return current

    def product_of(self, symbol: str) -> str:
        if symbol.startswith("KQ.m@"):
            return symbol[len("KQ.m@") :]
        exchange, code = symbol.split(".", 1)
        return f"{exchange}.{code.rstrip('0123456789')}"


class FakeTradingTime(dict):
    """``quote.trading_time``: a dict with ``day``/``night`` also readable as attributes."""

    @property
    def day(self) -> list[list[str]]:
        return self.get("day", [])

    @property
    def night(self) -> list[list[str]]:
        return self.get("night", [])


@dataclass
class FakeQuote:
    instrument_id: str
    exchange_id: str
    product_id: str
    ins_class: str
    underlying_symbol: str
    trading_time: FakeTradingTime
    price_tick: float = 1.0
    expired: bool = False
    datetime: str = ""


class FakeTqApi:
    """Mirrors the ``tqsdk.TqApi`` methods the source uses (signatures as in tqsdk 3.10)."""

    def __init__(
        self,
        account: Any = None,
        auth: TqAuth | str | None = None,
        url: str | None = None,
        backtest: Any = None,
        web_gui: bool | str = False,
        debug: bool | str | None = None,
        loop: Any = None,
        disable_print: bool = False,
        *,
        _market: FakeMarket,
    ) -> None:
        self._market = _market
        self._loop = asyncio.new_event_loop()  # created first, like BaseApi.__init__
        self._info = Instance(pid=os.getpid(), thread=threading.get_ident())
        self._pending_until = 0.0
        self._next_quote = 0.0
        with _market._lock:
            _market.instances.append(self._info)
        # Like TqApi: a failure below propagates with the loop left open.
        failure = _market._take_failure("__init__")
        if failure is not None:
            raise _failure(failure, "TqApi", "")
        if auth is None:
            raise Exception(
                "请输入 auth （快期账户）参数，快期账户是使用 tqsdk 的前提，如果没有请点击注册，"
                "注册地址：https://account.shinnytech.com/。"
            )
        user, password = (
            (auth._user_name, auth._password)
            if isinstance(auth, TqAuth)
            else tuple(auth.split(",", 1))
        )
        if _market.accounts.get(user) != password:
            raise Exception(AUTH_REJECTED)
        self._has_pro = _market.pro

    # -- plumbing --------------------------------------------------------------------------

    def _enter(self, method: str) -> None:
        if self._info.closed:
            raise RuntimeError("Event loop is closed")
        me = threading.get_ident()
        self._info.calls.append((method, me))
        if me != self._info.thread:
            self._market.cross_thread_calls += 1
        self._market._record(method)

    def _scripted(self, method: str, detail: str) -> None:
        failure = self._market._take_failure(method)
        if failure is not None:
            if failure == "disconnect":  # noticed only when tqsdk's 30 s deadline passes
                self._market.clock.advance(self._market.library_deadline)
            if failure == "download" and self._market.python_optimize:
                raise _EmptyUnderOptimize  # the bare `assert False` is stripped
            raise _failure(failure, method, detail)

    def _known(self, symbol: str) -> bool:
        return symbol in self._market.contracts or symbol in self._market.rolls

    def _grants(self, symbol: str) -> None:
        if not self._market.md_grant:
            raise Exception(NO_MD_GRANT.format(symbol=symbol))

    # -- TqApi methods ---------------------------------------------------------------------

    def wait_update(self, deadline: float | None = None, _task: Any = None) -> bool:
        """Returns ``True`` at the next update (the download finishing, or a quote while the
        market trades), ``False`` when ``deadline`` (``time.time()`` based) comes first."""
        if self._info.closed:
            raise RuntimeError("Event loop is closed")
        m = self._market
        now = time.time()
        events = [self._pending_until] if self._pending_until > now else []
        if m.quote_every:
            if self._next_quote <= now:
                self._next_quote = now + m.quote_every
            events.append(self._next_quote)
        nxt = min(events) if events else now
        if deadline is not None and deadline < nxt:
            time.sleep(max(0.0, deadline - now))
            return False
        if math.isinf(nxt):
            raise RuntimeError("fake wait_update would wait forever without a deadline")
        time.sleep(max(0.0, nxt - now))
        return True

    def get_tick_data_series(
        self,
        symbol: str | list[str],
        start_dt: dt.date | dt.datetime,
        end_dt: dt.date | dt.datetime,
        adj_type: str | None = None,
    ) -> pd.DataFrame:
        self._enter("get_tick_data_series")
        m = self._market
        if not self._has_pro:
            raise Exception(
                "get_tick_data_series 数据获取方式仅限专业版用户使用，如需购买专业版或者申请试用，"
                "请访问 https://www.shinnytech.com/tqsdk-buy/"
            )
        symbols = symbol if isinstance(symbol, list) else [symbol]
        if len(symbols) != 1:
            raise Exception("get_tick_data_series 数据获取方式暂不支持多合约请求")
        if not self._known(symbols[0]):
            raise TqTimeoutError(
                f"获取 {symbols} 的合约信息超时，请检查客户端及网络是否正常，且合约代码填写正确"
            )
        self._grants(symbols[0])
        m.tick_requests.append((symbols[0], start_dt, end_dt))
        start_ns, end_ns = _convert_user_input_to_nano(start_dt, end_dt)
        cache_dir = os.fspath(_cache_dir())
        os.makedirs(cache_dir, exist_ok=True)
        asked = time.time()
        with FileLock(os.path.join(cache_dir, f".{symbols[0]}.0.lock"), timeout=-1):
            got = time.time()  # the lock blocks the thread (and the event loop) until here
            try:
                self._download(symbols, start_dt, end_dt)
                df = self._answer(symbols[0], start_ns, end_ns, cache_dir)
            except _EmptyUnderOptimize:
                df = pd.DataFrame()
            finally:
                with m._lock:
                    m.lock_waits.append((symbols[0], asked, got, time.time()))
        return df

    def _download(self, symbols: list[str], start_dt: Any, end_dt: Any) -> None:
        """``_get_data_series``'s wait loop: a fresh 30 s deadline per ``wait_update``."""
        m = self._market
        self._pending_until = math.inf if m.stalled else time.time() + m.download_seconds
        try:
            while time.time() < self._pending_until:
                if not m.stalled and math.isinf(self._pending_until):  # the test released it
                    break
                deadline = time.time() + m.library_deadline
                if not self.wait_update(deadline=deadline, _task=None):
                    raise TqTimeoutError(
                        f"get_tick_data_series 获取数据 ({symbols, 0, start_dt, end_dt}) 超时，"
                        "请检查客户端及网络是否正常。"
                    )
        finally:
            self._pending_until = 0.0
        self._scripted("get_tick_data_series", f"({symbols}, 0, {start_dt}, {end_dt})")

    def _answer(self, symbol: str, start_ns: int, end_ns: int, cache_dir: str) -> pd.DataFrame:
        ticks = self._market.contracts[symbol]
        inside = (ticks["datetime"] >= start_ns) & (ticks["datetime"] <= end_ns)
        earlier = ticks["datetime"].where(ticks["datetime"] < start_ns)
        if earlier.notna().any():  # DataSeries starts at the last tick at or before start_dt
            inside.iloc[int(np.nanargmax(earlier.to_numpy(dtype="float64")))] = True
        rows = ticks[inside]
        if rows.empty:
            return pd.DataFrame()
        cols = DataSeries._get_data_cols(symbol, 0)
        df = pd.DataFrame()
        df["id"] = rows["id"].to_numpy(dtype="int64")
        df["datetime"] = rows["datetime"].to_numpy(dtype="int64")
        for col in cols:
            df[col] = rows[col].to_numpy(dtype="float64")
        for col in cols:  # a missing book level: the server sends price "-", volume 0
            if col.startswith(("bid_price", "ask_price")):
                df.loc[df[col].isna(), col.replace("_price", "_volume")] = 0.0
        df["symbol"] = symbol
        df["duration"] = 0
        self._cache(symbol, df, cols, cache_dir)
        self._info.retained_rows += len(df)  # api._data keeps every tick
        self._info.downloads += 1
        return df

    def _cache(self, symbol: str, df: pd.DataFrame, cols: list[str], cache_dir: str) -> None:
        """Write the rows as tqsdk does: ``<symbol>.0.<start_id>.<end_id>``, packed records."""
        dtype = np.dtype([("id", "i8"), ("datetime", "i8")] + [(c, "f8") for c in cols])
        records = np.empty(len(df), dtype=dtype)
        for name in dtype.names or ():
            records[name] = df[name].to_numpy()
        first, last = int(df["id"].iloc[0]), int(df["id"].iloc[-1])
        path = os.path.join(cache_dir, f"{symbol}.0.{first}.{last + 1}")
        records.tofile(path)
        with self._market._lock:
            self._market.cache_bytes_written += records.nbytes

    def query_his_cont_quotes(self, symbol: str | list[str], n: int = 200) -> pd.DataFrame:
        """``TqContCalendar``: the table once per process, filled forward to the library's
        weekday-only current trading day."""
        self._enter("query_his_cont_quotes")
        symbols = symbol if isinstance(symbol, list) else [symbol]
        if any(s == "" for s in symbols):
            raise Exception("参数错误，合约代码不能为空字符串")
        if n <= 0:
            raise Exception(f"参数错误，n={n} 应该是大于等于 1 的整数")
        self._scripted("query_his_cont_quotes", str(symbols))
        m = self._market
        if m.process_cont_table is None:
            m.process_cont_table = {f"KQ.m@{k}": v for k, v in m.cont_table().items()}
        table = m.process_cont_table
        if not all(s in table for s in symbols):
            raise Exception(f"参数错误，symbols={symbols} 中应该全部都是主连合约代码")
        end = _weekday_trading_day(m.clock.now())
        days = calendar.trading_days(end - dt.timedelta(days=n * 2 + 30), end)
        if end not in days:  # the library's day is weekday-only: holidays count
            days.append(end)
        days = days[-n:]
        df = pd.DataFrame({"date": pd.to_datetime(pd.Series(days, dtype="datetime64[ns]"))})
        for s in symbols:
            rows = sorted((dt.datetime.strptime(d, "%Y%m%d").date(), c) for d, c in table[s])
            col = []
            for d in days:
                current = ""
                for day, contract in rows:
                    if day <= d:
                        current = contract
                col.append(current)
            df[s] = col
        return df

    def get_quote(self, symbol: str) -> FakeQuote:
        self._enter("get_quote")
        if symbol == "":
            raise Exception("get_quote 中请求合约代码不能为空字符串")
        self._grants(symbol)
        if not self._known(symbol) or symbol in self._market.no_md_timestamp:
            # the quote never gets a market-data timestamp: tqsdk waits its 30 s
            self._market.clock.advance(self._market.library_deadline)
            raise TqTimeoutError(f"获取 {[symbol]} 的行情信息超时，请检查客户端及网络是否正常")
        self._scripted("get_quote", symbol)
        product = self._market.product_of(symbol)
        exchange, product_id = product.split(".")
        is_main = symbol.startswith("KQ.m@")
        tt = self._market.trading_time.get(product, {"day": [], "night": []})
        return FakeQuote(
            instrument_id=symbol,
            exchange_id="KQ" if is_main else exchange,
            product_id=product_id,
            ins_class="CONT" if is_main else "FUTURE",
            underlying_symbol=(
                self._market.underlying_on(symbol, self._market.current_trading_day())
                if is_main
                else ""
            ),
            trading_time=FakeTradingTime(tt),
        )

    def query_symbol_info(self, symbol: str | list[str]) -> pd.DataFrame:
        """Contract information without waiting for market data (``TqSymbolDataFrame``);
        an unknown symbol's row holds ``None``."""
        self._enter("query_symbol_info")
        symbols = [symbol] if isinstance(symbol, str) else list(symbol)
        if not symbols:
            raise Exception("symbol 参数不能为空列表。")
        if any(s == "" for s in symbols):
            raise Exception(f"symbol 参数 {symbol} 中不能有空字符串。")
        self._scripted("query_symbol_info", str(symbols))
        rows = []
        for s in symbols:
            tt = (
                self._market.trading_time.get(self._market.product_of(s))
                if self._known(s)
                else None
            )
            rows.append(
                {
                    "instrument_id": s,
                    "ins_class": "FUTURE" if self._known(s) else None,
                    # TqSymbolDataFrame._get_trading_time: a list of windows, None if empty
                    "trading_time_day": [list(w) for w in tt["day"]] if tt and tt["day"] else None,
                    "trading_time_night": (
                        [list(w) for w in tt["night"]] if tt and tt["night"] else None
                    ),
                }
            )
        return pd.DataFrame(rows)

    def query_quotes(
        self,
        ins_class: str | list[str] | None = None,
        exchange_id: str | list[str] | None = None,
        product_id: str | list[str] | None = None,
        expired: bool | None = None,
        has_night: bool | None = None,
    ) -> list[str]:
        self._enter("query_quotes")
        self._scripted("query_quotes", str((ins_class, exchange_id, product_id)))

        def ok(value: str, wanted: str | list[str] | None) -> bool:
            return wanted is None or value in ([wanted] if isinstance(wanted, str) else wanted)

        out = []
        for symbol in self._market.contracts:
            exchange, product_id_ = self._market.product_of(symbol).split(".")
            if (
                ok("FUTURE", ins_class)
                and ok(exchange, exchange_id)
                and ok(product_id_, product_id)
            ):
                out.append(symbol)
        return out

    def close(self) -> None:
        if not self._info.closed:
            self._info.closed = True
            self._info.closed_by = threading.get_ident()
            self._info.retained_rows = 0
        if not self._loop.is_closed():
            self._loop.close()
            self._info.loop_closed = True


class _EmptyUnderOptimize(Exception):
    """A failed download under ``python -O``: DataSeries swallows it, the frame stays empty."""


def _weekday_trading_day(now: dt.datetime) -> dt.date:
    """tqsdk's ``_get_trading_day_from_timestamp``: 18:00 starts the next day, a weekend
    moves to Monday, holidays are ignored."""
    local = now.astimezone(TZ)
    day = local.date() + dt.timedelta(days=1 if local.hour >= 18 else 0)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _cache_dir() -> Any:
    """``tqsdk.data_series.CACHE_DIR`` as the library reads it: at call time."""
    import tqsdk.data_series

    return tqsdk.data_series.CACHE_DIR


# -- tick frames ------------------------------------------------------------------------------

BOOK_SIDES = ("bid", "ask")


def make_ticks(
    symbol: str,
    times: Sequence[str | dt.datetime | pd.Timestamp],
    *,
    start_id: int = 1000,
    price: float = 70000.0,
    tick: float = 10.0,
    l1_only: Iterable[int] = (),
) -> pd.DataFrame:
    """The server-side tick table of ``symbol``: full five-level rows at naive Beijing
    ``times`` (in the order given), with level 2-5 fields NaN for the positions in
    ``l1_only``. ``FakeTqApi.get_tick_data_series`` projects it to the columns TqSdk returns."""
    n = len(times)
    local = pd.DatetimeIndex([pd.Timestamp(t) for t in times]) if n else pd.DatetimeIndex([])
    if n and local.tz is None:
        local = local.tz_localize(TZ)
    ns = local.tz_convert("UTC").as_unit("ns").asi8 if n else np.array([], dtype="int64")
    step = np.arange(n, dtype="float64")
    last = price + tick * (step % 5)
    df = pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + n, dtype="int64"),
            "datetime": ns.astype("int64"),
            "last_price": last,
            "highest": np.maximum.accumulate(last) if n else last,
            "lowest": np.minimum.accumulate(last) if n else last,
            "average": last - tick / 2,
            "volume": (step + 1) * 3,
            "amount": (step + 1) * 3 * price * 5,
            "open_interest": 100000.0 + step,
        }
    )
    for lvl in range(1, 6):
        df[f"bid_price{lvl}"] = last - tick * lvl
        df[f"bid_volume{lvl}"] = 10.0 * lvl
        df[f"ask_price{lvl}"] = last + tick * lvl
        df[f"ask_volume{lvl}"] = 11.0 * lvl
    rows = list(l1_only)
    if rows:
        depth = [
            f"{s}_{k}{lvl}" for lvl in range(2, 6) for s in BOOK_SIDES for k in ("price", "volume")
        ]
        df.loc[rows, depth] = np.nan
    return df


def local_times(ts: pd.Series) -> list[str]:
    """``ts`` (UTC) as ``YYYY-MM-DD HH:MM:SS`` Beijing wall-clock strings, for assertions."""
    return [t.strftime("%Y-%m-%d %H:%M:%S") for t in pd.DatetimeIndex(ts).tz_convert(TZ)]


def threads_run(n: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``n`` threads; return results, re-raising the first error."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return results

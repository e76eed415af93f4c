"""A faithful stand-in for ``tqsdk.TqApi`` (3.10) so the TqSdk source is tested without network.

It mirrors what :mod:`ghtrader_assets.sources.tqsdk` relies on, as read from tqsdk's source:

* ``TqApi(account=None, auth=..., ...)`` logs in during construction: no ``auth`` raises
  ``Exception("请输入 auth ...")``, a rejected account ``Exception("用户权限认证失败 (401,...)")``
  (``TqAuth.login``), a failed first connection ``TqTimeoutError("接收数据超时...")`` or,
  during the daily 19:00-19:30 window, ``Exception("... 每日 19:00-19:30 为日常运维时间...")``.
  A failed construction closes the instance, as TqApi does.
* ``get_tick_data_series(symbol, start_dt, end_dt, adj_type=None)``: the Pro permission check
  (``Exception("... 仅限专业版用户使用 ...")``), an unknown contract surfaces as
  ``TqTimeoutError("获取 [...] 的合约信息超时...")`` (``_ensure_symbol``), times are converted
  with tqsdk's own ``_convert_user_input_to_nano`` (naive = Beijing time, end inclusive), the
  columns are ``DataSeries``'s: ``id, datetime`` (int64), ``last_price, highest, lowest,
  average, volume, amount, open_interest`` and the book levels (float64; five levels only for
  SHFE, one for every other exchange, INE included), then ``symbol`` and ``duration``; no
  ticks gives ``pd.DataFrame()`` without columns.
* ``query_his_cont_quotes(symbol, n=200)``: ``date`` (datetime64[ns], naive) plus one column
  per main symbol with the underlying (``""`` before listing), the last ``n`` trading days up
  to the current one; an unknown main symbol raises ``Exception("参数错误，symbols=[...] 中应该
  全部都是主连合约代码")``.
* ``get_quote(symbol)`` with ``trading_time`` (``day``/``night`` lists, ends past 24:00 like
  ``"25:00:00"``) and ``underlying_symbol``; unknown symbols time out
  (``TqTimeoutError("获取 [...] 的行情信息超时...")``). ``query_quotes(...)`` lists contracts.
* After ``close()`` every call raises ``RuntimeError("Event loop is closed")``.

Failures are scripted per method (:meth:`FakeMarket.fail_next`), and every instance records
the process/thread that created, used and closed it, so tests can prove one TqApi per worker
and that ``close()`` ran on every path. Nothing sleeps: TqSdk's 30 s deadlines are reported,
not waited for.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import requests
from tqsdk import TqAuth
from tqsdk.data_series import DataSeries
from tqsdk.datetime import _convert_user_input_to_nano
from tqsdk.exceptions import TqTimeoutError

from ghtrader_assets import calendar
from ghtrader_assets.calendar import TZ

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

AUTH_REJECTED = "用户权限认证失败 (401,{'error': 'invalid_grant', 'error_description': 'Invalid user credentials'})"
MAINTENANCE = "与 wss://api.shinnytech.com/t/nfmd/front/mobile 的连接失败，每日 19:00-19:30 为日常运维时间，请稍后再试"


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
    if kind == "timeout":
        return TqTimeoutError(f"{method} 获取数据 ({detail}) 超时，请检查客户端及网络是否正常。")
    if kind == "connect_timeout":
        return TqTimeoutError("接收数据超时，请检查客户端及网络是否正常")
    if kind == "maintenance":
        return Exception(MAINTENANCE)
    if kind == "auth":
        return Exception(AUTH_REJECTED)
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
    """What one FakeTqApi did: who created, used and closed it."""

    pid: int
    thread: int
    closed: bool = False
    closed_by: int | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)

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
        self._failures: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    # -- scripting -------------------------------------------------------------------------

    def add_contract(self, symbol: str, ticks: pd.DataFrame | None = None) -> None:
        self.contracts[symbol] = ticks if ticks is not None else make_ticks(symbol, [])

    def set_rolls(self, main: str, switches: Mapping[dt.date, str]) -> None:
        """``main`` switches to each contract on the given trading day (forward-filled)."""
        self.rolls[main] = sorted(switches.items())
        for contract in switches.values():
            self.contracts.setdefault(contract, make_ticks(contract, []))

    def fail_next(
        self, method: str, kind: str = "timeout", times: int = 1, error: BaseException | None = None
    ) -> None:
        """The next ``times`` calls of ``method`` ("__init__" for construction) fail with the
        exception TqSdk raises for ``kind`` (see :func:`_failure`), or with ``error``."""
        with self._lock:
            self._failures.setdefault(method, []).extend([error or kind] * times)

    def api_factory(self, user: str, password: str) -> FakeTqApi:
        """Drop-in for :func:`ghtrader_assets.sources.tqsdk.default_api_factory`."""
        return FakeTqApi(auth=TqAuth(user, password), _market=self)

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
        self._info = Instance(pid=os.getpid(), thread=threading.get_ident())
        with _market._lock:
            _market.instances.append(self._info)
        try:
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
        except BaseException:
            self.close()  # TqApi closes itself when construction fails
            raise

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
            raise _failure(failure, method, detail)

    def _known(self, symbol: str) -> bool:
        return symbol in self._market.contracts or symbol in self._market.rolls

    # -- TqApi methods ---------------------------------------------------------------------

    def get_tick_data_series(
        self,
        symbol: str | list[str],
        start_dt: dt.date | dt.datetime,
        end_dt: dt.date | dt.datetime,
        adj_type: str | None = None,
    ) -> pd.DataFrame:
        self._enter("get_tick_data_series")
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
        self._scripted("get_tick_data_series", f"({symbols}, 0, {start_dt}, {end_dt})")
        self._market.tick_requests.append((symbols[0], start_dt, end_dt))
        start_ns, end_ns = _convert_user_input_to_nano(start_dt, end_dt)
        ticks = self._market.contracts[symbols[0]]
        rows = ticks[(ticks["datetime"] >= start_ns) & (ticks["datetime"] <= end_ns)]
        if rows.empty:
            return pd.DataFrame()
        df = pd.DataFrame()
        df["id"] = rows["id"].to_numpy(dtype="int64")
        df["datetime"] = rows["datetime"].to_numpy(dtype="int64")
        for col in DataSeries._get_data_cols(symbols[0], 0):
            df[col] = rows[col].to_numpy(dtype="float64")
        df["symbol"] = symbols[0]
        df["duration"] = 0
        return df

    def query_his_cont_quotes(self, symbol: str | list[str], n: int = 200) -> pd.DataFrame:
        self._enter("query_his_cont_quotes")
        symbols = symbol if isinstance(symbol, list) else [symbol]
        if any(s == "" for s in symbols):
            raise Exception("参数错误，合约代码不能为空字符串")
        if n <= 0:
            raise Exception(f"参数错误，n={n} 应该是大于等于 1 的整数")
        self._scripted("query_his_cont_quotes", str(symbols))
        if not all(s in self._market.rolls for s in symbols):
            raise Exception(f"参数错误，symbols={symbols} 中应该全部都是主连合约代码")
        end = self._market.current_trading_day()
        days = calendar.trading_days(end - dt.timedelta(days=n * 2 + 30), end)
        days = days[: len(days) - self._market.cont_lag_days][-n:]
        df = pd.DataFrame({"date": pd.to_datetime(pd.Series(days, dtype="datetime64[ns]"))})
        for s in symbols:
            df[s] = [self._market.underlying_on(s, d) for d in days]
        return df

    def get_quote(self, symbol: str) -> FakeQuote:
        self._enter("get_quote")
        if symbol == "":
            raise Exception("get_quote 中请求合约代码不能为空字符串")
        if not self._known(symbol):
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

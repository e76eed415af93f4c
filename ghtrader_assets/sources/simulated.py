"""A deterministic simulated market: real sessions and tick sizes, fake prices.

Why it exists: the demo must run with no account and no files, and the validation and
storage code need days whose defects are known exactly. Every row it produces is labelled
``source="simulated"``; nothing here is market data.

Determinism: a day's frame depends only on ``(seed, main symbol, trading day, cadence,
defects)``. The random generator is seeded from SHA-256 of ``"{seed}|{symbol}|{day}"``
(never Python's salted ``hash()``), so two processes, or two runs a year apart, produce the
same rows. Defects draw from their own generators, so enabling one never changes the clean
part of the day.

Model of a clean day (all vectorised with numpy):

* one tick every ``cadence_ms`` (500 ms: TqSdk's cadence) from the start of every session
  window of the day, as the product traded **on that day**
  (:func:`ghtrader_assets.sessions.session_windows`: a 2017 CZCE night ends at 23:30, a
  listing day has no night) to its exclusive end; a day before the product's listing is a
  ``not_listed`` skip (:class:`~ghtrader_assets.sources.skip_ledger.DaySkippedError`);
  ``SHFE.cu`` has 27,900 s of sessions, so 55,800 ticks;
* bid1 follows a random walk on the product's tick grid around ``typical_price`` (about 1 %
  daily range); the spread is 1 tick (2 ticks on 10 % of ticks); levels 2-5 step away by 1
  tick (2 on 15 %), so the bid ladder strictly falls and the ask ladder strictly rises; book
  volumes are positive; levels 2-5 are NaN for products that publish level 1 only;
* ``last_price`` is bid1 or ask1 (a trade at the touch), so it always lies in [bid1, ask1];
* ``volume`` is the cumulative sum of Poisson(4) lots per tick (at least 1 on the first tick),
  ``amount`` the cumulative sum of lots x last_price x multiplier, ``average`` = amount /
  (volume x multiplier) (the day's VWAP), ``highest``/``lowest`` the running max/min of
  ``last_price``. Volume and amount never fall within the day;
* ``open_interest`` is a non-negative random walk whose step on each tick is bounded by the
  lots traded on it (a trade opens or closes at most that many positions), so, as in real
  data, it moves both ways; the validator only reports its falls (``open_interest_decrease``);
* ``id`` is :func:`ghtrader_assets.sources.csv.synthetic_tick_ids` (a per-day sequence,
  monotone across days), ``datetime`` the ns epoch, ``ts`` UTC, ``symbol`` the main symbol,
  ``underlying`` the contract from :meth:`SimulatedSource.roll_entry`.

The roll schedule is a fixed rule, not history: the main contract is the first listed month
(:data:`ROLL_RULES`) at least ``lead`` months after the reference month, where the reference
month is the trading day's month, or the next month from the 15th on. CZCE contracts use 3
digits (``CZCE.SR605``), the others 4 (``SHFE.cu2602``).

Defects (``defects={name: params}``; ``True``, ``None`` or ``{}`` means the defaults in
:data:`DEFECT_DEFAULTS`). Each one is placed deterministically in its own stretch of the day,
at least two minutes away from session edges and from the other defects, and is built to
trip only its own validation rule (:mod:`ghtrader_assets.validation.rules`). What was
injected is returned by :meth:`SimulatedSource.simulate` and kept in
:attr:`SimulatedSource.last_injections` after :meth:`~SimulatedSource.ticks`:

``gap`` (seconds=45)
    Removes every tick of ``seconds`` consecutive seconds inside one session. The market is
    frozen during the hole (no price steps, no traded lots), so the ticks around it show no
    jump and no volume spike: only a gap of ``seconds`` + one cadence between two ticks.
``crossed_book`` (rows=5, ticks=1)
    On ``rows`` ticks sets bid_price1 = ask_price1 + ``ticks`` ticks (``ticks=0``: locked).
    bid1 only rises, so the bid ladder stays strictly falling and nothing becomes NaN.
``nan_prices`` (rows=5)
    On ``rows`` scattered ticks sets last_price, bid_price1 and ask_price1 to NaN.
``duplicates`` (rows=5)
    Inserts an exact copy (same ``id`` and ``ts``) right after each of ``rows`` ticks.
``out_of_session`` (rows=3)
    Inserts ``rows`` ticks one second apart in the middle of the longest break between two
    day windows (the lunch break; after the close if there is none), far from any session
    boundary. Each is a copy of the last tick before the break with a new time and id, so
    prices and cumulative fields do not move.
``ladder`` (rows=5)
    On ``rows`` ticks swaps bid_price2 and bid_price3 (bid ladder not strictly falling,
    bid1 and the ask side untouched). Five-level products only; on a level-1 product it is
    skipped and the injection records why.
``negative_volume`` (rows=5)
    Negates bid_volume1 on ``rows`` ticks.
``cumulative_decrease`` (lots=5)
    Sets ``volume`` on one tick to the previous tick's volume minus ``lots``; the next tick
    is back above, so exactly one row lies below an earlier value.
``price_jump`` (ticks=50)
    Shifts the whole market (book, last price, and so high/low/VWAP) up by ``ticks`` ticks
    from one tick on: a single jump of ``ticks`` ticks in last_price while the book stays
    consistent, against a calm tick-to-tick standard deviation below one tick.
``volume_spike`` (factor=50)
    One tick trades ``ceil(factor x median lots per tick)`` lots (median 4: 200 lots);
    amount and VWAP follow, open interest moves at most by those lots.
``spread_anomaly`` (rows=3, ticks=20)
    On ``rows`` scattered ticks widens the spread to ``ticks`` ticks symmetrically around
    the mid (bid side down, ask side up, ladders shifted with them, still bid1 < ask1);
    last_price is unchanged and stays inside the book, so neither last nor mid jumps.
``null_run`` (rows=150)
    Sets bid_price1 and ask_price1 to NaN on ``rows`` consecutive ticks of one session
    (a run of nulls; these NaNs necessarily also count in the null rate).
``sparse`` (share=0.4)
    Event-driven cadence: drops ``share`` of all ticks at random but at most one tick of
    each second (share <= 0.5), so no second is empty: the missing half-second share is
    large while there is no gap. Rows touched by other defects, and each window's first and
    last tick, are never dropped.
``empty_day`` (no parameters)
    The day has no ticks: an empty TICKS frame.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ghtrader_assets.calendar import is_trading_day
from ghtrader_assets.products import ProductSpec, UnknownProductError, product_spec
from ghtrader_assets.schema import TICKS, conform, empty_frame
from ghtrader_assets.sessions import SessionWindow, not_listed_reason, session_windows
from ghtrader_assets.sources.base import NoDataError, RollEntry, TickSource, UnknownSymbolError
from ghtrader_assets.sources.csv import synthetic_tick_ids
from ghtrader_assets.sources.skip_ledger import DaySkippedError, SkipReason
from ghtrader_assets.symbols import MainSymbol, parse_contract

SOURCE_NAME = "simulated"

DEFECTS: tuple[str, ...] = (
    "gap",
    "crossed_book",
    "nan_prices",
    "duplicates",
    "out_of_session",
    "ladder",
    "negative_volume",
    "cumulative_decrease",
    "price_jump",
    "volume_spike",
    "spread_anomaly",
    "null_run",
    "sparse",
    "empty_day",
)

#: Default parameters of each defect (see the module docstring for what they change).
DEFECT_DEFAULTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "gap": MappingProxyType({"seconds": 45}),
        "crossed_book": MappingProxyType({"rows": 5, "ticks": 1}),
        "nan_prices": MappingProxyType({"rows": 5}),
        "duplicates": MappingProxyType({"rows": 5}),
        "out_of_session": MappingProxyType({"rows": 3}),
        "ladder": MappingProxyType({"rows": 5}),
        "negative_volume": MappingProxyType({"rows": 5}),
        "cumulative_decrease": MappingProxyType({"lots": 5}),
        "price_jump": MappingProxyType({"ticks": 50}),
        "volume_spike": MappingProxyType({"factor": 50}),
        "spread_anomaly": MappingProxyType({"rows": 3, "ticks": 20}),
        "null_run": MappingProxyType({"rows": 150}),
        "sparse": MappingProxyType({"share": 0.4}),
        "empty_day": MappingProxyType({}),
    }
)

#: ``True``/``None``/``{}`` for the defaults, a mapping to override some, ``False`` to disable.
DefectSpec = Mapping[str, float] | bool | None

_ALL_MONTHS = tuple(range(1, 13))
#: Listed months whose contracts become main, and how many months ahead main trades.
ROLL_RULES: Mapping[str, tuple[tuple[int, ...], int]] = MappingProxyType(
    {
        "cu": (_ALL_MONTHS, 1),
        "al": (_ALL_MONTHS, 1),
        "zn": (_ALL_MONTHS, 1),
        "au": ((6, 12), 1),
        "ag": ((6, 12), 1),
        "rb": ((1, 5, 10), 2),
        "ru": ((1, 5, 9), 2),
        "sc": (_ALL_MONTHS, 2),
        "m": ((1, 5, 9), 2),
        "i": ((1, 5, 9), 2),
        "SR": ((1, 5, 9), 2),
        "MA": ((1, 5, 9), 2),
        "si": ((1, 5, 9), 2),
        "IF": (_ALL_MONTHS, 0),
    }
)
#: Day of the month from which the reference month is the next month.
ROLL_DAY = 15

# Market model constants (see the module docstring).
_DAILY_RANGE = 0.012  # random-walk scale as a share of price over a day
_WIDE_SPREAD_P = 0.10  # share of ticks with a 2-tick spread
_LEVEL_GAP_P = 0.15  # share of level-to-level steps of 2 ticks
_LOTS_PER_TICK = 4.0  # Poisson mean of lots traded per tick
_EDGE_SECONDS = 120  # defects stay this far from session edges


@dataclass(frozen=True)
class Injection:
    """What one defect changed.

    ``ts`` holds the UTC times of the affected rows as they appear in the frame; for
    ``gap`` and ``sparse`` (rows removed) it holds the times of the removed ticks instead.
    ``columns`` names the columns whose values were changed; ``detail`` carries figures
    such as the gap bounds or the spike size.
    """

    name: str
    params: Mapping[str, float]
    ts: pd.DatetimeIndex
    columns: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulatedDay:
    """A simulated symbol-day and the defects injected into it."""

    entry: RollEntry
    frame: pd.DataFrame
    injections: Mapping[str, Injection]


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from SHA-256 of ``"|".join(parts)``: same on every run and process."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def normalize_defects(defects: Mapping[str, DefectSpec] | None) -> dict[str, dict[str, float]]:
    """Validate ``defects`` and merge each with its defaults; raise ``ValueError`` naming
    an unknown defect or parameter."""
    out: dict[str, dict[str, float]] = {}
    for name, spec in (defects or {}).items():
        if name not in DEFECT_DEFAULTS:
            raise ValueError(f"unknown simulated defect {name!r}; known defects: {DEFECTS}")
        if spec is False:
            continue
        params = dict(DEFECT_DEFAULTS[name])
        if spec is not True and spec is not None:
            if not isinstance(spec, Mapping):
                raise ValueError(
                    f"defect {name!r}: expected True or a mapping of parameters, got {spec!r}"
                )
            unknown = set(spec) - set(params)
            if unknown:
                raise ValueError(
                    f"defect {name!r}: unknown parameter(s) {sorted(unknown)}; "
                    f"accepted: {sorted(params) or 'none'}"
                )
            params.update(spec)
        for key, value in params.items():
            low = 0 if (name, key) == ("crossed_book", "ticks") else 1
            if key == "share":
                if not 0 < float(value) <= 0.5:
                    raise ValueError(f"defect {name!r}: share must be in (0, 0.5], got {value!r}")
            elif float(value) < low:
                raise ValueError(f"defect {name!r}: {key} must be >= {low}, got {value!r}")
        out[name] = params
    return out


def main_contract(exchange: str, product: str, trading_day: dt.date) -> str:
    """The simulator's main contract of ``exchange.product`` on ``trading_day``."""
    months, lead = ROLL_RULES.get(product, (_ALL_MONTHS, 1))
    ref = trading_day.year * 12 + trading_day.month - 1 + (trading_day.day >= ROLL_DAY)
    m = ref + lead
    while m % 12 + 1 not in months:
        m += 1
    year, month = divmod(m, 12)
    code = (
        f"{year % 10}{month + 1:02d}" if exchange == "CZCE" else f"{year % 100:02d}{month + 1:02d}"
    )
    return f"{exchange}.{product}{code}"


def _decimals(tick_size: float) -> int:
    return max(0, -int(Decimal(str(tick_size)).as_tuple().exponent))


class _Grid:
    """Tick times of a day: one per cadence through every session window."""

    def __init__(self, windows: list[SessionWindow], cadence_ns: int) -> None:
        self.windows = windows
        self.cadence_ns = cadence_ns
        self.starts = np.array([w.start.as_unit("ns").value for w in windows], dtype=np.int64)
        self.ends = np.array([w.end.as_unit("ns").value for w in windows], dtype=np.int64)
        self.counts = (self.ends - self.starts) // cadence_ns
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        n = int(self.counts.sum())
        self.n = n
        self.window_id = np.repeat(np.arange(len(windows)), self.counts)
        self.pos = np.arange(n, dtype=np.int64) - np.repeat(self.offsets, self.counts)
        self.datetime = self.starts[self.window_id] + self.pos * cadence_ns
        self.first_rows = self.offsets
        self.last_rows = self.offsets + self.counts - 1


class SimulatedSource(TickSource):
    """Deterministic simulated ticks for any product in :mod:`ghtrader_assets.products`.

    ``seed`` selects the market, ``defects`` injects known faults (module docstring),
    ``cadence_ms`` is the tick spacing (TqSdk: 500 ms).
    """

    name = SOURCE_NAME

    def __init__(
        self,
        seed: int = 0,
        defects: Mapping[str, DefectSpec] | None = None,
        cadence_ms: int = 500,
    ) -> None:
        if int(cadence_ms) <= 0:
            raise ValueError(f"cadence_ms must be a positive number of milliseconds: {cadence_ms}")
        self.seed = int(seed)
        self.cadence_ms = int(cadence_ms)
        self.defects = normalize_defects(defects)
        self.last_injections: Mapping[str, Injection] = MappingProxyType({})

    # -- roll schedule -------------------------------------------------------------------

    def _spec(self, symbol: MainSymbol) -> ProductSpec:
        try:
            return product_spec(symbol.exchange, symbol.product)
        except UnknownProductError as exc:
            raise UnknownSymbolError(
                f"{symbol.raw}: the simulator does not know it ({exc})"
            ) from None

    def _require_listed(self, symbol: MainSymbol, trading_day: dt.date) -> None:
        """A day before the product's listing (or while delisted) has no market to simulate:
        a skip with reason ``not_listed``, as a real provider would report it."""
        reason = not_listed_reason(symbol.exchange, symbol.product, trading_day)
        if reason is not None:
            raise DaySkippedError(symbol, trading_day, SkipReason.NOT_LISTED, reason)

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        self._spec(symbol)
        if not is_trading_day(trading_day):
            raise NoDataError(
                f"{symbol.raw}: {trading_day} is not a trading day; no simulated data"
            )
        self._require_listed(symbol, trading_day)
        underlying = main_contract(symbol.exchange, symbol.product, trading_day)
        return RollEntry(symbol, trading_day, underlying, self.name)

    # -- ticks ---------------------------------------------------------------------------

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        day = self.simulate(entry)
        self.last_injections = day.injections
        return day.frame

    def simulate(self, entry: RollEntry) -> SimulatedDay:
        """The day's frame (conformed to TICKS) and the defects injected into it."""
        symbol, day = entry.symbol, entry.trading_day
        spec = self._spec(symbol)
        contract = parse_contract(entry.underlying)
        if (contract.exchange, contract.product) != (symbol.exchange, symbol.product):
            raise UnknownSymbolError(
                f"{symbol.raw}: underlying {entry.underlying} is a contract of another product"
            )
        if not is_trading_day(day):
            raise NoDataError(f"{symbol.raw}: {day} is not a trading day; no simulated data")
        self._require_listed(symbol, day)
        if "empty_day" in self.defects:
            inj = Injection("empty_day", {}, pd.DatetimeIndex([], tz="UTC"), (), {})
            return SimulatedDay(entry, empty_frame(TICKS), MappingProxyType({"empty_day": inj}))
        grid = _Grid(session_windows(symbol.exchange, symbol.product, day), self.cadence_ms * 10**6)
        if grid.n == 0:
            return SimulatedDay(entry, empty_frame(TICKS), MappingProxyType({}))
        builder = _DayBuilder(self.seed, entry, spec, grid, self.defects)
        frame, injections = builder.build()
        return SimulatedDay(entry, frame, MappingProxyType(injections))


class _DayBuilder:
    """Builds one day: base draws, path-level defects, columns, row-level defects."""

    def __init__(
        self,
        seed: int,
        entry: RollEntry,
        spec: ProductSpec,
        grid: _Grid,
        defects: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.seed = seed
        self.entry = entry
        self.spec = spec
        self.grid = grid
        self.defects = defects
        self.key = (seed, entry.symbol.raw, entry.trading_day.isoformat())
        self.levels = 5 if spec.five_levels else 1
        self.decimals = _decimals(spec.tick_size)
        self.keep = np.ones(grid.n, dtype=bool)
        self.touched: dict[str, np.ndarray] = {}
        self.injections: dict[str, Injection] = {}
        self.duplicate_rows = np.zeros(0, dtype=np.int64)
        edge = max(1, math.ceil(_EDGE_SECONDS * 1000 / (grid.cadence_ns // 10**6)))
        inner = (grid.pos >= edge) & (grid.pos < grid.counts[grid.window_id] - edge)
        self.chunks = np.array_split(np.flatnonzero(inner), len(DEFECTS))

    # -- helpers -------------------------------------------------------------------------

    def _rng(self, *extra: str) -> np.random.Generator:
        return np.random.default_rng(stable_seed(*self.key, *extra))

    def _price(self, ticks: np.ndarray) -> np.ndarray:
        return np.round(ticks * self.spec.tick_size, self.decimals)

    def _ts(self, datetime_ns: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(np.asarray(datetime_ns, dtype="datetime64[ns]")).tz_localize("UTC")

    def _chunk(self, name: str) -> np.ndarray:
        chunk = self.chunks[DEFECTS.index(name)]
        if len(chunk) < 8:
            raise ValueError(
                f"simulated defect {name!r}: {self.entry.symbol.raw} {self.entry.trading_day} "
                "has too few ticks to place it"
            )
        return chunk

    def _scattered(self, name: str, k: int) -> np.ndarray:
        """``k`` distinct rows inside the defect's stretch, at least 2 rows apart."""
        chunk = self._chunk(name)[2:-2:3]
        if k > len(chunk):
            raise ValueError(f"simulated defect {name!r}: rows={k} does not fit in the day")
        rows = np.sort(self._rng(name).choice(chunk, size=k, replace=False))
        self.touched[name] = rows
        return rows

    def _run(self, name: str, length: int) -> np.ndarray:
        """``length`` consecutive rows of one window, centred in the defect's stretch."""
        chunk = self._chunk(name)
        wid = self.grid.window_id[chunk]
        cuts = np.flatnonzero(np.diff(wid)) + 1
        longest = max(np.split(chunk, cuts), key=len)
        if length + 4 > len(longest):
            raise ValueError(
                f"simulated defect {name!r}: {length} consecutive ticks do not fit in one "
                f"session stretch of {self.entry.symbol.raw} {self.entry.trading_day}"
            )
        start = longest[(len(longest) - length) // 2]
        rows = np.arange(start, start + length)
        self.touched[name] = rows
        return rows

    def _record(self, name: str, rows_ts: pd.DatetimeIndex, columns: tuple[str, ...], **detail):
        self.injections[name] = Injection(
            name, MappingProxyType(dict(self.defects[name])), rows_ts, columns, detail
        )

    # -- the day -------------------------------------------------------------------------

    def build(self) -> tuple[pd.DataFrame, dict[str, Injection]]:
        spec, grid, n, d = self.spec, self.grid, self.grid.n, self.defects
        rng = self._rng()
        # Base draws, always in the same order, so defects never change the clean day.
        tick = spec.tick_size
        p_move = float(np.clip((_DAILY_RANGE * spec.typical_price / tick) ** 2 / n, 0.01, 0.5))
        u = rng.random(n)
        step = np.where(u < p_move / 2, -1, np.where(u > 1 - p_move / 2, 1, 0)).astype(np.int64)
        p0 = int(round(spec.typical_price * math.exp(rng.normal(0.0, 0.03)) / tick))
        spread = 1 + (rng.random(n) < _WIDE_SPREAD_P).astype(np.int64)
        bid_gaps = 1 + (rng.random((n, 4)) < _LEVEL_GAP_P).astype(np.int64)
        ask_gaps = 1 + (rng.random((n, 4)) < _LEVEL_GAP_P).astype(np.int64)
        book_volumes = rng.integers(1, 150, size=(n, 10)).astype(np.float64)
        at_ask = rng.random(n) < 0.5
        lots = rng.poisson(_LOTS_PER_TICK, n).astype(np.int64)
        lots[0] = max(int(lots[0]), 1)
        typical_lots = max(float(np.median(lots)), 1.0)
        oi0 = int(rng.integers(80_000, 300_000))
        oi_u = rng.random(n)

        # Path-level defects: they change the market itself, before columns are derived.
        if "gap" in d:
            rows = self._run("gap", int(round(d["gap"]["seconds"] * 1e9 / grid.cadence_ns)))
            step[rows] = 0
            lots[rows] = 0
            self.keep[rows] = False
            self._record(
                "gap",
                self._ts(grid.datetime[rows]),
                (),
                start=self._ts(grid.datetime[rows[:1]])[0],
                end=self._ts(grid.datetime[rows[-1:]] + grid.cadence_ns)[0],
                seconds=float(d["gap"]["seconds"]),
                rows_removed=len(rows),
            )
        if "price_jump" in d:
            (j,) = self._scattered("price_jump", 1)
            step[j] += int(d["price_jump"]["ticks"])
            size = round(int(d["price_jump"]["ticks"]) * tick, self.decimals)
            self._record(
                "price_jump",
                self._ts(grid.datetime[[j]]),
                ("last_price", "bid/ask prices"),
                ticks=int(d["price_jump"]["ticks"]),
                size=size,
            )
        if "volume_spike" in d:
            (j,) = self._scattered("volume_spike", 1)
            typical = typical_lots
            spike = math.ceil(float(d["volume_spike"]["factor"]) * typical)
            lots[j] = spike
            self._record(
                "volume_spike",
                self._ts(grid.datetime[[j]]),
                ("volume", "amount", "average", "open_interest"),
                lots=spike,
                typical_lots=typical,
            )

        bid1 = np.maximum(p0 + np.cumsum(step), 20)
        ask1 = bid1 + spread
        last_t = np.where(at_ask, ask1, bid1)
        if "spread_anomaly" in d:
            rows = self._scattered("spread_anomaly", int(d["spread_anomaly"]["rows"]))
            widen = np.maximum(int(d["spread_anomaly"]["ticks"]) - spread[rows], 0)
            bid1[rows] -= widen // 2
            ask1[rows] += widen - widen // 2
            self._record(
                "spread_anomaly",
                self._ts(grid.datetime[rows]),
                ("bid/ask prices",),
                ticks=int(d["spread_anomaly"]["ticks"]),
            )

        cols = self._columns(bid1, ask1, bid_gaps, ask_gaps, book_volumes, last_t, lots, oi0, oi_u)
        self._row_defects(cols)
        if "duplicates" in d:
            self.duplicate_rows = self._scattered("duplicates", int(d["duplicates"]["rows"]))
        if "sparse" in d:
            self._sparse(float(d["sparse"]["share"]))
        return self._assemble(cols), self.injections

    def _columns(
        self,
        bid1: np.ndarray,
        ask1: np.ndarray,
        bid_gaps: np.ndarray,
        ask_gaps: np.ndarray,
        book_volumes: np.ndarray,
        last_t: np.ndarray,
        lots: np.ndarray,
        oi0: int,
        oi_u: np.ndarray,
    ) -> dict[str, np.ndarray]:
        spec = self.spec
        zeros = np.zeros((len(bid1), 1), dtype=np.int64)
        bid_t = bid1[:, None] - np.hstack([zeros, np.cumsum(bid_gaps, axis=1)])
        ask_t = ask1[:, None] + np.hstack([zeros, np.cumsum(ask_gaps, axis=1)])
        last = self._price(last_t)
        volume = np.cumsum(lots).astype(np.float64)
        amount = np.cumsum(lots * last * spec.multiplier)
        highest = np.maximum.accumulate(last)
        lowest = np.minimum.accumulate(last)
        # VWAP lies within [lowest, highest]; the clip only removes float rounding dust.
        average = np.clip(amount / (volume * spec.multiplier), lowest, highest)
        oi_step = np.floor(oi_u * (2 * lots + 1)).astype(np.int64) - lots
        open_interest = np.maximum(oi0 + np.cumsum(oi_step), 0).astype(np.float64)
        cols: dict[str, np.ndarray] = {
            "last_price": last,
            "highest": highest,
            "lowest": lowest,
            "average": average,
            "volume": volume,
            "amount": amount,
            "open_interest": open_interest,
        }
        for lvl in range(1, self.levels + 1):
            cols[f"bid_price{lvl}"] = self._price(bid_t[:, lvl - 1])
            cols[f"bid_volume{lvl}"] = book_volumes[:, 2 * (lvl - 1)]
            cols[f"ask_price{lvl}"] = self._price(ask_t[:, lvl - 1])
            cols[f"ask_volume{lvl}"] = book_volumes[:, 2 * (lvl - 1) + 1]
        return cols

    def _row_defects(self, cols: dict[str, np.ndarray]) -> None:
        """Defects that corrupt values of chosen rows, leaving the market untouched."""
        d, dts, tick = self.defects, self.grid.datetime, self.spec.tick_size
        if "crossed_book" in d:
            rows = self._scattered("crossed_book", int(d["crossed_book"]["rows"]))
            cross = int(d["crossed_book"]["ticks"])
            cols["bid_price1"][rows] = np.round(
                cols["ask_price1"][rows] + cross * tick, self.decimals
            )
            self._record("crossed_book", self._ts(dts[rows]), ("bid_price1",), ticks=cross)
        if "nan_prices" in d:
            rows = self._scattered("nan_prices", int(d["nan_prices"]["rows"]))
            for c in ("last_price", "bid_price1", "ask_price1"):
                cols[c][rows] = np.nan
            self._record(
                "nan_prices", self._ts(dts[rows]), ("last_price", "bid_price1", "ask_price1")
            )
        if "ladder" in d:
            if self.levels < 5:
                reason = f"{self.entry.symbol.raw} publishes level 1 only; no ladder to break"
                self._record("ladder", self._ts(dts[:0]), (), skipped=reason)
            else:
                rows = self._scattered("ladder", int(d["ladder"]["rows"]))
                b2, b3 = cols["bid_price2"][rows].copy(), cols["bid_price3"][rows].copy()
                cols["bid_price2"][rows], cols["bid_price3"][rows] = b3, b2
                self._record("ladder", self._ts(dts[rows]), ("bid_price2", "bid_price3"))
        if "negative_volume" in d:
            rows = self._scattered("negative_volume", int(d["negative_volume"]["rows"]))
            cols["bid_volume1"][rows] *= -1
            self._record("negative_volume", self._ts(dts[rows]), ("bid_volume1",))
        if "cumulative_decrease" in d:
            (j,) = self._scattered("cumulative_decrease", 1)
            lots = int(d["cumulative_decrease"]["lots"])
            cols["volume"][j] = max(cols["volume"][j - 1] - lots, 0.0)
            self._record("cumulative_decrease", self._ts(dts[[j]]), ("volume",), lots=lots)
        if "null_run" in d:
            rows = self._run("null_run", int(d["null_run"]["rows"]))
            cols["bid_price1"][rows] = np.nan
            cols["ask_price1"][rows] = np.nan
            self._record("null_run", self._ts(dts[rows]), ("bid_price1", "ask_price1"))

    def _sparse(self, share: float) -> None:
        """Drop ``share`` of all ticks, at most one per second, never a protected row."""
        grid = self.grid
        per_second = 10**9 // grid.cadence_ns
        if per_second < 2:
            raise ValueError("simulated defect 'sparse' needs a cadence below 1000 ms")
        protected = ~self.keep
        protected[grid.first_rows] = True
        protected[grid.last_rows] = True
        # Defect rows and their neighbours stay, so each defect is seen as injected.
        for rows in self.touched.values():
            for shift in (-1, 0, 1):
                protected[rows + shift] = True
        second = grid.window_id.astype(np.int64) * 10**7 + (grid.pos // per_second)
        _, group, sizes = np.unique(second, return_inverse=True, return_counts=True)
        group_protected = np.bincount(group, weights=protected, minlength=len(sizes)) > 0
        eligible = np.flatnonzero(~group_protected & (sizes >= 2))
        want = min(int(round(share * grid.n)), len(eligible))
        rng = self._rng("sparse")
        groups = rng.choice(eligible, size=want, replace=False)
        first_row = np.searchsorted(second, np.unique(second))  # rows are sorted by second
        pick = first_row[groups] + (rng.random(want) * sizes[groups]).astype(np.int64)
        pick.sort()
        self.keep[pick] = False
        self._record(
            "sparse",
            self._ts(grid.datetime[pick]),
            (),
            share_dropped=want / grid.n,
            rows_removed=want,
        )

    def _out_of_session(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(stamps, source rows) for ``count`` ticks in the longest break between day windows."""
        grid, windows = self.grid, self.grid.windows
        breaks = [
            (int(grid.starts[i + 1] - grid.ends[i]), i)
            for i in range(len(windows) - 1)
            if windows[i].kind == "day" and windows[i + 1].kind == "day"
        ]
        second = 10**9
        if breaks:
            length, i = max(breaks)
            base = int(grid.ends[i]) + (length // 2) // second * second
        else:
            i = len(windows) - 1
            base = int(grid.ends[i]) + 60 * second
        stamps = base + np.arange(count, dtype=np.int64) * second
        return stamps, np.full(count, grid.last_rows[i])

    def _assemble(self, cols: dict[str, np.ndarray]) -> pd.DataFrame:
        grid, d, entry = self.grid, self.defects, self.entry
        src = np.flatnonzero(self.keep)
        datetime_ns = grid.datetime[src]
        if "out_of_session" in d:
            stamps, rows = self._out_of_session(int(d["out_of_session"]["rows"]))
            at = np.searchsorted(datetime_ns, stamps)
            src = np.insert(src, at, rows)
            datetime_ns = np.insert(datetime_ns, at, stamps)
            self._record(
                "out_of_session",
                self._ts(stamps),
                (),
                copied_from=self._ts(grid.datetime[rows[:1]])[0],
            )
        ids = synthetic_tick_ids(entry.trading_day, len(src))
        take = np.arange(len(src))
        if "duplicates" in d:
            rows = self.duplicate_rows
            at = np.searchsorted(src, rows)  # interior rows sparse never drops: unique in src
            take = np.insert(take, at + 1, at)
            self._record("duplicates", self._ts(grid.datetime[rows]), ())
        final = src[take]
        datetime_ns = datetime_ns[take]
        data: dict[str, Any] = {
            "symbol": entry.symbol.raw,
            "trading_day": entry.trading_day.isoformat(),
            "ts": self._ts(datetime_ns),
            "datetime": datetime_ns,
            "id": ids[take],
            "underlying": entry.underlying,
            "source": SOURCE_NAME,
        }
        for name, values in cols.items():
            data[name] = values[final]
        return conform(pd.DataFrame(data), TICKS)

"""Contract facts per futures product: tick size, multiplier, book depth and trading hours.

Sessions, validation and the simulator all need the same facts, so they live in one table.
Values are the exchanges' current contract specifications (trading hours as published by each
exchange and as TqSdk reports them in ``quote.trading_time``). Historic changes of hours (e.g.
SHFE rb/ru night ending 01:00 until 2016-05, DCE/CZCE nights ending 23:30 until 2019) are not
modelled; the suspension of night trading in 2020 is an event in :mod:`ghtrader_assets.sessions`.

``typical_price`` is only a realistic level for the simulator, not market data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ghtrader_assets.symbols import MainSymbol

Session = tuple[dt.time, dt.time]

#: Exchanges that publish five book levels; the others publish level 1 only.
FIVE_LEVEL_EXCHANGES = frozenset({"SHFE", "INE"})


def _t(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def _s(start: str, end: str) -> Session:
    return (_t(start), _t(end))


# Commodity day hours shared by SHFE, INE, DCE, CZCE and GFEX (15-minute break at 10:15).
COMMODITY_DAY: tuple[Session, ...] = (
    _s("09:00", "10:15"),
    _s("10:30", "11:30"),
    _s("13:30", "15:00"),
)
# CFFEX stock-index futures: no 10:15 break, lunch 11:30-13:00, no night.
CFFEX_INDEX_DAY: tuple[Session, ...] = (_s("09:30", "11:30"), _s("13:00", "15:00"))
NIGHT_2300 = _s("21:00", "23:00")
NIGHT_0100 = _s("21:00", "01:00")
NIGHT_0230 = _s("21:00", "02:30")


class UnknownProductError(KeyError):
    """No facts are recorded for this exchange/product."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ProductSpec:
    """Facts about one product. ``night_session`` ends past midnight when ``end < start``."""

    exchange: str
    product: str
    name: str
    tick_size: float
    multiplier: int
    five_levels: bool
    day_sessions: tuple[Session, ...]
    night_session: Session | None
    typical_price: float

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.multiplier <= 0 or self.typical_price <= 0:
            raise ValueError(f"{self.exchange}.{self.product}: sizes and prices must be > 0")
        if not self.day_sessions:
            raise ValueError(f"{self.exchange}.{self.product}: no day session")
        for start, end in self.day_sessions:
            if not start < end:
                raise ValueError(f"{self.exchange}.{self.product}: day session {start}-{end}")
        if self.night_session is not None and self.night_session[0] == self.night_session[1]:
            raise ValueError(f"{self.exchange}.{self.product}: empty night session")

    @property
    def symbol(self) -> MainSymbol:
        return MainSymbol(self.exchange, self.product)

    @property
    def night_crosses_midnight(self) -> bool:
        return self.night_session is not None and self.night_session[1] < self.night_session[0]


def _spec(
    exchange: str,
    product: str,
    name: str,
    tick_size: float,
    multiplier: int,
    night: Session | None,
    typical_price: float,
    day: tuple[Session, ...] = COMMODITY_DAY,
) -> ProductSpec:
    return ProductSpec(
        exchange=exchange,
        product=product,
        name=name,
        tick_size=tick_size,
        multiplier=multiplier,
        five_levels=exchange in FIVE_LEVEL_EXCHANGES,
        day_sessions=day,
        night_session=night,
        typical_price=typical_price,
    )


_SPECS = (
    # SHFE: base metals night to 01:00, precious metals to 02:30, rb/ru to 23:00.
    _spec("SHFE", "cu", "copper", 10.0, 5, NIGHT_0100, 78000.0),
    _spec("SHFE", "al", "aluminium", 5.0, 5, NIGHT_0100, 20500.0),
    _spec("SHFE", "zn", "zinc", 5.0, 5, NIGHT_0100, 22500.0),
    _spec("SHFE", "au", "gold", 0.02, 1000, NIGHT_0230, 780.0),
    _spec("SHFE", "ag", "silver", 1.0, 15, NIGHT_0230, 8500.0),
    _spec("SHFE", "rb", "rebar", 1.0, 10, NIGHT_2300, 3200.0),
    _spec("SHFE", "ru", "natural rubber", 5.0, 10, NIGHT_2300, 15000.0),
    # INE (a SHFE subsidiary): crude oil night to 02:30.
    _spec("INE", "sc", "crude oil", 0.1, 1000, NIGHT_0230, 520.0),
    # DCE
    _spec("DCE", "m", "soybean meal", 1.0, 10, NIGHT_2300, 2900.0),
    _spec("DCE", "i", "iron ore", 0.5, 100, NIGHT_2300, 780.0),
    # CZCE
    _spec("CZCE", "SR", "white sugar", 1.0, 10, NIGHT_2300, 5800.0),
    _spec("CZCE", "MA", "methanol", 1.0, 10, NIGHT_2300, 2450.0),
    # GFEX: industrial silicon trades in the day only (GFEX has no night session).
    _spec("GFEX", "si", "industrial silicon", 5.0, 5, None, 9000.0),
    # CFFEX: CSI 300 index futures, day only.
    _spec("CFFEX", "IF", "CSI 300 index", 0.2, 300, None, 3900.0, day=CFFEX_INDEX_DAY),
)

PRODUCTS: dict[tuple[str, str], ProductSpec] = {(s.exchange, s.product): s for s in _SPECS}


def known_products() -> list[str]:
    """``EXCHANGE.product`` for every product with facts, sorted."""
    return sorted(f"{e}.{p}" for e, p in PRODUCTS)


def product_spec(exchange: str, product: str) -> ProductSpec:
    """Facts for ``exchange``/``product``; :class:`UnknownProductError` lists known ones."""
    try:
        return PRODUCTS[(exchange, product)]
    except KeyError:
        raise UnknownProductError(
            f"no product facts for {exchange}.{product}; known products: "
            f"{', '.join(known_products())} (add it to ghtrader_assets/products.py)"
        ) from None


def spec_for(symbol: MainSymbol) -> ProductSpec:
    """Facts for a main symbol such as ``KQ.m@SHFE.cu``."""
    return product_spec(symbol.exchange, symbol.product)

"""Main continuous symbols (``KQ.m@SHFE.cu``) and real contracts (``SHFE.cu2602``).

Users think in main symbols; ticks are downloaded for the real contract that is main on a
given day (the *underlying*) and stored under the main symbol. Parsing lives here so every
module rejects a malformed symbol with the same clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXCHANGES = ("SHFE", "INE", "DCE", "CZCE", "GFEX", "CFFEX")

_MAIN_RE = re.compile(r"^KQ\.m@(?P<exchange>[A-Z]+)\.(?P<product>[A-Za-z]+)$")
_CONTRACT_RE = re.compile(r"^(?P<exchange>[A-Z]+)\.(?P<product>[A-Za-z]+)(?P<month>\d{3,4})$")


class SymbolError(ValueError):
    """A symbol string that is not a known main symbol or contract."""


@dataclass(frozen=True, order=True)
class MainSymbol:
    """A main continuous symbol such as ``KQ.m@SHFE.cu``."""

    exchange: str
    product: str

    @property
    def raw(self) -> str:
        return f"KQ.m@{self.exchange}.{self.product}"

    @property
    def key(self) -> str:
        """A filesystem- and identifier-safe name: ``SHFE_cu``."""
        return f"{self.exchange}_{self.product}"

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True, order=True)
class Contract:
    """A real, tradable contract such as ``SHFE.cu2602`` (CZCE uses 3 digits: ``CZCE.SR605``)."""

    exchange: str
    product: str
    month: str

    @property
    def raw(self) -> str:
        return f"{self.exchange}.{self.product}{self.month}"

    def __str__(self) -> str:
        return self.raw


def parse_main_symbol(text: str) -> MainSymbol:
    """Parse ``KQ.m@EXCHANGE.product``; raise :class:`SymbolError` naming the bad input."""
    m = _MAIN_RE.match(text.strip()) if isinstance(text, str) else None
    if not m or m.group("exchange") not in EXCHANGES:
        raise SymbolError(
            f"not a main continuous symbol: {text!r} (expected KQ.m@EXCHANGE.product with "
            f"EXCHANGE one of {', '.join(EXCHANGES)}, e.g. KQ.m@SHFE.cu)"
        )
    return MainSymbol(m.group("exchange"), m.group("product"))


def parse_contract(text: str) -> Contract:
    """Parse ``EXCHANGE.productYYMM``; raise :class:`SymbolError` naming the bad input."""
    m = _CONTRACT_RE.match(text.strip()) if isinstance(text, str) else None
    if not m or m.group("exchange") not in EXCHANGES:
        raise SymbolError(
            f"not a futures contract: {text!r} (expected EXCHANGE.productYYMM, e.g. SHFE.cu2602)"
        )
    return Contract(m.group("exchange"), m.group("product"), m.group("month"))


def parse_universe(text: str) -> list[MainSymbol]:
    """Parse a comma-separated universe, keeping order and dropping repeats.

    Every symbol must name a product with facts and sessions
    (:mod:`ghtrader_assets.products`), so a typo fails when the definitions load, naming the
    symbol and the nearest known products, instead of at the first run.
    """
    from ghtrader_assets.products import UnknownProductError, spec_for

    out: list[MainSymbol] = []
    for part in text.split(","):
        if part.strip():
            sym = parse_main_symbol(part)
            try:
                spec_for(sym)
            except UnknownProductError as exc:
                raise SymbolError(f"{sym.raw} in the universe: {exc}") from None
            if sym not in out:
                out.append(sym)
    if not out:
        raise SymbolError(f"the universe {text!r} names no symbol")
    return out

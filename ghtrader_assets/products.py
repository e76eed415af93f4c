"""Contract facts per futures product: tick size, multiplier, book depth, a simulator price.

Validation (tick grid, five-level book rules), the simulator and the sources all need the
same facts, so they live in one table: ``ghtrader_assets/data/products.csv``, one row per
futures product that ``cnfutures-session-timeline`` knows (a test keeps the two sets equal).
The values are the exchanges' published contract specifications as of today; the ``note``
column says where a value is uncertain or changed over the years (tick sizes are not dated
here). ``typical_price`` is only a realistic level for the simulator, never market data.

What this module does **not** hold: trading hours, night sessions, listing dates. Those
change over time and come, dated, from ``cnfutures-session-timeline`` through
:mod:`ghtrader_assets.sessions`.

Product codes use TqSdk's case: lower case on SHFE, INE, DCE and GFEX (``SHFE.cu``), upper
case on CZCE and CFFEX (``CZCE.SR``, ``CFFEX.IF``). An unknown product is an
:class:`UnknownProductError` that names the closest known products, so a typo in
``GHTRADER_UNIVERSE`` is caught when the definitions load, not at run time.
"""

from __future__ import annotations

import csv
import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ghtrader_assets.symbols import EXCHANGES, MainSymbol

#: Exchanges that publish five book levels; the others publish level 1 only.
FIVE_LEVEL_EXCHANGES = frozenset({"SHFE", "INE"})
#: Exchanges whose product codes TqSdk writes in upper case.
UPPER_CASE_EXCHANGES = frozenset({"CZCE", "CFFEX"})
PRODUCTS_FILENAME = "products.csv"
PRODUCT_COLUMNS = (
    "exchange",
    "product",
    "name",
    "tick_size",
    "multiplier",
    "book_levels",
    "typical_price",
    "note",
)


class UnknownProductError(KeyError):
    """No facts are recorded for this exchange/product."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class ProductTableError(ValueError):
    """The product table is malformed; the message names file, line and column."""


@dataclass(frozen=True)
class ProductSpec:
    """Facts about one product (today's contract specification)."""

    exchange: str
    product: str
    name: str
    tick_size: float
    multiplier: int
    book_levels: int
    typical_price: float
    note: str = ""

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.multiplier <= 0 or self.typical_price <= 0:
            raise ValueError(f"{self.exchange}.{self.product}: sizes and prices must be > 0")
        if self.book_levels not in (1, 5):
            raise ValueError(f"{self.exchange}.{self.product}: book_levels must be 1 or 5")

    @property
    def five_levels(self) -> bool:
        """Whether the exchange publishes book levels 2-5 for this product."""
        return self.book_levels == 5

    @property
    def symbol(self) -> MainSymbol:
        return MainSymbol(self.exchange, self.product)

    @property
    def key(self) -> str:
        """``EXCHANGE.product``, e.g. ``SHFE.cu``."""
        return f"{self.exchange}.{self.product}"


def products_path() -> Path:
    """Path of the packaged product table."""
    return Path(str(resources.files("ghtrader_assets") / "data" / PRODUCTS_FILENAME))


def _cell(path: Path, lineno: int, column: str, text: str, cast: type, positive: bool = True):
    try:
        value = cast(text)
    except ValueError:
        raise ProductTableError(
            f"{path}, line {lineno}, column {column}: {text!r} is not {cast.__name__}"
        ) from None
    if positive and not value > 0:
        raise ProductTableError(f"{path}, line {lineno}, column {column}: {text!r} must be > 0")
    return value


def load_products(path: Path | None = None) -> dict[tuple[str, str], ProductSpec]:
    """Read and validate a product table (the packaged one by default).

    Errors name the file, line and column: an unknown exchange, a product code in the wrong
    case for its exchange, a non-positive number, a book depth other than the exchange's
    (five levels on SHFE/INE, one elsewhere), or a product listed twice.
    """
    path = products_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProductTableError(f"cannot read product table {path}: {exc}") from exc
    reader = csv.reader(text.splitlines())
    header = tuple(h.strip() for h in next(reader, []))
    if header != PRODUCT_COLUMNS:
        raise ProductTableError(
            f"{path}, line 1: header must be {','.join(PRODUCT_COLUMNS)}, got {','.join(header)}"
        )
    out: dict[tuple[str, str], ProductSpec] = {}
    seen: dict[tuple[str, str], int] = {}
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(PRODUCT_COLUMNS):
            raise ProductTableError(
                f"{path}, line {lineno}: expected {len(PRODUCT_COLUMNS)} columns, got {len(row)}"
            )
        cells = dict(zip(PRODUCT_COLUMNS, (c.strip() for c in row), strict=True))
        exchange, product = cells["exchange"], cells["product"]
        if exchange not in EXCHANGES:
            raise ProductTableError(
                f"{path}, line {lineno}, column exchange: {exchange!r} is not one of {EXCHANGES}"
            )
        wanted = product.upper() if exchange in UPPER_CASE_EXCHANGES else product.lower()
        if not product.isalpha() or product != wanted:
            raise ProductTableError(
                f"{path}, line {lineno}, column product: {product!r} must be letters in "
                f"TqSdk's case for {exchange} ({wanted!r})"
            )
        levels = _cell(path, lineno, "book_levels", cells["book_levels"], int)
        expected_levels = 5 if exchange in FIVE_LEVEL_EXCHANGES else 1
        if levels != expected_levels:
            raise ProductTableError(
                f"{path}, line {lineno}, column book_levels: {exchange} publishes "
                f"{expected_levels} level(s), got {levels}"
            )
        key = (exchange, product)
        if key in seen:
            raise ProductTableError(
                f"{path}, line {lineno}, column product: {exchange}.{product} already on "
                f"line {seen[key]}"
            )
        seen[key] = lineno
        out[key] = ProductSpec(
            exchange=exchange,
            product=product,
            name=cells["name"],
            tick_size=_cell(path, lineno, "tick_size", cells["tick_size"], float),
            multiplier=_cell(path, lineno, "multiplier", cells["multiplier"], int),
            book_levels=levels,
            typical_price=_cell(path, lineno, "typical_price", cells["typical_price"], float),
            note=cells["note"],
        )
    return out


@functools.cache
def _products() -> Mapping[tuple[str, str], ProductSpec]:
    return load_products()


class _ProductTable(Mapping[tuple[str, str], ProductSpec]):
    """``PRODUCTS``: the packaged table, read on first use."""

    def __getitem__(self, key: tuple[str, str]) -> ProductSpec:
        return _products()[key]

    def __iter__(self):
        return iter(_products())

    def __len__(self) -> int:
        return len(_products())


PRODUCTS: Mapping[tuple[str, str], ProductSpec] = _ProductTable()


def known_products() -> list[str]:
    """``EXCHANGE.product`` for every product with facts, sorted."""
    return sorted(f"{e}.{p}" for e, p in PRODUCTS)


def nearest_products(exchange: str, product: str, n: int = 3) -> list[str]:
    """The known ``EXCHANGE.product`` names closest to the given one (case-insensitive).

    The same product code on another exchange comes first (``SHFE.sc`` -> ``INE.sc``),
    then :mod:`difflib` matches of the whole name.
    """
    known = known_products()
    by_lower = {k.lower(): k for k in known}
    wanted = f"{exchange}.{product}".lower()
    out = [k for k in known if k.split(".", 1)[1].lower() == product.lower()]
    out += [by_lower[m] for m in difflib.get_close_matches(wanted, list(by_lower), n=n, cutoff=0)]
    return list(dict.fromkeys(out))[:n]


def product_spec(exchange: str, product: str) -> ProductSpec:
    """Facts for ``exchange``/``product``; :class:`UnknownProductError` names the nearest."""
    try:
        return PRODUCTS[(exchange, product)]
    except KeyError:
        near = nearest_products(exchange, product)
        raise UnknownProductError(
            f"unknown product {exchange}.{product}: no product facts or sessions for it; "
            f"nearest known products: {', '.join(near)} ({len(PRODUCTS)} products are listed "
            f"in ghtrader_assets/data/{PRODUCTS_FILENAME})"
        ) from None


def spec_for(symbol: MainSymbol) -> ProductSpec:
    """Facts for a main symbol such as ``KQ.m@SHFE.cu``, which must also have a dated
    session history: the universe is checked with this when the definitions load.

    A product with facts but no history (a listing newer than the installed
    ``cnfutures-session-timeline``) is refused here rather than run on TqSdk's
    ``trading_time``: that is today's hours only, while validation (gaps, completeness,
    out-of-session), automation and coverage need each day's own hours and listing dates.
    """
    spec = product_spec(symbol.exchange, symbol.product)
    from ghtrader_assets.sessions import TIMELINE, has_session_history

    if not has_session_history(spec):
        raise UnknownProductError(
            f"{spec.key} has product facts but no session history in the installed "
            f"{TIMELINE}; upgrade it (pip install -U {TIMELINE}) to a release that lists "
            f"{spec.key}"
        )
    return spec

"""The product table: every product of the session source has facts, and a bad table or an
unknown product is refused with a message that says where and what."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.products import (
    FIVE_LEVEL_EXCHANGES,
    PRODUCT_COLUMNS,
    PRODUCTS,
    ProductTableError,
    UnknownProductError,
    load_products,
    nearest_products,
    product_spec,
    products_path,
    spec_for,
)
from ghtrader_assets.sessions import listing_date, timeline_products
from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_universe


def test_every_session_product_has_facts_and_vice_versa() -> None:
    ours = {(exchange, product.upper()) for exchange, product in PRODUCTS}
    theirs = set(timeline_products())
    assert theirs - ours == set(), "products of the session source without facts"
    assert ours - theirs == set(), "products with facts the session source does not know"
    assert len(PRODUCTS) >= 90


def test_facts_are_consistent() -> None:
    for (exchange, product), spec in PRODUCTS.items():
        assert (spec.exchange, spec.product) == (exchange, product)
        assert spec.five_levels == (exchange in FIVE_LEVEL_EXCHANGES)
        # TqSdk's case: upper on CZCE/CFFEX, lower elsewhere
        assert product == (product.upper() if exchange in ("CZCE", "CFFEX") else product.lower())
        # the simulator's price level sits on the tick grid within rounding
        assert spec.typical_price / spec.tick_size >= 10
        assert listing_date(exchange, product).year >= 2008
    # the products of the shared real data, checked against the exchanges' specs
    assert product_spec("SHFE", "sn").tick_size == 10 and product_spec("SHFE", "sn").multiplier == 1
    assert product_spec("CZCE", "CF").tick_size == 5 and product_spec("CZCE", "CF").multiplier == 5
    assert product_spec("DCE", "pp").tick_size == 1 and not product_spec("DCE", "pp").five_levels
    assert product_spec("CFFEX", "IF").multiplier == 300
    assert spec_for(MainSymbol("INE", "sc")) is product_spec("INE", "sc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        product_spec("SHFE", "cu").tick_size = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("exchange", "product", "nearest"),
    [
        ("SHFE", "sc", "INE.sc"),  # right product, wrong exchange
        ("DCE", "PP", "DCE.pp"),  # wrong case
        ("SHFE", "cuu", "SHFE.cu"),  # typo
        ("CZCE", "sr", "CZCE.SR"),
    ],
)
def test_unknown_product_names_nearest(exchange: str, product: str, nearest: str) -> None:
    assert nearest in nearest_products(exchange, product)
    with pytest.raises(UnknownProductError) as info:
        product_spec(exchange, product)
    assert f"{exchange}.{product}" in str(info.value) and nearest in str(info.value)


def test_unknown_product_in_the_universe_fails_when_settings_load() -> None:
    with pytest.raises(SymbolError, match=r"KQ\.m@SHFE\.sc.*INE\.sc"):
        parse_universe("KQ.m@SHFE.cu,KQ.m@SHFE.sc")
    with pytest.raises(SettingsError, match=r"GHTRADER_UNIVERSE: KQ\.m@DCE\.PP.*DCE\.pp"):
        Settings.from_env({"GHTRADER_UNIVERSE": "KQ.m@DCE.PP"})
    # every product of the table can be put in the universe
    everything = ",".join(f"KQ.m@{e}.{p}" for e, p in PRODUCTS)
    settings = Settings.from_env({"GHTRADER_UNIVERSE": everything})
    assert len(settings.universe) == len(PRODUCTS)


def test_cli_reports_an_unknown_product_in_one_line(monkeypatch, capsys, tmp_path) -> None:
    from ghtrader_assets.cli import main

    monkeypatch.setenv("GHTRADER_UNIVERSE", "KQ.m@SHFE.cuu")
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    assert main(["coverage"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SHFE.cu" in err and "KQ.m@SHFE.cuu" in err


def _table(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "products.csv"
    path.write_text("\n".join([",".join(PRODUCT_COLUMNS), *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (["SHFE,cu,copper,10,5,1,78000,"], "line 2, column book_levels: SHFE publishes 5"),
        (["DCE,m,meal,1,10,1,2900,", "DCE,m,meal,1,10,1,2900,"], "line 3, column product"),
        (["DCE,M,meal,1,10,1,2900,"], "line 2, column product: 'M'"),
        (["DCE,m,meal,zero,10,1,2900,"], "line 2, column tick_size: 'zero'"),
        (["DCE,m,meal,1,-10,1,2900,"], "line 2, column multiplier: '-10' must be > 0"),
        (["NYSE,m,meal,1,10,1,2900,"], "line 2, column exchange: 'NYSE'"),
        (["DCE,m,meal,1,10,1"], "line 2: expected 8 columns"),
    ],
)
def test_bad_product_table_names_line_and_column(tmp_path: Path, rows, needle) -> None:
    path = _table(tmp_path, *rows)
    with pytest.raises(ProductTableError) as info:
        load_products(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_packaged_table_loads_and_is_the_table_in_use() -> None:
    assert products_path().name == "products.csv"
    assert load_products() == dict(PRODUCTS)

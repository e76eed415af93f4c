"""SimulatedSource: determinism, schema, book invariants, sessions and exact defect injection."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ghtrader_assets.products import product_spec
from ghtrader_assets.schema import TICKS
from ghtrader_assets.sessions import expected_seconds, in_session_mask, session_windows
from ghtrader_assets.sources.base import NoDataError, RollEntry, UnknownSymbolError
from ghtrader_assets.sources.registry import SOURCE_KINDS, make_source
from ghtrader_assets.sources.simulated import (
    DEFECT_DEFAULTS,
    DEFECTS,
    ROLL_DAY,
    SimulatedSource,
    normalize_defects,
)
from ghtrader_assets.symbols import MainSymbol, parse_contract, parse_main_symbol

CU = parse_main_symbol("KQ.m@SHFE.cu")
M = parse_main_symbol("KQ.m@DCE.m")
DAY = dt.date(2026, 1, 7)  # a Wednesday with a night session (Tuesday evening)

ROW_DEFECTS = [d for d in DEFECTS if d not in ("empty_day", "gap", "sparse", "null_run")]


def _entry(symbol: MainSymbol = CU, day: dt.date = DAY, seed: int = 0) -> RollEntry:
    return SimulatedSource(seed=seed).roll_entry(symbol, day)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return SimulatedSource(seed=0).ticks(_entry())


def _simulate(defects, symbol: MainSymbol = CU):
    return SimulatedSource(seed=0, defects=defects).simulate(_entry(symbol))


# -- a small independent checker: one rule per defect ------------------------------------


def _null_run_rows(isna: pd.Series, longer_than: int) -> np.ndarray:
    values = isna.to_numpy()
    run_id = np.cumsum(np.r_[True, values[1:] != values[:-1]])
    lengths = pd.Series(run_id).map(pd.Series(run_id).value_counts()).to_numpy()
    return values & (lengths > longer_than)


def tripped(frame: pd.DataFrame, symbol: MainSymbol = CU) -> dict[str, pd.DatetimeIndex]:
    """Rows flagged by each rule (rules named like the defects), only rules that fire."""
    tick = product_spec(symbol.exchange, symbol.product).tick_size
    windows = session_windows(symbol.exchange, symbol.product, DAY)
    ts = pd.DatetimeIndex(frame["ts"])
    b1, a1, last = frame["bid_price1"], frame["ask_price1"], frame["last_price"]
    out: dict[str, np.ndarray] = {}
    out["crossed_book"] = ((b1 >= a1) & b1.notna() & a1.notna()).to_numpy()
    ladder = np.zeros(len(frame), dtype=bool)
    for k in range(1, 5):
        for side, bad in (("bid", np.less_equal), ("ask", np.greater_equal)):
            hi, lo = frame[f"{side}_price{k}"], frame[f"{side}_price{k + 1}"]
            ladder |= (bad(hi, lo) & hi.notna() & lo.notna()).to_numpy()
    out["ladder"] = ladder
    out["nan_prices"] = (
        frame[["last_price", "bid_price1", "ask_price1"]].isna().any(axis=1).to_numpy()
    )
    out["null_run"] = _null_run_rows(b1.isna() | a1.isna(), 100)
    out["duplicates"] = frame.duplicated(keep="last").to_numpy()
    out["out_of_session"] = ~in_session_mask(ts, windows)
    volumes = ["volume", "amount", "open_interest"] + [c for c in frame if "_volume" in c]
    out["negative_volume"] = (frame[volumes] < 0).any(axis=1).to_numpy()
    vol, amount = frame["volume"], frame["amount"]
    out["cumulative_decrease"] = (
        (vol < vol.cummax().shift()) | (amount < amount.cummax().shift())
    ).to_numpy()
    lp = last.dropna()
    d = lp.diff()
    calm = d.rolling(120, min_periods=20).std().shift()
    jumped = lp.index[(d.abs() > np.maximum(8 * calm, tick)).to_numpy()]
    out["price_jump"] = frame.index.isin(jumped)
    dv = vol.diff()
    median = dv.rolling(120, min_periods=20).median().shift().clip(lower=1)
    out["volume_spike"] = (dv > 20 * median).to_numpy()
    spread = a1 - b1
    out["spread_anomaly"] = (spread > 5 * spread.quantile(0.95)).to_numpy()
    inside = in_session_mask(ts, windows)
    gap = np.zeros(len(frame), dtype=bool)
    idx = np.flatnonzero(inside)
    starts = [w.start.value for w in windows]
    same_window = np.searchsorted(starts, ts[idx].asi8, side="right")
    delta = np.diff(ts[idx].asi8)
    gap[idx[1:][(delta > 30 * 10**9) & (np.diff(same_window) == 0)]] = True
    out["gap"] = gap
    result = {k: ts[v] for k, v in out.items() if v.any()}
    expected_half_seconds = expected_seconds(windows) * 2
    present = len(np.unique(ts[inside].floor("500ms")))
    if 1 - present / expected_half_seconds > 0.10:
        result["sparse"] = pd.DatetimeIndex([], tz="UTC")
    return result


# -- determinism --------------------------------------------------------------------------


def test_same_inputs_give_identical_frames(clean):
    again = SimulatedSource(seed=0).ticks(_entry())
    pd.testing.assert_frame_equal(clean, again)


def test_other_day_or_seed_gives_other_prices(clean):
    other_day = SimulatedSource(seed=0).ticks(_entry(day=dt.date(2026, 1, 8)))
    other_seed = SimulatedSource(seed=1).ticks(_entry())
    assert not np.array_equal(
        clean["last_price"].to_numpy()[:1000], other_day["last_price"].to_numpy()[:1000]
    )
    assert len(other_seed) == len(clean)
    assert not np.array_equal(clean["last_price"].to_numpy(), other_seed["last_price"].to_numpy())


def test_output_does_not_depend_on_python_hash_seed(clean):
    code = (
        "import datetime as dt, hashlib\n"
        "from ghtrader_assets.sources.simulated import SimulatedSource\n"
        "from ghtrader_assets.symbols import parse_main_symbol\n"
        "s = SimulatedSource(seed=0)\n"
        "f = s.ticks(s.roll_entry(parse_main_symbol('KQ.m@SHFE.cu'), dt.date(2026, 1, 7)))\n"
        "print(hashlib.sha256(f['last_price'].to_numpy().tobytes()).hexdigest())\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert (
        out.stdout.strip() == hashlib.sha256(clean["last_price"].to_numpy().tobytes()).hexdigest()
    )


# -- shape of a clean day -----------------------------------------------------------------


@pytest.mark.parametrize("symbol", [CU, M, parse_main_symbol("KQ.m@CZCE.SR")])
def test_frame_conforms_to_ticks_schema_and_labels(symbol):
    entry = _entry(symbol)
    frame = SimulatedSource().ticks(entry)
    TICKS.schema.validate(frame)
    assert (frame["symbol"] == symbol.raw).all()
    assert (frame["underlying"] == entry.underlying).all()
    assert (frame["source"] == "simulated").all()
    assert (frame["trading_day"] == DAY.isoformat()).all()


def test_clean_book_is_consistent(clean):
    spec = product_spec("SHFE", "cu")
    tick = spec.tick_size
    bids = clean[[f"bid_price{k}" for k in range(1, 6)]].to_numpy()
    asks = clean[[f"ask_price{k}" for k in range(1, 6)]].to_numpy()
    assert (bids[:, 0] < asks[:, 0]).all()
    assert (np.diff(bids, axis=1) <= -tick + 1e-9).all()
    assert (np.diff(asks, axis=1) >= tick - 1e-9).all()
    prices = np.hstack([bids, asks, clean[["last_price"]].to_numpy()])
    assert np.allclose(prices / tick, np.round(prices / tick))
    assert (clean[[c for c in clean if "_volume" in c]].to_numpy() > 0).all()
    last = clean["last_price"]
    assert ((last >= clean["bid_price1"]) & (last <= clean["ask_price1"])).all()
    assert abs(last.iloc[0] / spec.typical_price - 1) < 0.2


def test_clean_cumulative_fields_are_consistent(clean):
    mult = product_spec("SHFE", "cu").multiplier
    vol, amount, oi = clean["volume"], clean["amount"], clean["open_interest"]
    assert vol.iloc[0] > 0 and (vol.diff().dropna() >= 0).all()
    assert (amount.diff().dropna() >= 0).all()
    # amount ~ volume x price x multiplier: the implied VWAP is the reported average
    np.testing.assert_allclose(amount / (vol * mult), clean["average"], rtol=1e-9)
    last = clean["last_price"]
    np.testing.assert_array_equal(clean["highest"], last.cummax())
    np.testing.assert_array_equal(clean["lowest"], last.cummin())
    assert ((clean["average"] >= clean["lowest"]) & (clean["average"] <= clean["highest"])).all()
    assert (oi >= 0).all()
    # open interest moves both ways, never by more than the lots traded on the tick
    assert (oi.diff() < 0).any() and (oi.diff() > 0).any()
    assert (oi.diff().abs().iloc[1:] <= vol.diff().iloc[1:]).all()


def test_two_ticks_per_second_through_every_session(clean):
    windows = session_windows("SHFE", "cu", DAY)
    assert {w.kind for w in windows} == {"day", "night"}
    assert len(clean) == expected_seconds(windows) * 2
    assert in_session_mask(clean["ts"], windows).all()
    ts = clean["ts"]
    assert ts.is_monotonic_increasing and ts.is_unique
    assert (clean["datetime"].to_numpy() == pd.DatetimeIndex(ts).asi8).all()
    assert (np.diff(clean["id"].to_numpy()) == 1).all()
    nanos = pd.DatetimeIndex(ts).asi8
    assert {w.start.value for w in windows} <= set(nanos)
    deltas = np.diff(nanos)
    assert (deltas == 500_000_000).sum() == len(clean) - len(windows)


def test_level_one_products_have_nan_depth():
    frame = SimulatedSource().ticks(_entry(M))
    depth = [
        f"{side}_{kind}{k}"
        for k in range(2, 6)
        for side in ("bid", "ask")
        for kind in ("price", "volume")
    ]
    assert frame[depth].isna().all().all()
    assert frame[["bid_price1", "ask_price1", "bid_volume1", "ask_volume1"]].notna().all().all()


def test_clean_day_trips_no_rule(clean):
    assert tripped(clean) == {}
    assert tripped(SimulatedSource().ticks(_entry(M)), M) == {}


# -- roll schedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, digits",
    [("KQ.m@SHFE.cu", 4), ("KQ.m@CZCE.SR", 3), ("KQ.m@CZCE.MA", 3), ("KQ.m@CFFEX.IF", 4)],
)
def test_roll_entry_names_a_current_or_future_contract(raw, digits):
    symbol = parse_main_symbol(raw)
    entry = SimulatedSource().roll_entry(symbol, DAY)
    assert entry.source == "simulated" and entry.symbol == symbol and entry.trading_day == DAY
    contract = parse_contract(entry.underlying)
    assert (contract.exchange, contract.product) == (symbol.exchange, symbol.product)
    assert len(contract.month) == digits
    month = int(contract.month[-2:])
    year = 2020 + int(contract.month[0]) if digits == 3 else 2000 + int(contract.month[:2])
    months_ahead = (year - DAY.year) * 12 + month - DAY.month
    assert 0 <= months_ahead <= 12


def test_roll_moves_on_the_roll_day():
    src = SimulatedSource()
    before = src.roll_entry(CU, dt.date(2026, 1, ROLL_DAY - 1)).underlying
    after = src.roll_entry(CU, dt.date(2026, 1, ROLL_DAY)).underlying
    assert before != after
    assert src.roll_entry(CU, dt.date(2026, 1, ROLL_DAY - 2)).underlying == before


def test_unknown_product_names_the_symbol():
    with pytest.raises(UnknownSymbolError, match=re.escape("KQ.m@SHFE.xx")):
        SimulatedSource().roll_entry(MainSymbol("SHFE", "xx"), DAY)


@pytest.mark.parametrize("day", [dt.date(2026, 1, 10), dt.date(2026, 1, 1)])  # Saturday, holiday
def test_non_trading_day_has_no_data(day):
    with pytest.raises(NoDataError, match=str(day)):
        SimulatedSource().roll_entry(CU, day)
    with pytest.raises(NoDataError, match=str(day)):
        SimulatedSource().ticks(RollEntry(CU, day, "SHFE.cu2602", "simulated"))


# -- defects -------------------------------------------------------------------------------


def test_defect_list_and_defaults_agree():
    assert set(DEFECTS) == set(DEFECT_DEFAULTS)
    assert normalize_defects({"gap": True, "sparse": {"share": 0.3}, "nan_prices": False}) == {
        "gap": {"seconds": 45},
        "sparse": {"share": 0.3},
    }


@pytest.mark.parametrize(
    "defects, message",
    [
        ({"meteor": True}, "unknown simulated defect 'meteor'"),
        ({"gap": {"minutes": 1}}, "unknown parameter"),
        ({"sparse": {"share": 0.9}}, "share must be in"),
        ({"duplicates": {"rows": 0}}, "rows must be >= 1"),
        ({"gap": 3}, "expected True or a mapping"),
    ],
)
def test_bad_defect_configuration_is_rejected(defects, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SimulatedSource(defects=defects)


def _expected_rules(name: str, injection) -> dict[str, pd.DatetimeIndex]:
    if name == "gap":
        return {"gap": pd.DatetimeIndex([injection.detail["end"]])}
    if name == "sparse":
        return {"sparse": pd.DatetimeIndex([], tz="UTC")}
    if name == "null_run":  # a run of nulls is also counted by the null rate
        return {"null_run": injection.ts, "nan_prices": injection.ts}
    return {name: injection.ts}


@pytest.mark.parametrize("name", [d for d in DEFECTS if d != "empty_day"])
def test_each_defect_trips_only_its_own_rule(name):
    day = _simulate({name: True})
    injection = day.injections[name]
    assert set(day.injections) == {name}
    expected = _expected_rules(name, injection)
    found = tripped(day.frame)
    assert set(found) == set(expected)
    for rule, rows in expected.items():
        if name != "sparse":
            assert found[rule].equals(rows), rule


def test_all_defects_together_stay_separate():
    defects = {d: True for d in DEFECTS if d != "empty_day"}
    day = _simulate(defects)
    found = tripped(day.frame)
    expected: dict[str, pd.DatetimeIndex] = {}
    for name, injection in day.injections.items():
        for rule, rows in _expected_rules(name, injection).items():
            expected[rule] = expected[rule].union(rows) if rule in expected else rows
    assert set(found) == set(expected)
    for rule, rows in expected.items():
        if rule != "sparse":
            assert found[rule].equals(rows), rule
    assert day.frame["ts"].is_monotonic_increasing


@pytest.mark.parametrize(
    "name",
    ["crossed_book", "nan_prices", "ladder", "negative_volume", "cumulative_decrease", "null_run"],
)
def test_value_defects_change_exactly_the_recorded_cells(clean, name):
    day = _simulate({name: True})
    inj = day.injections[name]
    frame = day.frame
    assert frame.shape == clean.shape
    differs = (frame != clean) & ~(frame.isna() & clean.isna())
    rows, cols = np.nonzero(differs.to_numpy())
    changed = {(clean["ts"].iloc[r], frame.columns[c]) for r, c in zip(rows, cols, strict=True)}
    assert changed == {(t, c) for t in inj.ts for c in inj.columns}
    assert len(inj.ts) == {"null_run": 150, "cumulative_decrease": 1}.get(name, 5)


def test_crossed_book_crosses_by_the_configured_ticks(clean):
    day = _simulate({"crossed_book": {"rows": 7, "ticks": 2}})
    rows = day.frame["ts"].isin(day.injections["crossed_book"].ts)
    assert rows.sum() == 7
    cross = day.frame.loc[rows, "bid_price1"] - day.frame.loc[rows, "ask_price1"]
    np.testing.assert_allclose(cross, 2 * product_spec("SHFE", "cu").tick_size)


def test_cumulative_decrease_drops_by_the_configured_lots():
    day = _simulate({"cumulative_decrease": {"lots": 9}})
    vol = day.frame["volume"]
    (pos,) = np.flatnonzero(day.frame["ts"].isin(day.injections["cumulative_decrease"].ts))
    assert vol.iloc[pos - 1] - vol.iloc[pos] == 9
    assert vol.iloc[pos + 1] > vol.iloc[pos - 1]


def test_ladder_is_skipped_on_level_one_products():
    day = _simulate({"ladder": True}, M)
    assert "level 1 only" in day.injections["ladder"].detail["skipped"]
    assert len(day.injections["ladder"].ts) == 0
    pd.testing.assert_frame_equal(day.frame, SimulatedSource().ticks(_entry(M)))


def test_gap_removes_a_frozen_stretch_inside_one_session(clean):
    day = _simulate({"gap": {"seconds": 40}})
    inj = day.injections["gap"]
    removed = pd.DatetimeIndex(clean["ts"]).difference(pd.DatetimeIndex(day.frame["ts"]))
    assert removed.equals(inj.ts) and len(removed) == 80
    assert inj.detail["end"] - inj.detail["start"] == pd.Timedelta(seconds=40)
    windows = session_windows("SHFE", "cu", DAY)
    assert any(w.start <= removed[0] and removed[-1] < w.end for w in windows)
    k = int((clean["ts"] < inj.detail["start"]).sum())
    pd.testing.assert_frame_equal(day.frame.iloc[:k], clean.iloc[:k])
    after = day.frame["ts"] >= inj.detail["end"]
    first_after, last_before = day.frame[after].iloc[0], day.frame[~after].iloc[-1]
    assert first_after["ts"] - last_before["ts"] == pd.Timedelta(seconds=40.5)
    # the market was frozen: no price move and at most one tick's lots across the hole
    tick = product_spec("SHFE", "cu").tick_size
    assert abs(first_after["bid_price1"] - last_before["bid_price1"]) <= tick
    assert first_after["volume"] - last_before["volume"] <= 20


def test_price_jump_shifts_the_whole_market_once(clean):
    day = _simulate({"price_jump": {"ticks": 60}})
    tick = product_spec("SHFE", "cu").tick_size
    (pos,) = np.flatnonzero(day.frame["ts"].isin(day.injections["price_jump"].ts))
    books = [f"{s}_price{k}" for k in range(1, 6) for s in ("bid", "ask")] + ["last_price"]
    shift = day.frame[books].to_numpy() - clean[books].to_numpy()
    assert (shift[:pos] == 0).all()
    np.testing.assert_allclose(shift[pos:], 60 * tick)
    volumes = [c for c in clean if "_volume" in c] + ["volume", "open_interest"]
    pd.testing.assert_frame_equal(day.frame[volumes], clean[volumes])


def test_volume_spike_trades_factor_times_the_median(clean):
    day = _simulate({"volume_spike": {"factor": 30}})
    inj = day.injections["volume_spike"]
    median = clean["volume"].diff().median()
    (pos,) = np.flatnonzero(day.frame["ts"].isin(inj.ts))
    assert day.frame["volume"].diff().iloc[pos] == inj.detail["lots"] == np.ceil(30 * median)
    prices = [c for c in clean if "price" in c]
    pd.testing.assert_frame_equal(day.frame[prices], clean[prices])


def test_spread_anomaly_widens_around_the_mid(clean):
    day = _simulate({"spread_anomaly": {"rows": 4, "ticks": 25}})
    tick = product_spec("SHFE", "cu").tick_size
    wide = day.frame["ts"].isin(day.injections["spread_anomaly"].ts).to_numpy()
    assert wide.sum() == 4
    spread = (day.frame["ask_price1"] - day.frame["bid_price1"]) / tick
    np.testing.assert_allclose(spread[wide], 25)
    mid_shift = (
        day.frame["ask_price1"]
        + day.frame["bid_price1"]
        - clean["ask_price1"]
        - clean["bid_price1"]
    ) / 2
    assert (mid_shift[wide].abs() <= tick / 2).all()
    pd.testing.assert_series_equal(day.frame["last_price"], clean["last_price"])
    pd.testing.assert_frame_equal(day.frame[~wide], clean[~wide])


def test_duplicates_are_exact_copies(clean):
    day = _simulate({"duplicates": {"rows": 6}})
    assert len(day.frame) == len(clean) + 6
    dup = day.frame.duplicated(keep="first")
    assert pd.DatetimeIndex(day.frame.loc[dup, "ts"]).equals(day.injections["duplicates"].ts)
    pd.testing.assert_frame_equal(day.frame[~dup].reset_index(drop=True), clean)


def test_out_of_session_ticks_copy_the_last_tick_before_the_break(clean):
    day = _simulate({"out_of_session": {"rows": 4}})
    inj = day.injections["out_of_session"]
    frame = day.frame
    outside = frame["ts"].isin(inj.ts).to_numpy()
    assert outside.sum() == 4
    assert (np.diff(inj.ts.asi8) == 10**9).all()
    windows = session_windows("SHFE", "cu", DAY)
    assert not in_session_mask(inj.ts, windows).any()
    nearest = min(abs(t - b) for t in inj.ts for w in windows for b in (w.start, w.end))
    assert nearest > pd.Timedelta(minutes=5)
    source = clean.loc[clean["ts"] == inj.detail["copied_from"]].iloc[0]
    values = [c for c in clean if c not in ("ts", "datetime", "id")]
    assert (frame.loc[outside, values] == source[values]).all().all()
    pd.testing.assert_frame_equal(
        frame[~outside].drop(columns="id").reset_index(drop=True), clean.drop(columns="id")
    )
    assert frame["id"].is_monotonic_increasing and frame["id"].is_unique


def test_sparse_drops_a_share_but_leaves_no_empty_second(clean):
    day = _simulate({"sparse": {"share": 0.35}})
    frame = day.frame
    inj = day.injections["sparse"]
    assert len(frame) == len(clean) - len(inj.ts) == len(clean) - round(0.35 * len(clean))
    kept = clean[~clean["ts"].isin(inj.ts)].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.drop(columns="id"), kept.drop(columns="id"))
    seconds = pd.DatetimeIndex(frame["ts"]).floor("s").unique()
    assert len(seconds) == len(clean) // 2
    windows = session_windows("SHFE", "cu", DAY)
    inside = pd.DatetimeIndex(frame["ts"])
    window_of = np.searchsorted([w.start.value for w in windows], inside.asi8, side="right")
    within = np.diff(window_of) == 0
    assert np.diff(inside.asi8)[within].max() <= 1.5 * 10**9


def test_empty_day_has_no_ticks():
    day = _simulate({"empty_day": True})
    assert day.frame.empty and list(day.frame.columns) == TICKS.columns
    TICKS.schema.validate(day.frame)


def test_ticks_records_the_last_injections():
    src = SimulatedSource(defects={"null_run": {"rows": 120}})
    frame = src.ticks(_entry())
    assert len(src.last_injections["null_run"].ts) == 120
    assert frame["bid_price1"].isna().sum() == 120


# -- registry ------------------------------------------------------------------------------


def test_make_source_builds_a_simulated_source():
    src = make_source(" Simulated ", seed=4, defects={"gap": True}, cadence_ms=500)
    assert isinstance(src, SimulatedSource) and src.seed == 4 and "gap" in src.defects
    assert SOURCE_KINDS == ("simulated", "csv", "tqsdk")


def test_make_source_rejects_unknown_kinds_and_options():
    with pytest.raises(ValueError, match="unknown source kind 'parquet'"):
        make_source("parquet")
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['bogus'\]"):
        make_source("simulated", bogus=1)

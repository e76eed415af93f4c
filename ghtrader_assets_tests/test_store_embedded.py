"""EmbeddedStore: atomic, idempotent, validated partition writes and the reads built on them."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from filelock import FileLock

from ghtrader_assets.schema import MANIFESTS, TICKS, TableSpec, conform
from ghtrader_assets.stores.base import COVERAGE_COLUMNS, StoreError
from ghtrader_assets.stores.embedded import (
    LOCK_DIR,
    PART_FILE,
    EmbeddedStore,
    arrow_schema,
)

CU = "KQ.m@SHFE.cu"
AU = "KQ.m@SHFE.au"
SR = "KQ.m@CZCE.SR"  # an exchange with level-1 quotes only
DAY1, DAY2, DAY3 = "2024-01-02", "2024-01-03", "2024-01-04"


def tick_frame(
    symbol: str = CU, day: str = DAY1, n: int = 300, seed: int = 0, five_levels: bool = True
) -> pd.DataFrame:
    """A small, realistic tick day: 500 ms cadence, prices on the tick grid, cumulative
    volume/amount, a consistent book (levels 2-5 absent for level-1 exchanges) and
    nanosecond timestamps that must survive the round trip."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(f"{day} 01:00:00", tz="UTC") + pd.Timedelta(
        int(rng.integers(0, 999)), "ns"
    )
    ts = pd.DatetimeIndex(start + pd.to_timedelta(np.arange(n) * 500, unit="ms")).as_unit("ns")
    tick = 10.0
    last = 70_000 + np.cumsum(rng.integers(-2, 3, n)) * tick
    volume = np.cumsum(rng.integers(0, 30, n)).astype(float)
    frame: dict[str, object] = {
        "symbol": symbol,
        "trading_day": day,
        "ts": ts,
        "datetime": ts.asi8,
        "id": np.arange(n, dtype=np.int64) + 1_000_000 * seed,
        "underlying": symbol.replace("KQ.m@", "") + "2402",
        "source": "test",
        "last_price": last,
        "highest": np.maximum.accumulate(last),
        "lowest": np.minimum.accumulate(last),
        "average": np.round(last + rng.normal(0, 3, n), 2),
        "volume": volume,
        "amount": volume * 70_000 * 5,
        "open_interest": 180_000 + np.cumsum(rng.integers(-4, 5, n)).astype(float),
    }
    for lvl in range(1, 6 if five_levels else 2):
        frame[f"bid_price{lvl}"] = last - tick * lvl
        frame[f"ask_price{lvl}"] = last + tick * lvl
        frame[f"bid_volume{lvl}"] = rng.integers(1, 300, n).astype(float)
        frame[f"ask_volume{lvl}"] = rng.integers(1, 300, n).astype(float)
    return pd.DataFrame(frame)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def files_in(part_dir: Path) -> list[str]:
    return sorted(os.listdir(part_dir))


# ------------------------------------------------------------------ round trip and schema


def test_round_trip_preserves_values_and_dtypes(store: EmbeddedStore) -> None:
    src = tick_frame()
    stats = store.write_partition(TICKS, CU, DAY1, src)
    back = store.read_partition(TICKS, CU, DAY1)

    expected = conform(src, TICKS)
    pd.testing.assert_frame_equal(back, expected)
    assert str(back["ts"].dtype) == "datetime64[ns, UTC]"
    assert back["ts"].iloc[0].nanosecond == src["ts"].iloc[0].nanosecond  # ns kept
    assert (stats.rows, stats.table, stats.symbol, stats.trading_day) == (
        len(src),
        TICKS.name,
        CU,
        DAY1,
    )
    assert stats.bytes == Path(stats.location).stat().st_size > 0
    assert (
        Path(stats.location)
        == store.root / TICKS.name / "symbol=SHFE_cu" / f"trading_day={DAY1}" / PART_FILE
    )


def test_level1_frame_gets_nan_levels_and_reads_back(store: EmbeddedStore) -> None:
    src = tick_frame(SR, five_levels=False)
    assert "bid_price2" not in src.columns
    store.write_partition(TICKS, SR, DAY1, src)
    back = store.read_partition(TICKS, SR, DAY1)
    assert list(back.columns) == TICKS.columns
    assert back["bid_price2"].isna().all() and back["ask_volume5"].isna().all()
    np.testing.assert_array_equal(back["bid_price1"].to_numpy(), src["bid_price1"].to_numpy())


def test_file_schema_is_exact_and_names_the_layout(store: EmbeddedStore) -> None:
    stats = store.write_partition(TICKS, CU, DAY1, tick_frame())
    on_disk = pq.read_schema(stats.location)
    want = arrow_schema(TICKS)
    assert on_disk.names == TICKS.columns
    assert [f.type for f in on_disk] == [f.type for f in want]
    assert on_disk.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert on_disk.field("bid_price5").nullable and not on_disk.field("id").nullable
    assert on_disk.metadata[b"ghtrader.schema_hash"] == want.metadata[b"ghtrader.schema_hash"]
    assert pq.read_metadata(stats.location).row_group(0).column(2).compression == "ZSTD"


def test_absent_partition_reads_as_empty_frame_with_schema(store: EmbeddedStore) -> None:
    back = store.read_partition(TICKS, CU, DAY1)
    assert back.empty and list(back.columns) == TICKS.columns
    assert str(back["ts"].dtype) == "datetime64[ns, UTC]" and str(back["id"].dtype) == "int64"


# ------------------------------------------------------------------ idempotency and replace


def test_writing_twice_leaves_one_file_with_the_same_rows(store: EmbeddedStore) -> None:
    src = tick_frame()
    first = store.write_partition(TICKS, CU, DAY1, src)
    second = store.write_partition(TICKS, CU, DAY1, src)
    part_dir = Path(first.location).parent
    assert files_in(part_dir) == [PART_FILE]
    assert first.location == second.location
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU, DAY1), conform(src, TICKS))
    assert store.partitions(TICKS, CU) == [DAY1]


def test_rewrite_with_fewer_rows_replaces_the_partition(store: EmbeddedStore) -> None:
    store.write_partition(TICKS, CU, DAY1, tick_frame(n=300, seed=1))
    smaller = tick_frame(n=40, seed=2)
    store.write_partition(TICKS, CU, DAY1, smaller)
    back = store.read_partition(TICKS, CU, DAY1)
    assert len(back) == 40
    pd.testing.assert_frame_equal(back, conform(smaller, TICKS))


def test_empty_frame_is_a_stored_empty_partition(store: EmbeddedStore) -> None:
    store.write_partition(TICKS, CU, DAY1, tick_frame(n=0))
    assert store.partitions(TICKS, CU) == [DAY1]
    assert store.read_partition(TICKS, CU, DAY1).empty


# ------------------------------------------------------------------ bad input keeps old data


@pytest.mark.parametrize(
    ("column", "bad_value"), [("symbol", AU), ("trading_day", DAY2), ("symbol", None)]
)
def test_rows_of_another_partition_are_rejected_and_old_data_kept(
    store: EmbeddedStore, column: str, bad_value: object
) -> None:
    good = tick_frame(seed=1)
    store.write_partition(TICKS, CU, DAY1, good)
    bad = tick_frame(seed=2)
    bad.loc[17, column] = bad_value
    with pytest.raises(StoreError) as err:
        store.write_partition(TICKS, CU, DAY1, bad)
    msg = str(err.value)
    assert TICKS.name in msg and CU in msg and DAY1 in msg and "row 17" in msg and column in msg
    if bad_value is not None:
        assert repr(bad_value) in msg
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU, DAY1), conform(good, TICKS))


def test_missing_required_column_and_null_keys_are_rejected(store: EmbeddedStore) -> None:
    with pytest.raises(StoreError, match=r"ticks_main_l5.*'id'"):
        store.write_partition(TICKS, CU, DAY1, tick_frame().drop(columns=["id"]))
    nulls = tick_frame()
    nulls["ts"] = nulls["ts"].astype(object)
    nulls.loc[3, "ts"] = None
    with pytest.raises(StoreError, match=r"ts.*non-nullable|non-nullable.*ts"):
        store.write_partition(TICKS, CU, DAY1, nulls)
    assert store.partitions(TICKS, CU) == []


def test_crash_mid_write_keeps_old_partition_and_leaves_no_residue(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tick_frame(seed=1)
    stats = store.write_partition(TICKS, CU, DAY1, old)
    part_dir = Path(stats.location).parent

    def fail(fd: int) -> None:  # the temp file is on disk, then making it durable fails
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(
        StoreError, match=r"ticks_main_l5 partition KQ.m@SHFE.cu/2024-01-02.*disk full"
    ):
        store.write_partition(TICKS, CU, DAY1, tick_frame(seed=2))
    with pytest.raises(StoreError):  # a first write that fails leaves no partition at all
        store.write_partition(TICKS, CU, DAY2, tick_frame(day=DAY2))
    monkeypatch.undo()

    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU, DAY1), conform(old, TICKS))
    assert files_in(part_dir) == [PART_FILE]
    assert store.partitions(TICKS, CU) == [DAY1]


def test_temp_files_of_a_killed_writer_are_ignored_then_cleaned(store: EmbeddedStore) -> None:
    stats = store.write_partition(TICKS, CU, DAY1, tick_frame(seed=1))
    part_dir = Path(stats.location).parent
    orphan = part_dir / ".part.parquet.99999.deadbeef.tmp"  # as left by kill -9
    orphan.write_bytes(b"PAR1 half a file")
    (part_dir.parent / f"trading_day={DAY2}").mkdir()  # a day dir whose first write died
    (part_dir.parent / f"trading_day={DAY2}" / orphan.name).write_bytes(b"junk")

    assert store.partitions(TICKS, CU) == [DAY1]
    assert len(store.read_table(TICKS, [CU])) == len(tick_frame(seed=1))
    assert store.coverage([CU])["n_days"].iloc[0] == 1

    store.write_partition(TICKS, CU, DAY1, tick_frame(seed=3))
    assert not orphan.exists()


def test_writer_gives_up_with_a_clear_error_when_the_partition_stays_locked(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, lock_timeout_seconds=0.2)
    old = tick_frame(seed=1)
    store.write_partition(TICKS, CU, DAY1, old)
    lock = tmp_path / LOCK_DIR / TICKS.name / "symbol=SHFE_cu" / f"trading_day={DAY1}.lock"
    assert lock.exists()
    with (
        FileLock(lock),
        pytest.raises(StoreError, match=r"partition KQ.m@SHFE.cu/2024-01-02.*lock"),
    ):
        store.write_partition(TICKS, CU, DAY1, tick_frame(seed=2))
    pd.testing.assert_frame_equal(store.read_partition(TICKS, CU, DAY1), conform(old, TICKS))


# ------------------------------------------------------------------ identifiers


@pytest.mark.parametrize(
    "symbol",
    [
        "../evil",
        "KQ.m@SHFE.cu/../../x",
        "a/b",
        "",
        "..",
        "SHFE_cu",
        " KQ.m@SHFE.cu",
        "KQ.m@XXX.cu",
        "x\x00",
    ],
)
def test_bad_symbols_are_rejected_before_any_path_is_built(
    store: EmbeddedStore, symbol: str
) -> None:
    with pytest.raises(StoreError, match="symbol"):
        store.write_partition(TICKS, symbol, DAY1, tick_frame(symbol=symbol))
    with pytest.raises(StoreError):
        store.read_partition(TICKS, symbol, DAY1)
    assert list(store.root.rglob("*")) == []


@pytest.mark.parametrize(
    "day", ["2024-01-02/../../x", "2024-13-01", "20240102", "../2024-01-02", ""]
)
def test_bad_days_are_rejected(store: EmbeddedStore, day: str) -> None:
    frame = tick_frame()
    frame["trading_day"] = day
    with pytest.raises(StoreError, match="trading day"):
        store.write_partition(TICKS, CU, day, frame)
    with pytest.raises(StoreError, match="trading day"):
        store.read_table(TICKS, [CU], start_day=day)
    assert list(store.root.rglob("*")) == []


def test_table_names_must_be_plain_identifiers(store: EmbeddedStore) -> None:
    evil = TableSpec(
        name="../escape",
        schema=TICKS.schema,
        timestamp="ts",
        dedup_keys=TICKS.dedup_keys,
        symbol_columns=TICKS.symbol_columns,
    )
    with pytest.raises(StoreError, match="table name"):
        store.write_partition(evil, CU, DAY1, tick_frame())
    assert not (store.root.parent / "escape").exists()


def test_plain_symbols_are_stored_verbatim(store: EmbeddedStore) -> None:
    stats = store.write_partition(TICKS, "SHFE.cu2402", DAY1, tick_frame(symbol="SHFE.cu2402"))
    assert Path(stats.location).parent.parent.name == "symbol=SHFE.cu2402"
    assert store.read_partition(TICKS, "SHFE.cu2402", DAY1)["symbol"].eq("SHFE.cu2402").all()


# ------------------------------------------------------------------ multi-partition reads


def test_read_table_prunes_by_symbol_and_inclusive_day_bounds(store: EmbeddedStore) -> None:
    for sym in (CU, AU):
        for day, seed in ((DAY1, 1), (DAY2, 2), (DAY3, 3)):
            store.write_partition(TICKS, sym, day, tick_frame(sym, day, n=50, seed=seed))

    got = store.read_table(TICKS, [CU], start_day=DAY2, end_day=DAY3)
    want = pd.concat(
        [conform(tick_frame(CU, d, n=50, seed=s), TICKS) for d, s in ((DAY2, 2), (DAY3, 3))],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(got, want)

    assert set(store.read_table(TICKS, start_day=DAY3)["trading_day"]) == {DAY3}
    assert set(store.read_table(TICKS, end_day=DAY1)["symbol"]) == {CU, AU}
    assert len(store.read_table(TICKS)) == 6 * 50
    nothing = store.read_table(TICKS, [CU], start_day="2025-01-01")
    assert nothing.empty and list(nothing.columns) == TICKS.columns
    assert store.partitions(TICKS, AU) == [DAY1, DAY2, DAY3]


def test_sql_views_use_stored_symbols_and_bind_parameters(store: EmbeddedStore) -> None:
    for sym in (CU, AU):
        for day in (DAY1, DAY2):
            store.write_partition(TICKS, sym, day, tick_frame(sym, day, n=20))
    out = store.sql(
        "SELECT symbol, trading_day, count(*) AS n FROM ticks_main_l5 "
        "WHERE symbol = ? AND trading_day >= ? GROUP BY ALL",
        [CU, DAY2],
    )
    assert out.to_dict("records") == [{"symbol": CU, "trading_day": DAY2, "n": 20}]
    with pytest.raises(StoreError, match="SQL"):
        store.sql("SELECT * FROM no_such_table")


# ------------------------------------------------------------------ coverage and latest


def test_coverage_for_many_symbols_in_one_call(store: EmbeddedStore) -> None:
    written = {
        CU: [
            (DAY1, tick_frame(CU, DAY1, n=120, seed=1)),
            (DAY3, tick_frame(CU, DAY3, n=80, seed=2)),
        ],
        AU: [(DAY2, tick_frame(AU, DAY2, n=33, seed=3))],
    }
    for sym, parts in written.items():
        for day, frame in parts:
            store.write_partition(TICKS, sym, day, frame)

    cov = store.coverage([CU, SR, AU])
    assert (
        tuple(cov.columns)
        == COVERAGE_COLUMNS
        == (
            "symbol",
            "first_day",
            "last_day",
            "n_days",
            "rows",
            "first_ts",
            "last_ts",
        )
    )
    assert cov["symbol"].tolist() == [CU, SR, AU]
    by = cov.set_index("symbol")
    for sym, parts in written.items():
        frames = [f for _, f in parts]
        assert by.loc[sym, "first_day"] == parts[0][0] and by.loc[sym, "last_day"] == parts[-1][0]
        assert by.loc[sym, "n_days"] == len(parts)
        assert by.loc[sym, "rows"] == sum(len(f) for f in frames)
        assert by.loc[sym, "first_ts"] == min(f["ts"].min() for f in frames)
        assert by.loc[sym, "last_ts"] == max(f["ts"].max() for f in frames)
    assert by.loc[SR, "n_days"] == 0 and by.loc[SR, "rows"] == 0
    assert pd.isna(by.loc[SR, "first_day"]) and pd.isna(by.loc[SR, "last_ts"])
    assert str(cov["last_ts"].dtype) == "datetime64[ns, UTC]"


def test_coverage_is_cached_and_every_write_invalidates_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache_ttl_seconds=None)
    store.write_partition(TICKS, CU, DAY1, tick_frame(n=10))
    first = store.coverage([CU])
    hits = store.cache.hits
    again = store.coverage([CU])
    assert store.cache.hits == hits + 1
    again.loc[0, "rows"] = -1  # callers get copies: mutating one does not poison the cache
    assert store.coverage([CU])["rows"].iloc[0] == 10

    store.write_partition(TICKS, CU, DAY2, tick_frame(day=DAY2, n=7))
    assert len(store.cache) == 0
    after = store.coverage([CU])
    assert (first["rows"].iloc[0], after["rows"].iloc[0]) == (10, 17)
    assert after["last_day"].iloc[0] == DAY2


def _write_in_child(root: str, symbol: str, day: str, n: int, seed: int) -> None:
    """Runs in a spawned process: its own store, so only the catalog's generation counter
    can tell the parent's cache about this write."""
    store = EmbeddedStore(Path(root))
    store.write_partition(TICKS, symbol, day, tick_frame(symbol, day, n=n, seed=seed))


def test_write_in_another_process_invalidates_via_catalog_generation(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, cache_ttl_seconds=None)  # no TTL: only the generation helps
    store.write_partition(TICKS, CU, DAY1, tick_frame(n=10))
    assert store.coverage([CU])["rows"].iloc[0] == 10
    assert store.latest([CU])["trading_day"].tolist() == [DAY1]
    token = store.generation(TICKS)

    child = mp.get_context("spawn").Process(
        target=_write_in_child, args=(str(tmp_path), CU, DAY2, 5, 9)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0

    assert store.generation(TICKS) != token
    assert store.coverage([CU])["rows"].iloc[0] == 15
    assert store.latest([CU])["trading_day"].tolist() == [DAY2]


def test_latest_returns_last_tick_per_symbol_in_order_asked(store: EmbeddedStore) -> None:
    store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=50, seed=1))
    newest = tick_frame(CU, DAY2, n=40_000, seed=2)  # several row groups
    newest.loc[len(newest) - 1, "ts"] = newest["ts"].iloc[-2]  # a tie on ts: later row wins
    newest = newest.sample(frac=1.0, random_state=0).reset_index(drop=True)  # unsorted file
    store.write_partition(TICKS, CU, DAY2, newest)
    au = tick_frame(AU, DAY1, n=30, seed=3)
    store.write_partition(TICKS, AU, DAY1, au)
    store.write_partition(TICKS, AU, DAY2, tick_frame(AU, DAY2, n=0))  # empty newest day

    got = store.latest([AU, SR, CU])
    assert got["symbol"].tolist() == [AU, CU]
    assert list(got.columns) == TICKS.columns and str(got["ts"].dtype) == "datetime64[ns, UTC]"
    top = newest["ts"].max()
    tied = newest[newest["ts"] == top]
    want_cu = conform(tied.iloc[[-1]], TICKS)
    pd.testing.assert_frame_equal(got.iloc[[1]].reset_index(drop=True), want_cu)
    assert got["id"].iloc[0] == au["id"].iloc[-1]
    assert store.latest([SR]).empty


def test_tables_other_than_ticks_round_trip(store: EmbeddedStore) -> None:
    ts = pd.Timestamp(f"{DAY1} 07:00", tz="UTC")
    manifest = pd.DataFrame(
        {
            "symbol": [CU],
            "trading_day": [DAY1],
            "ts": [ts],
            "underlying": ["SHFE.cu2402"],
            "source": ["test"],
            "rows": [300],
            "first_tick": [pd.NaT],
            "last_tick": [ts],
            "schema_hash": ["abc"],
            "code_version": ["1"],
            "checks_passed": [5],
            "checks_failed": [0],
            "check_outcomes": ['{"gaps": {"passed": true}}'],
            "created_at": [ts],
        }
    )
    store.write_partition(MANIFESTS, CU, DAY1, manifest)
    pd.testing.assert_frame_equal(
        store.read_partition(MANIFESTS, CU, DAY1), conform(manifest, MANIFESTS)
    )
    assert store.partitions(TICKS, CU) == []  # tables are separate


# ------------------------------------------------------------------ concurrency


def _hammer(root: str, worker: int, rounds: int, barrier: Any) -> None:
    """One writer process: its own partition, and the shared one, several times each."""
    store = EmbeddedStore(Path(root))
    barrier.wait(300)  # spawned interpreters start slowly on a loaded 2-core machine
    for r in range(rounds):
        store.write_partition(TICKS, CU, DAY1, tick_frame(CU, DAY1, n=3000, seed=100 + worker))
        own_day = f"2024-02-{worker + 1:02d}"
        store.write_partition(TICKS, AU, own_day, tick_frame(AU, own_day, n=1000, seed=r))


def test_concurrent_writers_in_several_processes(tmp_path: Path) -> None:
    workers, rounds = 5, 3
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_hammer, args=(str(tmp_path), w, rounds, barrier))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(400)
    assert [p.exitcode for p in procs] == [0] * workers

    store = EmbeddedStore(tmp_path)
    shared = store.read_partition(TICKS, CU, DAY1)
    candidates = [
        conform(tick_frame(CU, DAY1, n=3000, seed=100 + w), TICKS) for w in range(workers)
    ]
    assert any(shared.equals(c) for c in candidates)

    own_days = [f"2024-02-{w + 1:02d}" for w in range(workers)]
    assert store.partitions(TICKS, AU) == own_days
    for day in own_days:
        got = store.read_partition(TICKS, AU, day)
        pd.testing.assert_frame_equal(
            got, conform(tick_frame(AU, day, n=1000, seed=rounds - 1), TICKS)
        )
    for part in (tmp_path / TICKS.name).glob("symbol=*/trading_day=*"):
        assert files_in(part) == [PART_FILE], part
    assert store.coverage([CU, AU])["n_days"].tolist() == [1, workers]

"""The research read API (ghtrader_assets.ticks) and `ghtrader export`, on both stores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghtrader_assets.schema import TICKS
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.ticks import ReadError, read_ticks
from ghtrader_assets_tests.test_store_embedded import tick_frame

CU = "KQ.m@SHFE.cu"
DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


def _with_underlying(day: str, contract: str, seed: int) -> pd.DataFrame:
    return tick_frame(CU, day, n=50, seed=seed).assign(underlying=contract)


@pytest.fixture
def store(tmp_path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "store")
    # The roll happens between day 2 and day 3: cu2402 is main first, then cu2403.
    for i, (day, contract) in enumerate(
        zip(DAYS, ("SHFE.cu2402", "SHFE.cu2402", "SHFE.cu2403"), strict=True)
    ):
        s.write_partition(TICKS, CU, day, _with_underlying(day, contract, seed=i))
    yield s
    s.close()


def test_main_continuous_range_keeps_the_underlying_and_orders_rows(store):
    df = read_ticks(CU, DAYS[0], DAYS[2], store=store)
    assert list(df.columns) == TICKS.columns
    assert len(df) == 150
    assert df["trading_day"].tolist() == sorted(df["trading_day"].tolist())
    assert df.groupby("trading_day")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert set(df["underlying"]) == {"SHFE.cu2402", "SHFE.cu2403"}
    assert str(df["ts"].dt.tz) == "UTC"
    # Exactly the stored rows, with the nanoseconds intact.
    stored = store.read_partition(TICKS, CU, DAYS[1])
    got = df[df["trading_day"] == DAYS[1]].reset_index(drop=True)
    assert got["datetime"].tolist() == stored["datetime"].tolist()
    assert got["last_price"].tolist() == stored["last_price"].tolist()


def test_end_defaults_to_start_and_bounds_are_inclusive(store):
    assert set(read_ticks(CU, DAYS[1], store=store)["trading_day"]) == {DAYS[1]}
    assert set(read_ticks(CU, DAYS[1], DAYS[2], store=store)["trading_day"]) == set(DAYS[1:])


def test_one_contract_returns_only_its_days(store):
    df = read_ticks("SHFE.cu2403", DAYS[0], DAYS[2], store=store)
    assert set(df["trading_day"]) == {DAYS[2]}
    assert set(df["underlying"]) == {"SHFE.cu2403"}
    assert read_ticks("SHFE.cu2412", DAYS[0], DAYS[2], store=store).empty


def test_projection_and_arrow_output(store):
    tbl = read_ticks(
        CU, DAYS[0], DAYS[2], columns=["ts", "last_price"], output="arrow", store=store
    )
    assert isinstance(tbl, pa.Table)
    assert tbl.column_names == ["ts", "last_price"]
    assert tbl.num_rows == 150
    df = read_ticks("SHFE.cu2402", DAYS[0], DAYS[2], columns=["last_price"], store=store)
    assert list(df.columns) == ["last_price"] and len(df) == 100


def test_empty_range_keeps_the_schema(store):
    df = read_ticks(CU, "2023-01-03", "2023-01-05", columns=["ts", "volume"], store=store)
    assert df.empty and list(df.columns) == ["ts", "volume"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": "cu"}, "neither a main symbol"),
        ({"symbol": "KQ.m@SHFE.xx"}, "SHFE.xx.*nearest"),
        ({"symbol": "SHFE.cx2507"}, "SHFE.cx2507"),
        ({"columns": ["last_prise"]}, "nearest: last_price"),
        ({"columns": "ts"}, "list of names"),
        ({"start": "2024-13-01"}, "start='2024-13-01'"),
        ({"end": "2023-12-01"}, "before start"),
        ({"output": "polars"}, "choose 'pandas' or 'arrow'"),
    ],
)
def test_bad_requests_name_what_is_wrong(store, kwargs, message):
    args = {"symbol": CU, "start": DAYS[0], "end": None, "store": store, **kwargs}
    with pytest.raises(ReadError, match=message):
        read_ticks(args.pop("symbol"), args.pop("start"), args.pop("end"), **args)


def test_questdb_store_gives_the_same_rows(tmp_path):
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets_tests.fake_questdb import FakeQuestDB

    db = FakeQuestDB()
    store = QuestDBStore(
        QuestDBSettings(host="fake-read", transport="qwp", cache_ttl=None),
        sql=db,
        sender_factory=db.sender,
        qwp_connect=lambda _settings: db.qwp(),
        sleep=lambda _seconds: None,
    )
    store.ensure_tables()
    for i, day in enumerate(DAYS):
        store.write_partition(TICKS, CU, day, _with_underlying(day, "SHFE.cu2402", seed=i))
    df = read_ticks(
        CU, DAYS[0], DAYS[2], columns=["trading_day", "datetime", "last_price"], store=store
    )
    assert len(df) == 150
    expected = pd.concat(_with_underlying(d, "SHFE.cu2402", seed=i) for i, d in enumerate(DAYS))
    assert df["datetime"].tolist() == expected["datetime"].tolist()


def test_export_cli_writes_parquet_and_csv(store, tmp_path, monkeypatch, capsys):
    from ghtrader_assets.cli import main

    monkeypatch.setenv("GHTRADER_DATA_DIR", str(store.root.parent))
    out = tmp_path / "cu.parquet"
    assert main(["export", CU, "--start", DAYS[0], "--end", DAYS[2], "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 150
    csv_out = tmp_path / "cu.csv"
    rc = main(
        [
            "export",
            "SHFE.cu2403",
            "--start",
            DAYS[0],
            "--end",
            DAYS[2],
            "--columns",
            "ts,last_price",
            "--out",
            str(csv_out),
        ]
    )
    assert rc == 0
    back = pd.read_csv(csv_out)
    assert list(back.columns) == ["ts", "last_price"] and len(back) == 50
    assert "150 rows" in capsys.readouterr().out
    # A user error is one line on stderr and exit code 2.
    assert main(["export", CU, "--start", DAYS[0], "--columns", "nope", "--out", str(out)]) == 2
    assert "no tick column 'nope'" in capsys.readouterr().err
    for bad in (tmp_path / "absent" / "x.parquet", Path("/proc/x.csv")):
        assert main(["export", CU, "--start", DAYS[0], "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "absent").exists()

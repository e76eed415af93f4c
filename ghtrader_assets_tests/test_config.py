"""Settings from GHTRADER_* variables, symbol parsing, and resources that wrap sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.resources import SourceResource, env_or
from ghtrader_assets.sources.latency import LatencySource
from ghtrader_assets.symbols import (
    SymbolError,
    parse_contract,
    parse_main_symbol,
    parse_universe,
)


def test_defaults_run_the_demo_with_no_configuration(tmp_path):
    settings = Settings.from_env({"HOME": str(tmp_path)})
    assert (settings.store, settings.source) == ("embedded", "simulated")
    assert [s.raw for s in settings.universe][:2] == ["KQ.m@SHFE.cu", "KQ.m@SHFE.au"]
    assert settings.days_per_run == 1


def test_env_overrides(tmp_path):
    settings = Settings.from_env(
        {
            "GHTRADER_STORE": "QuestDB",
            "GHTRADER_SOURCE": "csv",
            "GHTRADER_CSV_DIR": str(tmp_path),
            "GHTRADER_DATA_DIR": str(tmp_path / "d"),
            "GHTRADER_UNIVERSE": "KQ.m@DCE.m, KQ.m@DCE.m ,KQ.m@INE.sc",
            "GHTRADER_DAYS_PER_RUN": "5",
            "GHTRADER_SOURCE_LATENCY_SECONDS": "2.5",
        }
    )
    assert settings.store == "questdb" and settings.source == "csv"
    assert settings.csv_dir == Path(tmp_path)
    assert settings.store_dir == tmp_path / "d" / "store"
    assert [s.raw for s in settings.universe] == ["KQ.m@DCE.m", "KQ.m@INE.sc"]
    assert settings.days_per_run == 5 and settings.source_latency_seconds == 2.5


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("GHTRADER_STORE", "mysql", "GHTRADER_STORE"),
        ("GHTRADER_SOURCE", "bloomberg", "GHTRADER_SOURCE"),
        ("GHTRADER_DAYS_PER_RUN", "0", "GHTRADER_DAYS_PER_RUN"),
        ("GHTRADER_DAYS_PER_RUN", "many", "GHTRADER_DAYS_PER_RUN"),
        ("GHTRADER_SOURCE_LATENCY_SECONDS", "-1", "GHTRADER_SOURCE_LATENCY_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(name, value, needle):
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env({name: value})


def test_bad_universe_names_the_symbol():
    with pytest.raises(SettingsError, match="GHTRADER_UNIVERSE: .*SHFE.cu2602"):
        Settings.from_env({"GHTRADER_UNIVERSE": "KQ.m@SHFE.cu,SHFE.cu2602"})


def test_symbol_parsing():
    cu = parse_main_symbol("KQ.m@SHFE.cu")
    assert (cu.exchange, cu.product, cu.key, str(cu)) == ("SHFE", "cu", "SHFE_cu", "KQ.m@SHFE.cu")
    assert parse_contract("CZCE.SR605").month == "605"
    for bad in ("KQ.m@NYSE.cu", "KQ.i@SHFE.cu", "", "KQ.m@SHFE.cu; drop table"):
        with pytest.raises(SymbolError, match="not a main continuous symbol"):
            parse_main_symbol(bad)
    with pytest.raises(SymbolError, match="names no symbol"):
        parse_universe(" , ")


def test_env_or_uses_envvar_only_when_set(monkeypatch):
    monkeypatch.delenv("GHTRADER_TQ_PASSWORD", raising=False)
    assert env_or("GHTRADER_TQ_PASSWORD", "") == ""
    monkeypatch.setenv("GHTRADER_TQ_PASSWORD", "s3cret")
    ref = env_or("GHTRADER_TQ_PASSWORD", "")
    assert "s3cret" not in repr(ref)  # an EnvVar reference, resolved by Dagster at run time
    assert ref.get_value() == "s3cret"


def test_latency_source_delays_each_download(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("ghtrader_assets.sources.latency.time.sleep", slept.append)
    resource = SourceResource(latency_seconds=1.5)
    cu = parse_main_symbol("KQ.m@SHFE.cu")
    day = dt.date(2026, 3, 2)
    with resource.open(cu) as source:
        assert isinstance(source, LatencySource) and source.name == "simulated"
        entry = source.roll_entry(cu, day)
        assert slept == []
        ticks = source.ticks(entry)
    assert slept == [1.5] and len(ticks) > 0
    with pytest.raises(ValueError, match=">= 0"):
        LatencySource(source.inner, -1)


def test_questdb_settings_reach_the_store_resource(monkeypatch, tmp_path):
    from ghtrader_assets.definitions import build_resources

    for name, value in {
        "GHTRADER_QDB_HOST": "qdb.internal",
        "GHTRADER_QDB_TLS": "true",
        "GHTRADER_QDB_TABLE_PREFIX": "prod_",
        "GHTRADER_QDB_WAL_TIMEOUT": "15",
        "GHTRADER_QDB_BATCH_ROWS": "60000",
        "GHTRADER_QDB_PASSWORD": "pw-not-for-logs",
    }.items():
        monkeypatch.setenv(name, value)
    store = build_resources(Settings(store="questdb", data_dir=tmp_path))["store"]
    assert (store.qdb_tls, store.qdb_table_prefix) == (True, "prod_")
    assert (store.qdb_wal_timeout, store.qdb_batch_rows) == (15.0, 60000)
    # The password stays an EnvVar reference in the definitions, and resolved values are
    # masked wherever a resource is printed.
    assert "pw-not-for-logs" not in repr(store)
    resolved = SourceResource(kind="tqsdk", tq_user="u", tq_password="pw-not-for-logs")
    assert "pw-not-for-logs" not in repr(resolved) and "pw-not-for-logs" not in str(resolved)

"""Every ``GHTRADER_QDB_*`` variable is checked when the definitions load (issue 11).

A missing host with ``GHTRADER_STORE=questdb``, a host with a scheme or a port in it, a
TLS or transport value that is not one of the accepted words, a port out of range: each
used to surface at the first write of a run (or never: ``TLS=maybe`` meant "off"). Now
each fails while the definitions load, naming the variable, and the CLI prints one line
and exits with code 2.
"""

from __future__ import annotations

import pytest

from ghtrader_assets import cli
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.stores.questdb.settings import QuestDBSettings, QuestDBSettingsError

QDB = {"GHTRADER_STORE": "questdb", "GHTRADER_QDB_HOST": "db.example"}

BAD = [
    ({"GHTRADER_STORE": "questdb"}, "GHTRADER_STORE=questdb needs GHTRADER_QDB_HOST"),
    ({**QDB, "GHTRADER_QDB_HOST": "db.example:9000"}, "GHTRADER_QDB_HOST='db.example:9000'"),
    ({**QDB, "GHTRADER_QDB_HOST": "http://db.example"}, "GHTRADER_QDB_HOST='http://db"),
    ({**QDB, "GHTRADER_QDB_HOST": "db;x=1"}, "GHTRADER_QDB_HOST='db;x=1'"),
    ({**QDB, "GHTRADER_QDB_ILP_PORT": "0"}, "GHTRADER_QDB_ILP_PORT='0': a port must be 1-65535"),
    ({**QDB, "GHTRADER_QDB_PG_PORT": "70000"}, "GHTRADER_QDB_PG_PORT='70000'"),
    ({**QDB, "GHTRADER_QDB_TLS": "maybe"}, "GHTRADER_QDB_TLS='maybe': expected one of"),
    ({**QDB, "GHTRADER_QDB_TRANSPORT": "grpc"}, "GHTRADER_QDB_TRANSPORT='grpc'"),
    ({**QDB, "GHTRADER_QDB_BATCH_ROWS": "0"}, "GHTRADER_QDB_BATCH_ROWS='0'"),
    ({**QDB, "GHTRADER_QDB_WAL_TIMEOUT": "nan"}, "GHTRADER_QDB_WAL_TIMEOUT='nan'"),
    ({**QDB, "GHTRADER_QDB_WAL_TIMEOUT": "-1"}, "GHTRADER_QDB_WAL_TIMEOUT='-1'"),
    ({**QDB, "GHTRADER_QDB_CACHE_TTL": "-5"}, "GHTRADER_QDB_CACHE_TTL='-5'"),
    ({**QDB, "GHTRADER_QDB_TABLE_PREFIX": "a-b"}, "GHTRADER_QDB_TABLE_PREFIX='a-b'"),
    ({**QDB, "GHTRADER_QDB_USER": "ad min"}, "GHTRADER_QDB_USER='ad min'"),
]


@pytest.mark.parametrize(("env", "message"), BAD)
def test_settings_load_names_the_qdb_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        Settings.load(env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_good_values_load_and_keep_their_meaning():
    env = {**QDB, "GHTRADER_QDB_TLS": "off", "GHTRADER_QDB_TRANSPORT": "QWP"}
    Settings.load(env)
    settings = QuestDBSettings.from_env(env)
    assert settings.tls is False and settings.transport == "qwp"
    assert QuestDBSettings.from_env({**QDB, "GHTRADER_QDB_TLS": "yes"}).tls is True
    assert QuestDBSettings.from_env({**QDB, "GHTRADER_QDB_HOST": "[::1]"}).host == "[::1]"
    # The embedded store does not need a QuestDB host.
    assert QuestDBSettings.from_env({"GHTRADER_STORE": "embedded"}).host == "localhost"


def test_the_password_never_shows_in_a_settings_error():
    with pytest.raises(QuestDBSettingsError) as caught:
        QuestDBSettings.from_env(
            {**QDB, "GHTRADER_QDB_PASSWORD": "s3cret", "GHTRADER_QDB_TLS": "x"}
        )
    assert "s3cret" not in str(caught.value)


def test_definitions_refuse_to_load_without_a_host(monkeypatch, tmp_path):
    from ghtrader_assets.definitions import build_definitions

    monkeypatch.delenv("GHTRADER_QDB_HOST", raising=False)
    monkeypatch.setenv("GHTRADER_STORE", "questdb")
    with pytest.raises(SettingsError, match="GHTRADER_QDB_HOST"):
        build_definitions(Settings(data_dir=tmp_path, store="questdb"))


@pytest.mark.parametrize(("env", "message"), BAD[:1] + BAD[6:8])
def test_cli_prints_one_line_and_exits_2(monkeypatch, capsys, tmp_path, env, message):
    monkeypatch.delenv("GHTRADER_QDB_HOST", raising=False)
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ghtrader: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err

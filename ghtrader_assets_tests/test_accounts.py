"""``GHTRADER_TQ_ACCOUNTS``: partitioning the universe between TqSdk accounts, checked at load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ghtrader_assets.accounts import AccountsError, accounts_from_env, parse_accounts
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.symbols import parse_universe

UNIVERSE = tuple(parse_universe("KQ.m@SHFE.cu,KQ.m@SHFE.au,KQ.m@SHFE.ag,KQ.m@DCE.m,KQ.m@CZCE.SR"))


CREDENTIALS = {
    f"GHTRADER_TQ_{kind}_{name}": f"{kind.lower()}-{name}"
    for kind in ("USER", "PASSWORD")
    for name in ("A", "B")
}


def owners(text: str) -> dict[str, list[str]]:
    accounts = parse_accounts(text, UNIVERSE)
    return {a.name: [s.raw for s in a.symbols] for a in accounts.accounts}


def test_symbols_exchanges_and_the_rest_partition_the_universe():
    assert owners("a:KQ.m@SHFE.cu,KQ.m@SHFE.au,KQ.m@SHFE.ag;b:KQ.m@DCE.m,KQ.m@CZCE.SR") == {
        "a": ["KQ.m@SHFE.cu", "KQ.m@SHFE.au", "KQ.m@SHFE.ag"],
        "b": ["KQ.m@DCE.m", "KQ.m@CZCE.SR"],
    }
    # Exchanges (any case), spaces and a trailing ';' are fine; GFEX has no symbol yet.
    assert owners(" a : shfe , INE ; b: DCE,CZCE,GFEX ;") == {
        "a": ["KQ.m@SHFE.cu", "KQ.m@SHFE.au", "KQ.m@SHFE.ag"],
        "b": ["KQ.m@DCE.m", "KQ.m@CZCE.SR"],
    }


def test_the_most_specific_item_decides():
    # ag named on b wins over SHFE on a; '*' only takes what nothing else names.
    assert owners("a:SHFE;b:KQ.m@SHFE.ag,DCE;c:*") == {
        "a": ["KQ.m@SHFE.cu", "KQ.m@SHFE.au"],
        "b": ["KQ.m@SHFE.ag", "KQ.m@DCE.m"],
        "c": ["KQ.m@CZCE.SR"],
    }


def test_pools_variables_and_lookup_per_account():
    accounts = parse_accounts("main:SHFE;backup_2:*", UNIVERSE)
    cu, m = UNIVERSE[0], UNIVERSE[3]
    assert accounts.pool_of(cu) == "tqsdk_main" and accounts.pool_of(m) == "tqsdk_backup_2"
    assert accounts.pools == ("tqsdk_main", "tqsdk_backup_2")
    backup = accounts.account_of(m)
    assert (backup.user_variable, backup.password_variable) == (
        "GHTRADER_TQ_USER_BACKUP_2",
        "GHTRADER_TQ_PASSWORD_BACKUP_2",
    )
    env = {"GHTRADER_TQ_USER_MAIN": "u", "GHTRADER_TQ_PASSWORD_MAIN": "p"}
    assert accounts.missing_credentials(env) == [
        "GHTRADER_TQ_USER_BACKUP_2",
        "GHTRADER_TQ_PASSWORD_BACKUP_2",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a symbol on two accounts, explicitly
        ("a:KQ.m@SHFE.cu,SHFE;b:KQ.m@SHFE.cu,*", "KQ.m@SHFE.cu is on accounts 'a' and 'b'"),
        # a symbol not in the universe
        ("a:KQ.m@SHFE.zn,*", "names KQ.m@SHFE.zn, which is not in GHTRADER_UNIVERSE"),
        # a malformed item
        ("a:SHFE.cu2504,*", "'SHFE.cu2504' is neither an exchange"),
        ("a:NYMEX;b:*", "'NYMEX' is neither an exchange"),
        # symbols without an account, and no '*': no implicit default
        ("a:SHFE;b:DCE", "no account for KQ.m@CZCE.SR"),
        ("a:KQ.m@SHFE.cu", "no account for KQ.m@SHFE.au, KQ.m@SHFE.ag, KQ.m@DCE.m, KQ.m@CZCE.SR"),
        # an exchange or the rest on two accounts
        ("a:SHFE,DCE;b:SHFE,*", "exchange SHFE is on accounts 'a' and 'b'"),
        ("a:*;b:*", "'*' (the rest of the universe) is on accounts 'a' and 'b'"),
        # names and shapes
        ("A:*", "account name 'A' must be lower-case"),
        ("my-acct:*", "account name 'my-acct'"),
        ("a:SHFE;a:*", "account 'a' appears twice"),
        ("a:KQ.m@SHFE.cu,KQ.m@SHFE.cu;b:*", "account 'a' names KQ.m@SHFE.cu twice"),
        ("a:SHFE,shfe;b:*", "account 'a' lists shfe twice"),
        ("SHFE,DCE", "entry 'SHFE,DCE' is not account:items"),
        ("a:;b:*", "account 'a' lists no symbol"),
        (";", "names no account"),
        # an account left without symbols
        ("a:*;b:GFEX", "account(s) 'b' get no symbol of GHTRADER_UNIVERSE"),
    ],
)
def test_bad_mappings_name_what_is_wrong(text, message):
    with pytest.raises(AccountsError, match="GHTRADER_TQ_ACCOUNTS") as err:
        parse_accounts(text, UNIVERSE)
    assert message in str(err.value)
    assert isinstance(err.value, SettingsError)  # the CLI's one line and exit code 2


def test_accounts_only_with_tqsdk_without_the_single_account_variables_with_credentials():
    assert accounts_from_env({}, UNIVERSE, "tqsdk") is None
    env = {
        "GHTRADER_TQ_ACCOUNTS": "a:SHFE;b:*",
        "GHTRADER_TQ_USER_A": "alice",
        "GHTRADER_TQ_PASSWORD_A": "pw-a",
        "GHTRADER_TQ_USER_B": "bob",
        "GHTRADER_TQ_PASSWORD_B": "pw-b",
    }
    assert accounts_from_env(env, UNIVERSE, "tqsdk").names == ("a", "b")
    with pytest.raises(AccountsError, match="GHTRADER_SOURCE=simulated"):
        accounts_from_env(env, UNIVERSE, "simulated")
    with pytest.raises(AccountsError, match="together with GHTRADER_TQ_USER"):
        accounts_from_env({**env, "GHTRADER_TQ_USER": "u"}, UNIVERSE, "tqsdk")
    # A named account without its credentials fails at load, naming the variable only.
    blank = {**env, "GHTRADER_TQ_PASSWORD_B": " "}
    with pytest.raises(AccountsError, match="set GHTRADER_TQ_PASSWORD_B$") as err:
        accounts_from_env(blank, UNIVERSE, "tqsdk")
    assert "pw-a" not in str(err.value)


def test_settings_carry_the_accounts_and_each_symbols_pool(tmp_path):
    env = {
        "GHTRADER_DATA_DIR": str(tmp_path),
        "GHTRADER_SOURCE": "tqsdk",
        "GHTRADER_UNIVERSE": "KQ.m@SHFE.cu,KQ.m@DCE.m",
        "GHTRADER_TQ_ACCOUNTS": "a:SHFE;b:DCE",
        **CREDENTIALS,
    }
    settings = Settings.from_env(env)
    cu, m = settings.universe
    assert (settings.pool_of(cu), settings.pool_of(m)) == ("tqsdk_a", "tqsdk_b")
    assert settings.source_pools == ("tqsdk_a", "tqsdk_b")
    # The single-account form is unchanged: one pool named after the source.
    single = Settings.from_env({k: v for k, v in env.items() if "ACCOUNTS" not in k})
    assert single.tq_accounts is None
    assert (single.pool_of(cu), single.source_pools) == ("tqsdk", ("tqsdk",))
    # A symbol added to the universe but to no account fails at load, naming it.
    with pytest.raises(SettingsError, match="no account for KQ.m@CZCE.SR"):
        Settings.from_env({**env, "GHTRADER_UNIVERSE": "KQ.m@SHFE.cu,KQ.m@DCE.m,KQ.m@CZCE.SR"})


def _ghtrader(tmp_path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GHTRADER_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "GHTRADER_SOURCE": "tqsdk",
        "GHTRADER_UNIVERSE": "KQ.m@SHFE.cu,KQ.m@DCE.m",
        **env_extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "ghtrader_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_prints_one_line_and_exits_2_for_a_bad_mapping_or_missing_credentials(tmp_path):
    bad = _ghtrader(tmp_path, {"GHTRADER_TQ_ACCOUNTS": "a:SHFE;b:SHFE"}, "status")
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "exchange SHFE is on accounts 'a' and 'b'" in lines[0]
    assert "Traceback" not in bad.stderr
    # Credentials of account b missing: refused when the settings load, before any run,
    # naming the variables (never printing a value that is set).
    creds = {
        "GHTRADER_TQ_ACCOUNTS": "a:SHFE;b:DCE",
        "GHTRADER_TQ_USER_A": "alice",
        "GHTRADER_TQ_PASSWORD_A": "pw-of-alice",
    }
    missing = _ghtrader(tmp_path, creds, "demo", "--days", "1")
    assert missing.returncode == 2, missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "GHTRADER_TQ_USER_B, GHTRADER_TQ_PASSWORD_B" in lines[0]
    assert "pw-of-alice" not in missing.stderr + missing.stdout

"""Two TqSdk accounts in one code location, through Dagster and the fake TqApi: each symbol
downloads under its own account's credentials, in its account's pool, capped across runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import defaultdict

import pandas as pd
import pytest
from dagster._core.test_utils import instance_for_test

from ghtrader_assets import sessions
from ghtrader_assets.config import Settings, SettingsError
from ghtrader_assets.definitions import INGEST_JOB, build_definitions
from ghtrader_assets.resources import SourceResource, TqAccountConfig
from ghtrader_assets.schema import TICKS
from ghtrader_assets.sources import tqsdk as tqsdk_source
from ghtrader_assets.sources.tqsdk import MissingCredentialsError, TqSdkSource
from ghtrader_assets.stores.embedded import EmbeddedStore
from ghtrader_assets.symbols import parse_main_symbol
from ghtrader_assets_tests.fake_tqapi import FakeClock, FakeMarket, make_ticks

DAY = dt.date(2025, 3, 10)  # a Monday, long published in the fake's main-contract table
NOW = dt.datetime(2025, 11, 3, 10, 0)
CU, M = parse_main_symbol("KQ.m@SHFE.cu"), parse_main_symbol("KQ.m@DCE.m")
CONTRACT = {CU: "SHFE.cu2504", M: "DCE.m2505"}
ACCOUNTS = {"a": ("alice@example.com", "pw-of-alice"), "b": ("bob@example.com", "pw-of-bob")}


def session_ticks(contract: str, symbol, day: dt.date) -> pd.DataFrame:
    """One tick a second through every session of ``day``: a day that passes its checks."""
    times: list[pd.Timestamp] = []
    for window in sessions.session_windows(symbol.exchange, symbol.product, day):
        times.extend(pd.date_range(window.start, window.end, freq="1s", inclusive="left"))
    return make_ticks(contract, times)


@pytest.fixture
def market(tmp_path, monkeypatch) -> FakeMarket:
    """The fake TqSdk service behind every TqApi the source builds, with two accounts; each
    download is recorded with the account (user) that made it."""
    import tqsdk.data_series

    monkeypatch.setenv("GHTRADER_TQ_CACHE_DIR", str(tmp_path / "tqcache"))
    monkeypatch.setattr(tqsdk.data_series, "CACHE_DIR", str(tmp_path / "tqsdk-default"))
    m = FakeMarket(FakeClock(NOW.replace(tzinfo=dt.UTC)), accounts=dict(ACCOUNTS.values()))
    for symbol, contract in CONTRACT.items():
        m.set_rolls(symbol.raw, {dt.date(2024, 1, 2): contract})
        m.add_contract(contract, session_ticks(contract, symbol, DAY))
    m.downloads = defaultdict(list)  # user -> contracts downloaded

    def factory(user: str, password: str):
        api = m.api_factory(user, password)
        download = api.get_tick_data_series

        def recorded(symbol, *args, **kwargs):
            m.downloads[user].append(symbol)
            return download(symbol, *args, **kwargs)

        api.get_tick_data_series = recorded
        return api

    monkeypatch.setattr(tqsdk_source, "default_api_factory", factory)
    monkeypatch.setattr(tqsdk_source, "http_fetch", m.roll_fetcher)
    return m


@pytest.fixture
def two_accounts(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("GHTRADER_TQ_ACCOUNTS", "a:SHFE;b:*")
    for name, (user, password) in ACCOUNTS.items():
        monkeypatch.setenv(f"GHTRADER_TQ_USER_{name.upper()}", user)
        monkeypatch.setenv(f"GHTRADER_TQ_PASSWORD_{name.upper()}", password)
    return Settings.from_env(
        {
            "GHTRADER_DATA_DIR": str(tmp_path),
            "GHTRADER_SOURCE": "tqsdk",
            "GHTRADER_UNIVERSE": f"{CU.raw},{M.raw}",
            "GHTRADER_START_DATE": "2025-03-03",
            "GHTRADER_TQ_ACCOUNTS": "a:SHFE;b:*",
            **{
                f"GHTRADER_TQ_{kind}_{name.upper()}": value
                for name, pair in ACCOUNTS.items()
                for kind, value in zip(("USER", "PASSWORD"), pair, strict=True)
            },
        }
    )


def step_pools(defs) -> dict[str, str | None]:
    job = defs.resolve_job_def(INGEST_JOB)
    return {node.name: node.definition.pool for node in job.graph.nodes}


def test_each_symbol_downloads_under_its_own_account_in_its_accounts_pool(market, two_accounts):
    defs = build_definitions(two_accounts)
    pools = step_pools(defs)
    assert {n: p for n, p in pools.items() if p} == {
        "SHFE__cu_roll_schedule": "tqsdk_a",
        "SHFE__cu_ticks": "tqsdk_a",
        "DCE__m_roll_schedule": "tqsdk_b",
        "DCE__m_ticks": "tqsdk_b",
    }
    # The credentials are EnvVar references in the definitions, not values.
    source = defs.resources["source"]
    assert set(source.tq_accounts) == {"a", "b"}
    assert source.tq_accounts["a"].password == "GHTRADER_TQ_PASSWORD_A"  # the EnvVar's name
    with instance_for_test() as instance:
        result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            partition_key=DAY.isoformat(), instance=instance
        )
        assert result.success
        logs = " ".join(
            str(record.user_message) + str(record.dagster_event)
            for record in instance.all_logs(result.run_id)
        )
    # Every download went through the account of its symbol, and only that one.
    assert dict(market.downloads) == {
        "alice@example.com": ["SHFE.cu2504"],
        "bob@example.com": ["DCE.m2505"],
    }
    store = EmbeddedStore(two_accounts.data_dir / "store", cache=False)
    for symbol in (CU, M):
        assert store.partitions(TICKS, symbol.raw) == [DAY.isoformat()]
    assert "pw-of-alice" not in logs and "pw-of-bob" not in logs


def test_an_accounts_pool_caps_its_symbols_across_runs_not_the_other_accounts(market, two_accounts):
    """Another run holds account a's only slot: this run's b symbol downloads and is stored
    while its a symbol waits; once the slot is free the run completes."""
    defs = build_definitions(two_accounts)
    store = EmbeddedStore(two_accounts.data_dir / "store", cache=False)
    with instance_for_test() as instance:
        slots = instance.event_log_storage
        slots.set_concurrency_slots("tqsdk_a", 1)
        slots.set_concurrency_slots("tqsdk_b", 1)
        assert slots.claim_concurrency_slot("tqsdk_a", "other-run", "other-step").is_claimed
        outcome: dict[str, bool] = {}

        def launch() -> None:
            result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
                partition_key=DAY.isoformat(), instance=instance
            )
            outcome["success"] = result.success

        worker = threading.Thread(target=launch)
        worker.start()
        deadline = time.monotonic() + 120
        while not store.partitions(TICKS, M.raw):
            assert time.monotonic() < deadline, "account b's symbol never got its own slot"
            assert worker.is_alive(), f"the run ended early: {outcome}"
            time.sleep(0.2)
        assert slots.get_concurrency_info("tqsdk_a").pending_step_count >= 1
        assert store.partitions(TICKS, CU.raw) == []  # account a's symbol still waits
        assert market.downloads.get("alice@example.com", []) == []
        assert worker.is_alive()
        slots.free_concurrency_slot_for_step("other-run", "other-step")
        worker.join(180)
        assert outcome == {"success": True}
    assert store.partitions(TICKS, CU.raw) == [DAY.isoformat()]
    assert market.downloads["alice@example.com"] == ["SHFE.cu2504"]


def test_the_single_account_form_is_unchanged(market, tmp_path, monkeypatch):
    monkeypatch.setenv("GHTRADER_TQ_USER", "alice@example.com")
    monkeypatch.setenv("GHTRADER_TQ_PASSWORD", "pw-of-alice")
    settings = Settings.from_env(
        {
            "GHTRADER_DATA_DIR": str(tmp_path),
            "GHTRADER_SOURCE": "tqsdk",
            "GHTRADER_UNIVERSE": f"{CU.raw},{M.raw}",
            "GHTRADER_START_DATE": "2025-03-03",
        }
    )
    defs = build_definitions(settings)
    assert {p for p in step_pools(defs).values() if p} == {"tqsdk"}
    assert defs.resources["source"].tq_accounts == {}
    with instance_for_test() as instance:
        result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            partition_key=DAY.isoformat(), instance=instance
        )
    assert result.success
    assert sorted(market.downloads["alice@example.com"]) == ["DCE.m2505", "SHFE.cu2504"]


def test_bad_account_settings_fail_when_the_definitions_load(tmp_path, monkeypatch, two_accounts):
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GHTRADER_SOURCE", "tqsdk")
    monkeypatch.setenv("GHTRADER_UNIVERSE", f"{CU.raw},{M.raw}")
    monkeypatch.setenv("GHTRADER_TQ_ACCOUNTS", "a:SHFE,KQ.m@DCE.m;b:DCE")
    with pytest.raises(SettingsError, match="'b' get no symbol"):  # DCE.m is named on a
        build_definitions()
    monkeypatch.setenv("GHTRADER_TQ_ACCOUNTS", "a:KQ.m@SHFE.cu;b:KQ.m@SHFE.cu,KQ.m@DCE.m")
    with pytest.raises(SettingsError, match="KQ.m@SHFE.cu is on accounts 'a' and 'b'"):
        build_definitions()
    monkeypatch.setenv("GHTRADER_TQ_ACCOUNTS", "a:SHFE;b:*")
    build_definitions()  # the fixture's credentials are set: loads
    monkeypatch.delenv("GHTRADER_TQ_USER_B")
    with pytest.raises(SettingsError, match="without credentials: set GHTRADER_TQ_USER_B"):
        build_definitions()


def test_each_account_keeps_its_own_tick_cache_and_names_its_variables(market, tmp_path):
    resource = SourceResource(
        kind="tqsdk",
        tq_accounts={
            name: TqAccountConfig(user=user, password=password, symbols=[s.raw])
            for (name, (user, password)), s in zip(ACCOUNTS.items(), (CU, M), strict=True)
        },
    )
    sources = [resource.open(CU), resource.open(M)]
    try:
        assert [s.account for s in sources] == ["a", "b"]
        root = tmp_path / "tqcache"
        assert [s.cache.path.parent for s in sources] == [root / "a", root / "b"]
        assert "pw-of" not in repr(resource) and "pw-of" not in repr(sources[0])
    finally:
        for s in sources:
            s.close()
    with pytest.raises(ValueError, match="KQ.m@CZCE.SR is on no TqSdk account"):
        resource.open(parse_main_symbol("KQ.m@CZCE.SR"))
    with pytest.raises(MissingCredentialsError, match="GHTRADER_TQ_PASSWORD_B"):
        TqSdkSource("bob@example.com", "", account="b")


def _sleep_forever(day: str):
    time.sleep(600)


@pytest.fixture
def accounts_home(tmp_path, monkeypatch):
    """A fresh DAGSTER_HOME as `ghtrader demo` / `ghtrader backfill` make it."""
    from ghtrader_assets.runner import ensure_dagster_home

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    path = ensure_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


def test_a_stall_names_the_holders_of_every_accounts_pool(accounts_home):
    """With two accounts the demo and backfill wait on two pools: the progress lines and
    the stall error say who holds each (before, they passed no pool and said nothing)."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    from ghtrader_assets.runner import RunsStalledError, run_days, set_pool_limit

    for pool in ("tqsdk_a", "tqsdk_b"):
        set_pool_limit(pool, 1)
    with DagsterInstance.get() as instance:
        holder = create_run_for_test(
            instance, job_name=INGEST_JOB, status=DagsterRunStatus.STARTED
        ).run_id
        instance.event_log_storage.claim_concurrency_slot("tqsdk_b", holder, "DCE__m_ticks")
    said: list[str] = []
    with pytest.raises(RunsStalledError) as caught:
        run_days(
            ["2025-03-10"],
            1,
            pool=("tqsdk_a", "tqsdk_b"),
            timeout=1.0,
            report_every=0.3,
            say=said.append,
            run=_sleep_forever,
        )
    message = str(caught.value)
    assert "pool 'tqsdk_a': 0/1 slots held" in message
    assert f"pool 'tqsdk_b': 1/1 slots held by run(s) {holder[:8]}" in message
    assert "concurrency set tqsdk_a / tqsdk_b N" in message
    assert any("pool 'tqsdk_b': 1/1" in line for line in said if line.strip().startswith("waiting"))


def test_an_accounts_limit_set_in_the_instance_stands_through_the_cli(accounts_home):
    """`dagster instance concurrency set tqsdk_b 2` for a smaller account: the next
    `ghtrader demo`/`backfill` (GHTRADER_SOURCE_POOL_LIMIT 4) must not raise it back to 4;
    a pool never set gets the CLI's limit."""
    from dagster import DagsterInstance

    from ghtrader_assets.runner import set_pool_limit

    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("tqsdk_b", 2)
    assert set_pool_limit("tqsdk_b", 4, keep_set=True) == 2
    assert set_pool_limit("tqsdk_a", 4, keep_set=True) == 4
    with DagsterInstance.get() as instance:
        info = {
            p: instance.event_log_storage.get_concurrency_info(p) for p in ("tqsdk_a", "tqsdk_b")
        }
    assert {p: i.slot_count for p, i in info.items()} == {"tqsdk_a": 4, "tqsdk_b": 2}
    assert set_pool_limit("simulated", 4) == 4  # other sources: the CLI's limit, as before


def test_backfill_sets_and_reports_every_accounts_pool(two_accounts, monkeypatch):
    """`ghtrader backfill` with two accounts: both pools get a limit, and the runner is
    given both pools to report (it was given none)."""
    from ghtrader_assets import backfill, runner

    limits: dict[str, tuple[int, bool]] = {}
    given: dict[str, object] = {}

    def fake_limit(pool: str, limit: int, *, keep_set: bool = False) -> int:
        limits[pool] = (limit, keep_set)
        return 2 if pool == "tqsdk_b" else limit

    def fake_execute(plan, workers, out, pool=None):
        given["pool"] = pool
        return []

    monkeypatch.setattr(runner, "set_pool_limit", fake_limit)  # via set_source_pool_limits
    monkeypatch.setattr(backfill, "execute_plan", fake_execute)
    monkeypatch.setattr(backfill, "materialize_coverage", lambda: None)
    plan = backfill.plan_backfill(two_accounts, [CU, M], DAY, DAY)
    lines: list[str] = []
    backfill.run_plan(two_accounts, plan, 8, lines.append, lambda table, for_ui: "")
    assert limits == {"tqsdk_a": (4, True), "tqsdk_b": (4, True)}
    assert tuple(given["pool"]) == ("tqsdk_a", "tqsdk_b")
    assert "  pool 'tqsdk_b': limit 2, as set in the instance (kept)" in lines
    # GHTRADER_SOURCE_POOL_LIMIT set on purpose: applied over the instance's limits.
    explicit = dataclasses.replace(two_accounts, source_pool_limit=3, source_pool_limit_given=True)
    limits.clear()
    backfill.run_plan(explicit, plan, 6, lines.append, lambda table, for_ui: "")
    assert limits == {"tqsdk_a": (3, False), "tqsdk_b": (3, False)}


def _env_accounts(names: dict[str, list[str]]) -> dict:
    return {
        name: {
            "user": {"env": f"GHTRADER_TQ_USER_{name.upper()}"},
            "password": {"env": f"GHTRADER_TQ_PASSWORD_{name.upper()}"},
            "symbols": symbols,
        }
        for name, symbols in names.items()
    }


@pytest.mark.parametrize(
    "source_config",
    [
        # cu moved onto b in the launchpad: it would download as bob while claiming tqsdk_a
        {"kind": "tqsdk", "tq_accounts": _env_accounts({"a": [], "b": [CU.raw, M.raw]})},
        # the accounts dropped: every symbol would download as alice, in both pools
        {
            "kind": "tqsdk",
            "tq_user": {"env": "GHTRADER_TQ_USER_A"},
            "tq_password": {"env": "GHTRADER_TQ_PASSWORD_A"},
        },
        # account a pointed at b's variables: cu would download as bob under tqsdk_a
        {
            "kind": "tqsdk",
            "tq_accounts": {
                "a": {
                    "user": {"env": "GHTRADER_TQ_USER_B"},
                    "password": {"env": "GHTRADER_TQ_PASSWORD_B"},
                    "symbols": [CU.raw],
                },
                "b": _env_accounts({"b": [M.raw]})["b"],
            },
        },
    ],
    ids=["symbol-moved", "accounts-dropped", "credentials-swapped"],
)
def test_run_config_cannot_move_a_symbol_off_the_account_whose_pool_it_claims(
    market, two_accounts, source_config
):
    """The pool of a step is fixed by GHTRADER_TQ_ACCOUNTS when the definitions load; the
    credentials come from resource config, which a run config can change. A run config that
    disagrees fails the step naming the symbol, and nothing downloads under the wrong
    account (before: cu downloaded as bob under tqsdk_a, so b could exceed its cap)."""
    defs = build_definitions(two_accounts)
    with instance_for_test() as instance:
        result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
            partition_key=DAY.isoformat(),
            instance=instance,
            run_config={"resources": {"source": {"config": source_config}}},
            raise_on_error=False,
        )
        failures = [
            e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure
        ]
    assert not result.success
    assert any(
        "KQ.m@SHFE.cu" in f and "account 'a'" in f and "run config" in f for f in failures
    ), failures
    assert "SHFE.cu2504" not in market.downloads.get("bob@example.com", [])
    if "tq_accounts" not in source_config:
        assert market.downloads.get("alice@example.com", []) == []

"""The deployment files, rendered as ``docker compose config`` would (no docker engine
here): YAML with anchors and merge keys, ``${VAR}``, ``${VAR:-default}`` and
``${VAR:?message}`` interpolation from a given environment, ``$$`` escapes.

Asserts that production QuestDB needs credentials on every endpoint the store uses, that
nothing is published beyond what the Dagster services need, and that the store passes the
credentials on every transport it opens."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

INFRA = Path(__file__).resolve().parent.parent / "infra"
PROD = INFRA / "docker-compose.yml"
DEV = INFRA / "questdb" / "docker-compose.yml"
SECRETS = {"GHTRADER_QDB_PASSWORD": "qdb-Secret-1", "DAGSTER_PG_PASSWORD": "pg-Secret-2"}

_VAR = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


class MissingVariable(ValueError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation rules for the forms these files use."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op[0] == ":")
        if op in (":-", "-"):
            return arg if (value is None if op == "-" else unset_or_empty) else value
        if op in (":?", "?"):
            if value is None if op == "?" else unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(sub, text)


def render(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Parse, then interpolate every string (compose interpolates values, not keys)."""
    raw = yaml.safe_load(path.read_text())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return interpolate(node, env)
        return node

    config = walk(raw)
    for service in config.get("services", {}).values():
        environment = service.get("environment")
        if isinstance(environment, dict):  # a key without value: the shell's, else unset
            service["environment"] = {
                k: env[k] if v is None else v
                for k, v in environment.items()
                if v is not None or k in env
            }
    return config


def published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of every published port (short syntax)."""
    out = []
    for port in service.get("ports", []):
        parts = str(port).split(":")
        host = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host, parts[-1]))
    return out


def test_renderer_follows_compose_interpolation() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$SET $SET", env) == (
        "x d d  $SET x"
    )
    with pytest.raises(MissingVariable, match="UNSET: need it"):
        interpolate("${UNSET:?need it}", env)
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?need it}", env)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_production_refuses_to_render_without_its_secrets(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    with pytest.raises(MissingVariable, match=missing):
        render(PROD, env)


def test_production_questdb_requires_credentials_on_every_endpoint() -> None:
    config = render(PROD, {**SECRETS, "GHTRADER_QDB_USER": "ingest"})
    qdb = config["services"]["questdb"]
    env = qdb["environment"]
    password = SECRETS["GHTRADER_QDB_PASSWORD"]
    # PGWire and HTTP (web console, REST /exec, ILP/HTTP, QWP) take the same credentials.
    assert (env["QDB_PG_USER"], env["QDB_PG_PASSWORD"]) == ("ingest", password)
    assert (env["QDB_HTTP_USER"], env["QDB_HTTP_PASSWORD"]) == ("ingest", password)
    # ILP over TCP/UDP has no authentication in QuestDB open source: off.
    assert env["QDB_LINE_TCP_ENABLED"] == "false" and env["QDB_LINE_UDP_ENABLED"] == "false"
    assert "extends" not in qdb  # would merge the development file's published ports
    assert published(qdb) == []
    assert published(config["services"]["postgres"]) == []
    # Only the Dagster UI is published, and only on the loopback interface.
    everything = [(name, p) for name, svc in config["services"].items() for p in published(svc)]
    assert everything == [("dagster-webserver", ("127.0.0.1", "3000"))]
    health = " ".join(qdb["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/9003" in health
    assert env["QDB_HTTP_HEALTH_CHECK_AUTHENTICATION_REQUIRED"] == "false"
    mode_file = qdb["env_file"][0]
    assert (PROD.parent / mode_file).is_file(), mode_file


def test_the_dagster_services_hand_the_store_credentials_for_every_transport() -> None:
    from ghtrader_assets.stores.questdb import QuestDBSettings

    config = render(PROD, {**SECRETS, "GHTRADER_QDB_USER": "ingest"})
    server = config["services"]["questdb"]["environment"]
    for name in ("dagster-webserver", "dagster-daemon"):
        env = {k: str(v) for k, v in config["services"][name]["environment"].items()}
        assert env["GHTRADER_STORE"] == "questdb" and env["GHTRADER_QDB_HOST"] == "questdb"
        settings = QuestDBSettings.from_env(env)
        # ILP/HTTP and QWP (questdb client keywords) and PGWire (psycopg keywords).
        assert settings.auth_kwargs() == {
            "username": server["QDB_HTTP_USER"],
            "password": server["QDB_HTTP_PASSWORD"],
        }
        pg = settings.pg_kwargs()
        assert (pg["user"], pg["password"]) == (server["QDB_PG_USER"], server["QDB_PG_PASSWORD"])
        assert settings.ilp_conf().startswith("http::")  # never ILP/TCP
        assert SECRETS["GHTRADER_QDB_PASSWORD"] not in settings.ilp_conf()


def test_every_store_transport_is_opened_with_the_credentials(monkeypatch) -> None:
    import questdb

    from ghtrader_assets.stores.questdb import QuestDBSettings, qwp, reader, store

    settings = QuestDBSettings(host="q", user="ingest", password="pw-1")
    seen: dict[str, dict[str, Any]] = {}

    def fake_connect(**kw: Any) -> object:
        seen["qwp"] = kw
        return object()

    class FakeSender:
        @classmethod
        def from_conf(cls, conf: str, **kw: Any) -> object:
            seen["ilp"] = {"conf": conf, **kw}
            return object()

    monkeypatch.setattr(questdb, "connect", fake_connect)
    monkeypatch.setattr(questdb, "Sender", FakeSender)
    qwp.default_connect(settings)
    store._default_sender_factory(settings)()
    reader.probe(
        settings,
        pg_connect=lambda **kw: seen.setdefault("pg", kw) and _Closable(),
        connect=lambda *a, **kw: _Closable(),
    )
    assert seen["qwp"]["username"] == "ingest" and seen["qwp"]["password"] == "pw-1"
    assert seen["ilp"]["username"] == "ingest" and seen["ilp"]["password"] == "pw-1"
    assert "pw-1" not in seen["ilp"]["conf"]
    assert seen["pg"]["user"] == "ingest" and seen["pg"]["password"] == "pw-1"


class _Closable:
    def close(self) -> None:
        pass


def test_development_server_is_loopback_only_without_ilp_tcp() -> None:
    config = render(DEV, {})
    qdb = config["services"]["questdb"]
    assert sorted(published(qdb)) == [("127.0.0.1", "8812"), ("127.0.0.1", "9000")]
    assert qdb["environment"]["QDB_LINE_TCP_ENABLED"] == "false"
    # The stock PGWire password when none is set (documented as development-only).
    assert qdb["environment"]["QDB_PG_PASSWORD"] == "quest"


def test_several_tqsdk_accounts_reach_the_dagster_services_through_an_env_file(
    tmp_path,
) -> None:
    """The multi-account form: GHTRADER_TQ_ACCOUNTS and each account's credentials come from
    an uncommitted env file (names depend on the accounts), never from values in the compose
    file; `environment` does not mask them; the settings the containers get load two
    accounts, each with its pool."""
    from dotenv import dotenv_values

    from ghtrader_assets.config import Settings

    example = INFRA / "tq-accounts.env.example"
    assert example.is_file()
    env_file = tmp_path / "tq-accounts.env"
    env_file.write_text(
        example.read_text()
        .replace("GHTRADER_TQ_USER_A=", "GHTRADER_TQ_USER_A=alice")
        .replace("GHTRADER_TQ_PASSWORD_A=", "GHTRADER_TQ_PASSWORD_A=pw-A-secret")
        .replace("GHTRADER_TQ_USER_B=", "GHTRADER_TQ_USER_B=bob")
        .replace("GHTRADER_TQ_PASSWORD_B=", "GHTRADER_TQ_PASSWORD_B=pw-B-secret")
    )
    # GHTRADER_UNIVERSE unset in the shell is unset in the containers (the default
    # universe): an empty value would stop the code location from loading.
    plain = render(PROD, SECRETS)["services"]["dagster-daemon"]["environment"]
    assert "GHTRADER_UNIVERSE" not in plain
    Settings.from_env({k: str(v) for k, v in plain.items()} | {"GHTRADER_DATA_DIR": str(tmp_path)})
    # Default path: infra/tq-accounts.env, optional, and kept out of git.
    default = render(PROD, {**SECRETS, "GHTRADER_SOURCE": "tqsdk"})
    for name in ("dagster-webserver", "dagster-daemon"):
        (entry,) = default["services"][name]["env_file"]
        assert entry == {"path": "./tq-accounts.env", "required": False}
    ignored = (INFRA.parent / ".gitignore").read_text().splitlines()
    assert "infra/tq-accounts.env" in ignored
    config = render(
        PROD, {**SECRETS, "GHTRADER_SOURCE": "tqsdk", "GHTRADER_TQ_ACCOUNTS_FILE": str(env_file)}
    )
    assert "pw-A-secret" not in yaml.safe_dump(config)  # passed as a file, never inlined
    for name in ("dagster-webserver", "dagster-daemon"):
        service = config["services"][name]
        (entry,) = service["env_file"]
        assert entry["path"] == str(env_file)
        from_file = dotenv_values(entry["path"])
        environment = {k: str(v) for k, v in service["environment"].items()}
        # `environment` wins over env_file in compose: it must not carry (and blank) these.
        assert not set(from_file) & set(environment), set(from_file) & set(environment)
        container = {**from_file, **environment, "GHTRADER_DATA_DIR": str(tmp_path)}
        settings = Settings.from_env(container)
        assert settings.tq_accounts is not None
        assert settings.source_pools == ("tqsdk_a", "tqsdk_b")
    # Without the file (or with GHTRADER_TQ_USER set in the shell as well), the
    # single-account form; both at once is refused when the definitions load.
    both = {**from_file, **environment, "GHTRADER_TQ_USER": "carol"}
    with pytest.raises(ValueError, match="GHTRADER_TQ_ACCOUNTS is set together with"):
        Settings.from_env({**both, "GHTRADER_DATA_DIR": str(tmp_path)})

"""Dagster resources: the configured store and source.

Values come from ``GHTRADER_*`` variables through Dagster ``EnvVar`` (see
:func:`env_or`), so secrets never appear in run configs, the UI or logs. The store object is
cached per process and configuration: a step that writes many partitions (or several steps
run in one process) reuses one store, and with it one QuestDB sender and connection pool.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import Config, ConfigurableResource, EnvVar

from ghtrader_assets.metrics import TimedStore
from ghtrader_assets.sources.base import TickSource
from ghtrader_assets.stores.base import TickStore
from ghtrader_assets.symbols import MainSymbol

if TYPE_CHECKING:
    from ghtrader_assets.accounts import TqAccounts

logger = logging.getLogger(__name__)

_STORES: dict[tuple[Any, ...], TickStore] = {}
_STORES_LOCK = threading.Lock()


def resolved(value: Any) -> Any:
    """A resource field as a run sees it.

    Inside a run Dagster has already replaced every ``EnvVar`` with its value; outside one
    (the CLI, scripts) the field still holds the ``EnvVar``, a ``str`` subclass whose text is
    the variable's *name*. Reading it from the environment here makes both paths build the
    same store from the same values.
    """
    if isinstance(value, EnvVar):
        return value.get_value(default="") or ""
    return value


def close_stores(*, log: bool = True) -> list[str]:
    """Close every cached store of this process: settle pending QuestDB writes, then close
    senders, QWP handles and pools. Returns one line per store whose writes did not land
    as written (table, symbol and day), so the CLI can print them and exit non-zero; with
    ``log`` (at exit, where nobody reads the return value) they are also logged at ERROR.

    Runs at exit, registered twice because processes end two ways: :mod:`atexit` for a
    normal interpreter exit (CLI, scripts, ``dagster dev``), and a
    :class:`multiprocessing.util.Finalize` for Dagster's step processes and the demo's
    workers, which multiprocessing ends with ``os._exit`` (atexit handlers do not run
    there). Either way the QuestDB client's handles are released while the interpreter is
    whole (left to garbage collection at exit, the ``questdb`` client logs an
    ``AttributeError`` from ``QuestDB.__dealloc__``). Safe to call more than once.
    """
    from ghtrader_assets.stores.base import StoreError

    pid = os.getpid()
    with _STORES_LOCK:
        # A forked child inherits its parent's stores (their sockets too): it forgets them
        # without closing, which would end the parent's connections.
        stores = [store for key, store in _STORES.items() if key[-1] == pid]
        _STORES.clear()
    problems: list[str] = []
    for store in stores:
        try:
            store.close()
        except StoreError as exc:  # written for users: table, symbol, day, what to do
            if log:
                logger.error("%s", exc)
            problems.append(" ".join(str(exc).split()))
        except Exception:  # closing must not mask the caller's outcome
            logger.warning("closing store %r failed", store, exc_info=True)
    return problems


atexit.register(close_stores)
multiprocessing.util.Finalize(None, close_stores, exitpriority=10)


def env_or(name: str, default: Any) -> Any:
    """``EnvVar(name)`` when the variable is set, else the default.

    Dagster refuses an ``EnvVar`` whose variable is unset, but a fresh machine must run the
    demo with no configuration at all, hence the fallback.
    """
    return EnvVar(name) if os.environ.get(name, "").strip() else default


#: Resource fields that hold secrets: never shown by ``repr`` (logs, tracebacks).
SECRET_FIELDS = frozenset({"qdb_password", "qdb_token", "tq_password", "password"})


class _HidesSecrets:
    """Mask secret fields in ``repr``: a resolved resource holds the real values."""

    def __repr_args__(self):  # pydantic's hook behind __repr__ and __str__
        for name, value in super().__repr_args__():  # type: ignore[misc]
            yield name, ("***" if name in SECRET_FIELDS and value else value)


class StoreResource(_HidesSecrets, ConfigurableResource):
    """Where tables live: ``embedded`` Parquet (default) or ``questdb``."""

    kind: str = "embedded"
    data_dir: str = ""
    cache_ttl_seconds: float = 30.0
    qdb_host: str = ""
    qdb_ilp_port: int = 9000
    qdb_pg_port: int = 8812
    qdb_user: str = "admin"
    qdb_password: str = ""
    qdb_token: str = ""
    qdb_tls: bool = False
    qdb_wal_timeout: float = 60.0
    qdb_transport: str = "auto"
    qdb_batch_rows: int = 75_000
    qdb_table_prefix: str = ""

    @property
    def _data_path(self) -> Path:
        """``data_dir``, or the default data directory when none is configured."""
        from ghtrader_assets.config import default_data_dir

        return Path(self.data_dir) if self.data_dir else default_data_dir()

    @property
    def manifest_dir(self) -> Path:
        """Manifests are also written as JSON files here, whatever the store kind."""
        return self._data_path / "manifests"

    @property
    def reports_dir(self) -> Path:
        return self._data_path / "reports"

    def _value(self, name: str) -> Any:
        return resolved(getattr(self, name))

    def _key(self) -> tuple[Any, ...]:
        return (*(self._value(name) for name in _STORE_KEY_FIELDS), os.getpid())

    def get_store(self) -> TickStore:
        """The store for this configuration, created once per process.

        Works the same inside a run and outside one (``EnvVar`` fields are resolved from
        the environment, see :func:`resolved`). It is wrapped in
        :class:`~ghtrader_assets.metrics.TimedStore`, which times every call (query latency
        P50/P95/P99, Prometheus) and keeps recent write figures for the metrics table;
        everything else passes through to the real store.
        """
        key = self._key()
        with _STORES_LOCK:
            store = _STORES.get(key)
            if store is None:
                store = _STORES[key] = TimedStore(self._create())
            return store

    def questdb_settings(self) -> Any:
        """The :class:`~ghtrader_assets.stores.questdb.QuestDBSettings` of this resource,
        with ``EnvVar`` fields resolved (inside or outside a run alike)."""
        from ghtrader_assets.stores.questdb import QuestDBSettings

        host = self._value("qdb_host")
        if not host:
            from ghtrader_assets.stores.questdb import QuestDBSettingsError

            raise QuestDBSettingsError(
                "GHTRADER_STORE=questdb needs GHTRADER_QDB_HOST (the QuestDB server's host)"
            )
        return QuestDBSettings(
            host=host,
            ilp_port=int(self._value("qdb_ilp_port")),
            pg_port=int(self._value("qdb_pg_port")),
            user=self._value("qdb_user"),
            password=self._value("qdb_password") or None,
            token=self._value("qdb_token") or None,
            tls=bool(self._value("qdb_tls")),
            wal_timeout=float(self._value("qdb_wal_timeout")),
            transport=self._value("qdb_transport"),
            batch_rows=int(self._value("qdb_batch_rows")),
            cache_ttl=float(self._value("cache_ttl_seconds")),
            table_prefix=self._value("qdb_table_prefix"),
        )

    def _create(self) -> TickStore:
        if self.kind == "embedded":
            from ghtrader_assets.stores.embedded import EmbeddedStore

            if not self.data_dir:
                raise ValueError("StoreResource.data_dir is required for the embedded store")
            return EmbeddedStore(
                Path(self.data_dir) / "store", cache_ttl_seconds=self.cache_ttl_seconds
            )
        if self.kind == "questdb":
            from ghtrader_assets.stores.questdb import QuestDBStore

            store = QuestDBStore(self.questdb_settings())
            try:
                # Fails within seconds, naming host, port and variables, when no server
                # answers; then CREATE TABLE IF NOT EXISTS + drift check (idempotent).
                store.ensure_tables()
            except BaseException:
                store.close()
                raise
            return store
        raise ValueError(f"unknown store kind {self.kind!r}: expected 'embedded' or 'questdb'")


#: Fields that identify a store (the secrets do not: they do not change where data goes).
_STORE_KEY_FIELDS = (
    "kind",
    "data_dir",
    "cache_ttl_seconds",
    "qdb_host",
    "qdb_ilp_port",
    "qdb_pg_port",
    "qdb_user",
    "qdb_tls",
    "qdb_transport",
    "qdb_batch_rows",
    "qdb_table_prefix",
)


class TqAccountConfig(_HidesSecrets, Config):
    """One TqSdk account of ``GHTRADER_TQ_ACCOUNTS``: its credentials (``EnvVar``
    references to ``GHTRADER_TQ_USER_<ACCOUNT>`` / ``GHTRADER_TQ_PASSWORD_<ACCOUNT>``, resolved
    by Dagster inside the run) and the main symbols it downloads."""

    user: str = ""
    password: str = ""
    symbols: list[str] = []


def tq_account_configs(accounts: TqAccounts | None) -> dict[str, TqAccountConfig]:
    """The ``tq_accounts`` field of :class:`SourceResource` for the parsed accounts; the
    credentials stay ``EnvVar`` references (the values never enter config, UI or logs)."""
    if accounts is None:
        return {}
    return {
        a.name: TqAccountConfig(
            user=env_or(a.user_variable, ""),
            password=env_or(a.password_variable, ""),
            symbols=[s.raw for s in a.symbols],
        )
        for a in accounts.accounts
    }


class SourceResource(_HidesSecrets, ConfigurableResource):
    """Where ticks come from: ``simulated`` (default), ``csv`` or ``tqsdk``.

    ``simulated_defects`` maps a main symbol to ``{trading day or "*": {defect: params}}``
    so demos and tests can inject known defects into chosen symbol-days.

    With several TqSdk accounts (``tq_accounts``, from ``GHTRADER_TQ_ACCOUNTS``) this one
    resource picks the account of the step's symbol. Why one resource and not one per
    account: what caps an account is its Dagster pool (``tqsdk_<account>``, claimed per
    step), not the resource; one resource keeps the asset functions, the run config
    (``resources.source``) and resource overrides the same for one account or many, and the
    account of every symbol is validated data instead of per-account resource wiring.
    """

    kind: str = "simulated"
    seed: int = 0
    csv_dir: str = ""
    tq_user: str = ""
    tq_password: str = ""
    #: account name -> credentials and symbols; empty: the single account above.
    tq_accounts: dict[str, TqAccountConfig] = {}
    simulated_defects: dict[str, dict[str, dict[str, Any]]] = {}
    #: Extra seconds per day's download, to mimic TqSdk in benchmarks (0 = off).
    latency_seconds: float = 0.0

    def open(self, symbol: MainSymbol) -> TickSource:
        """A fresh source for one step, used for all its days and closed at its end.

        One step, one source: TqApi is not thread-safe and logging in per day would strain
        the account, so a step opens exactly one and nothing is shared between steps.
        """
        source = self._open(symbol)
        if self.latency_seconds > 0:
            from ghtrader_assets.sources.latency import LatencySource

            return LatencySource(source, self.latency_seconds)
        return source

    def _open(self, symbol: MainSymbol) -> TickSource:
        from ghtrader_assets.accounts import VARIABLE as ACCOUNTS_VARIABLE
        from ghtrader_assets.accounts import account_in_env
        from ghtrader_assets.sources.registry import make_source

        if self.kind == "simulated":
            per_day = self.simulated_defects.get(symbol.raw)
            if per_day:
                from ghtrader_assets.sources.defects import DefectRouter

                return DefectRouter(self.seed, per_day)
            return make_source("simulated", seed=self.seed)
        if self.kind == "csv":
            if not self.csv_dir:
                raise ValueError("GHTRADER_SOURCE=csv needs GHTRADER_CSV_DIR")
            return make_source("csv", root=self.csv_dir)
        if self.kind == "tqsdk":
            pinned = account_in_env(symbol)  # the account whose pool this step claims
            if self.tq_accounts:
                name, account = self.account_of(symbol)
                if pinned is not None and pinned != name:
                    raise ValueError(
                        f"{symbol.raw}: the run's resource config puts it on TqSdk account "
                        f"{name!r}, but {ACCOUNTS_VARIABLE} (which gave its steps the pool "
                        f"tqsdk_{pinned}) puts it on account {pinned!r}; move a symbol between "
                        f"accounts in {ACCOUNTS_VARIABLE}, not in run config"
                    )
                user, password = resolved(account.user), resolved(account.password)
                if pinned is not None:
                    _check_own_credentials(symbol, name, user, password)
                return make_source("tqsdk", user=user, password=password, account=name)
            if pinned is not None:
                raise ValueError(
                    f"{symbol.raw}: the run's resource config has no TqSdk accounts, but "
                    f"{ACCOUNTS_VARIABLE} puts it on account {pinned!r} (pool tqsdk_{pinned}); "
                    "remove the tq_accounts override from the run config"
                )
            return make_source(
                "tqsdk", user=resolved(self.tq_user), password=resolved(self.tq_password)
            )
        raise ValueError(f"unknown source kind {self.kind!r}: expected simulated, csv or tqsdk")

    def account_of(self, symbol: MainSymbol) -> tuple[str, TqAccountConfig]:
        """The account (name, config) that downloads ``symbol``; none is an error naming it
        (the definitions validate the mapping at load, so this means a changed config)."""
        for name, account in self.tq_accounts.items():
            if symbol.raw in account.symbols:
                return name, account
        raise ValueError(
            f"{symbol.raw} is on no TqSdk account ({', '.join(self.tq_accounts)}): "
            "list it in GHTRADER_TQ_ACCOUNTS"
        )


def _check_own_credentials(symbol: MainSymbol, account: str, user: str, password: str) -> None:
    """Refuse credentials other than the account's own variables (a run config pointing
    account ``a`` at ``GHTRADER_TQ_USER_B``, or a literal): the download would count against
    another account than the pool the step claims. Compares values, names only variables."""
    suffix = account.upper()
    wrong = [
        var
        for var, value in (
            (f"GHTRADER_TQ_USER_{suffix}", user),
            (f"GHTRADER_TQ_PASSWORD_{suffix}", password),
        )
        if os.environ.get(var) is not None and (value or "").strip() != os.environ[var].strip()
    ]
    if wrong:
        raise ValueError(
            f"{symbol.raw}: the run's resource config gives TqSdk account {account!r} "
            f"credentials other than {' and '.join(wrong)}; each account downloads with its "
            "own variables only (remove the override from the run config)"
        )

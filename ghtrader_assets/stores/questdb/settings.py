"""Connection settings for the QuestDB store, and the rule that keeps its secrets secret.

The password and the token are the only secrets. They are kept out of ``repr``/``str`` (so a
settings object in a log line, a Dagster event or a traceback shows ``<set>``), they are
handed to the clients as keyword arguments rather than baked into configuration strings
that a client might echo, and :meth:`QuestDBSettings.redact` scrubs them from any text this
package turns into an error message.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

TRANSPORTS = ("auto", "qwp", "ilp_http")
#: A tick day is 50-70k rows: 75k keeps a whole day in one ILP/HTTP request, hence one WAL
#: transaction, so a re-materialized day replaces atomically in the common case. It is also
#: the ``questdb`` client's own auto-flush size, i.e. a request size servers are known to take
#: (~65 MB of ILP text for 34 tick columns).
DEFAULT_BATCH_ROWS = 75_000
#: QuestDB's published out-of-the-box PGWire password (not a secret: it is in QuestDB's
#: documentation). Used only when no password is configured, so a stock development server
#: works with nothing set; production servers set ``pg.password`` and GHTRADER_QDB_PASSWORD.
QUESTDB_STOCK_PG_PASSWORD = "quest"
_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_USER_RE = re.compile(r"^[^\s;]{1,128}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9._:\-\[\]]+$")


class QuestDBSettingsError(ValueError):
    """A QuestDB setting (or ``GHTRADER_QDB_*`` variable) holds an unusable value.

    ``field`` names the setting and ``reason`` says what it accepts, so
    :meth:`QuestDBSettings.from_env` can restate the error with the variable's name.
    """

    def __init__(self, message: str, *, field: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason or message


def _invalid(field: str, value: object, reason: str) -> QuestDBSettingsError:
    return QuestDBSettingsError(f"QuestDB {field}={value!r}: {reason}", field=field, reason=reason)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: The variable behind each setting :meth:`QuestDBSettings.from_env` reads.
_VARIABLES = {
    "host": "GHTRADER_QDB_HOST",
    "ilp_port": "GHTRADER_QDB_ILP_PORT",
    "pg_port": "GHTRADER_QDB_PG_PORT",
    "user": "GHTRADER_QDB_USER",
    "transport": "GHTRADER_QDB_TRANSPORT",
    "batch_rows": "GHTRADER_QDB_BATCH_ROWS",
    "cache_ttl": "GHTRADER_QDB_CACHE_TTL",
    "wal_timeout": "GHTRADER_QDB_WAL_TIMEOUT",
    "table_prefix": "GHTRADER_QDB_TABLE_PREFIX",
}


def _check_host(host: str) -> None:
    """A host name or address only: a scheme or a port in the host would end up inside the
    clients' configuration strings and fail far from the setting."""
    if "://" in host:
        raise _invalid("host", host, "give the host name only, without a scheme (http://...)")
    if host.count(":") == 1:
        raise _invalid(
            "host",
            host,
            "give the host name only; ports go in GHTRADER_QDB_ILP_PORT / GHTRADER_QDB_PG_PORT",
        )


class QuestDBUnreachableError(RuntimeError):
    """No QuestDB server answers where the settings point (nothing was written).

    A ``RuntimeError`` like :class:`~ghtrader_assets.stores.base.StoreError` (the CLI turns
    it into one line and exit code 2: it is a configuration or operations problem, not a
    bug). Defined here, next to the settings it names, so importing it is cheap.
    """


#: Seconds the start-up probe waits for each port before declaring the server unreachable.
PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True, repr=False)
class QuestDBSettings:
    """Where the QuestDB server is and how the store talks to it.

    ``transport`` picks the write/bulk-read path: ``ilp_http`` (ILP over HTTP for writes,
    PGWire for reads), ``qwp`` (QuestDB's WebSocket protocol for writes and bulk reads; fail
    if the server lacks it) or ``auto`` (QWP when the server offers it, else ILP/HTTP,
    decided once per store and logged once). Metadata queries always use PGWire.
    """

    host: str = "localhost"
    ilp_port: int = 9000
    pg_port: int = 8812
    user: str = "admin"
    password: str | None = None
    token: str | None = None
    tls: bool = False
    transport: str = "auto"
    batch_rows: int = DEFAULT_BATCH_ROWS
    cache_ttl: float | None = 30.0
    wal_timeout: float = 60.0
    table_prefix: str = ""
    max_retries: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    pool_max_size: int = 4
    connect_timeout: float = 10.0
    auto_add_columns: bool = False

    def __post_init__(self) -> None:
        if not self.host or not _HOST_RE.match(self.host):
            raise _invalid("host", self.host, "not a host name or address")
        _check_host(self.host)
        for name in ("ilp_port", "pg_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise _invalid(name, port, "a port must be 1-65535")
        if not self.user or not _USER_RE.match(self.user):
            raise _invalid("user", self.user, "a user name without spaces or ';'")
        if self.transport not in TRANSPORTS:
            raise _invalid("transport", self.transport, f"expected one of {', '.join(TRANSPORTS)}")
        if not isinstance(self.batch_rows, int) or self.batch_rows < 1:
            raise _invalid("batch_rows", self.batch_rows, "must be a whole number >= 1")
        if self.table_prefix and not _PREFIX_RE.match(self.table_prefix):
            raise _invalid("table_prefix", self.table_prefix, f"must match {_PREFIX_RE.pattern}")
        if self.cache_ttl is not None and not (
            math.isfinite(self.cache_ttl) and self.cache_ttl >= 0
        ):
            raise _invalid("cache_ttl", self.cache_ttl, "seconds must be >= 0 (0 = no cache)")
        if self.max_retries < 0 or self.retry_base_delay < 0 or self.retry_max_delay < 0:
            raise QuestDBSettingsError("QuestDB retry settings must not be negative")
        if not (math.isfinite(self.wal_timeout) and self.wal_timeout > 0):
            raise _invalid("wal_timeout", self.wal_timeout, "seconds must be positive")
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise _invalid("connect_timeout", self.connect_timeout, "seconds must be positive")
        if self.pool_max_size < 1:
            raise _invalid("pool_max_size", self.pool_max_size, "must be >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QuestDBSettings:
        """Read ``GHTRADER_QDB_*`` variables (unset or empty means the default).

        Every value is checked here, and an error names the variable that holds it: this
        runs when the definitions load (:func:`ghtrader_assets.config.check_environment`),
        so a typo fails there with one line (CLI exit code 2), not at the first write of a
        run. With ``GHTRADER_STORE=questdb`` the host is required (there is no sensible
        default server in production).
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"GHTRADER_QDB_{name}", "").strip()
            return value or None

        def number(name: str, kind: type) -> int | float | None:
            raw = get(name)
            if raw is None:
                return None
            try:
                value = kind(raw)
            except ValueError:
                raise QuestDBSettingsError(
                    f"GHTRADER_QDB_{name}={raw!r} is not a valid {kind.__name__}"
                ) from None
            if kind is float and not math.isfinite(value):
                raise QuestDBSettingsError(f"GHTRADER_QDB_{name}={raw!r} is not a finite number")
            return value

        host = get("HOST")
        store = env.get("GHTRADER_STORE", "").strip().lower()
        if host is None and store == "questdb":
            raise QuestDBSettingsError(
                "GHTRADER_STORE=questdb needs GHTRADER_QDB_HOST (the QuestDB server's host "
                "name or address)"
            )
        values: dict[str, object] = {
            "host": host,
            "ilp_port": number("ILP_PORT", int),
            "pg_port": number("PG_PORT", int),
            "user": get("USER"),
            "password": get("PASSWORD"),
            "token": get("TOKEN"),
            "transport": (get("TRANSPORT") or "").lower() or None,
            "batch_rows": number("BATCH_ROWS", int),
            "cache_ttl": number("CACHE_TTL", float),
            "wal_timeout": number("WAL_TIMEOUT", float),
            "table_prefix": get("TABLE_PREFIX"),
        }
        tls = get("TLS")
        if tls is not None:
            if tls.lower() not in _TRUE + _FALSE:
                raise QuestDBSettingsError(
                    f"GHTRADER_QDB_TLS={tls!r}: expected one of {', '.join(_TRUE + _FALSE)}"
                )
            values["tls"] = tls.lower() in _TRUE
        given = {k: v for k, v in values.items() if v is not None}
        try:
            if host is not None:
                _check_host(host)
            return cls(**given)
        except QuestDBSettingsError as exc:
            variable = _VARIABLES.get(exc.field or "")
            if variable is None:
                raise
            raw = env.get(variable, "").strip()
            raise QuestDBSettingsError(f"{variable}={raw!r}: {exc.reason}") from None

    # -- secrets ---------------------------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.token) if s)

    def redact(self, text: object) -> str:
        """``text`` with every occurrence of the password or token replaced by ``***``."""
        out = str(text)
        for secret in sorted(self.secrets(), key=len, reverse=True):
            out = out.replace(secret, "***")
        return out

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("password", "token"):
                value = "<set>" if value else None
                parts.append(f"{f.name}={value}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"QuestDBSettings({', '.join(parts)})"

    __str__ = __repr__

    # -- client configuration (no secrets inside) ------------------------------------------

    def ilp_conf(self, retry_timeout_ms: int = 2_000) -> str:
        """ILP/HTTP configuration string. Auto-flush is off: the writer decides where
        transactions end. Credentials go in as keyword arguments (see :meth:`auth_kwargs`)."""
        scheme = "https" if self.tls else "http"
        return (
            f"{scheme}::addr={self.host}:{self.ilp_port};auto_flush=off;"
            f"retry_timeout={retry_timeout_ms};request_timeout={int(self.connect_timeout * 1000)};"
        )

    def auth_kwargs(self) -> dict[str, str]:
        """Credentials for the ``questdb`` client: a token wins over user/password."""
        if self.token:
            return {"token": self.token}
        if self.password:
            return {"username": self.user, "password": self.password}
        return {}

    def pg_kwargs(self) -> dict[str, object]:
        """psycopg connection keywords (QuestDB ignores the database name)."""
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.pg_port,
            "user": self.user,
            "dbname": "qdb",
            "connect_timeout": max(1, int(self.connect_timeout)),
            "application_name": "ghtrader-assets",
            "sslmode": "require" if self.tls else "disable",
            "autocommit": True,
        }
        kwargs["password"] = self.password or QUESTDB_STOCK_PG_PASSWORD
        return kwargs

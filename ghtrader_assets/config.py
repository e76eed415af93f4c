"""Settings read from ``GHTRADER_*`` environment variables, with defaults that run the demo.

Only non-secret settings live here. Secrets (TqSdk account, QuestDB password/token) are
never read into this object: the Dagster resources take them through ``EnvVar`` so they
stay out of run configs, logs and the UI (see :mod:`ghtrader_assets.resources`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghtrader_assets.calendar import TZ
from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_universe

if TYPE_CHECKING:
    from ghtrader_assets.accounts import TqAccounts

DEFAULT_UNIVERSE = "KQ.m@SHFE.cu,KQ.m@SHFE.au,KQ.m@SHFE.ag,KQ.m@DCE.m,KQ.m@CZCE.SR"
DEFAULT_START_DATE = "2025-01-02"
STORE_KINDS = ("embedded", "questdb")
SOURCE_KINDS = ("simulated", "csv", "tqsdk")


class SettingsError(ValueError):
    """A GHTRADER_* variable holds a value this project cannot use."""


class UniverseError(SettingsError, SymbolError):
    """``GHTRADER_UNIVERSE`` names a malformed symbol or an unknown product."""


def parse_number(text: str, name: str, cast: type[int] | type[float], minimum: float) -> Any:
    """Parse a numeric setting; the error names the variable and what it must be."""
    what = f"{'an integer' if cast is int else 'a number'} >= {minimum:g}"
    try:
        value = cast(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} must be {what}") from None
    if value < minimum:
        raise SettingsError(f"{name}={text!r} must be {what}")
    return value


def parse_start_date(text: str, name: str = "GHTRADER_START_DATE") -> str:
    """An ISO day no later than today (exchange-local): the first partition."""
    what = "a date YYYY-MM-DD no later than today, e.g. 2025-01-02"
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not {what}") from None
    today = dt.datetime.now(TZ).date()
    if day > today:
        raise SettingsError(f"{name}={text!r} is in the future (today is {today}): expected {what}")
    return day.isoformat()


def parse_close_time(text: str, name: str = "GHTRADER_CLOSE_TIME") -> str:
    """A whole local minute from 01:00 to 23:59 (a trading day's partition exists from then)."""
    what = "a local time HH:MM from 01:00 to 23:59, e.g. 15:30"
    try:
        close = dt.time.fromisoformat(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not {what}") from None
    if close.second or close.microsecond or close.tzinfo is not None or close.hour == 0:
        raise SettingsError(f"{name}={text!r} is not {what}")
    return close.strftime("%H:%M")


def parse_universe_setting(
    text: str | None, name: str = "GHTRADER_UNIVERSE"
) -> tuple[MainSymbol, ...]:
    """The universe; unset means the default, but set and empty is an error (an empty
    value is far more likely a broken deployment script than a wish for the default)."""
    what = "comma-separated main symbols, e.g. KQ.m@SHFE.cu,KQ.m@DCE.m (unset: the default)"
    if text is None:
        return tuple(parse_universe(DEFAULT_UNIVERSE))
    if not text.replace(",", "").strip():
        raise UniverseError(f"{name}={text!r} names no symbol: expected {what}")
    try:
        return tuple(parse_universe(text))
    except (SymbolError, KeyError) as exc:
        raise UniverseError(f"{name}: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (KeyError would quote it)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return " ".join(str(text).split())


def default_data_dir() -> Path:
    """``~/.ghtrader`` unless ``GHTRADER_DATA_DIR`` says otherwise."""
    return Path(os.environ.get("GHTRADER_DATA_DIR") or Path.home() / ".ghtrader").expanduser()


@dataclass(frozen=True)
class Settings:
    """Everything the definitions need to know that is not a secret."""

    store: str = "embedded"
    source: str = "simulated"
    data_dir: Path = field(default_factory=default_data_dir)
    universe: tuple[MainSymbol, ...] = tuple(parse_universe(DEFAULT_UNIVERSE))
    start_date: str = DEFAULT_START_DATE
    csv_dir: Path | None = None
    close_time: str = "15:30"
    source_pool_limit: int = 4
    #: Trading days one run covers in a backfill. 1 (default) gives every day its own check
    #: results, blocking and retries; more batches writes across days (one sender, fewer
    #: flushes) at the price of check results folded over the run's days.
    days_per_run: int = 1
    #: Seconds added to each day's download (benchmarks that mimic TqSdk latency).
    source_latency_seconds: float = 0.0
    #: Smallest share of a stored day's rows a re-download may bring (allow-shrink tag aside).
    replace_min_ratio: float = 0.5
    #: Several TqSdk accounts (``GHTRADER_TQ_ACCOUNTS``, :mod:`ghtrader_assets.accounts`):
    #: which account downloads which symbol. ``None``: one account, pool ``tqsdk``.
    tq_accounts: TqAccounts | None = None
    #: ``GHTRADER_SOURCE_POOL_LIMIT`` was set (not the default): the CLI applies it even over
    #: a TqSdk pool limit already set in the instance.
    source_pool_limit_given: bool = False

    @property
    def keeps_instance_pool_limit(self) -> bool:
        """Whether ``ghtrader demo``/``backfill`` leave a pool limit already set in the
        instance alone: for TqSdk (an account's cap, perhaps set apart with ``dagster
        instance concurrency set``) unless ``GHTRADER_SOURCE_POOL_LIMIT`` asks otherwise."""
        return self.source == "tqsdk" and not self.source_pool_limit_given

    def pool_of(self, symbol: MainSymbol) -> str:
        """The Dagster pool the source steps of ``symbol`` claim: its account's
        (``tqsdk_<account>``) with several accounts, else the source's (``tqsdk``, ...)."""
        if self.tq_accounts is not None:
            return self.tq_accounts.pool_of(symbol)
        return self.source

    @property
    def source_pools(self) -> tuple[str, ...]:
        """Every pool a source step may claim (one per account, or the source's one)."""
        if self.tq_accounts is not None:
            return self.tq_accounts.pools
        return (self.source,)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read ``GHTRADER_*`` variables; unknown kinds fail with the allowed values."""
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str) -> str:
            value = env.get(f"GHTRADER_{name}", "").strip()
            return value or default

        store = get("STORE", "embedded").lower()
        source = get("SOURCE", "simulated").lower()
        if store not in STORE_KINDS:
            raise SettingsError(f"GHTRADER_STORE={store!r}: expected one of {STORE_KINDS}")
        if source not in SOURCE_KINDS:
            raise SettingsError(f"GHTRADER_SOURCE={source!r}: expected one of {SOURCE_KINDS}")
        if source == "tqsdk":  # GHTRADER_TQ_* tuning: fail at load, not in the first step
            from ghtrader_assets.sources.tqsdk_settings import TqSdkSettings

            TqSdkSettings.from_env(env)
        data_dir = Path(get("DATA_DIR", str(Path.home() / ".ghtrader"))).expanduser()
        csv_dir = env.get("GHTRADER_CSV_DIR")
        pool_limit = parse_number(
            get("SOURCE_POOL_LIMIT", "4"), "GHTRADER_SOURCE_POOL_LIMIT", int, 1
        )
        days_per_run = parse_number(get("DAYS_PER_RUN", "1"), "GHTRADER_DAYS_PER_RUN", int, 1)
        ratio = parse_number(
            get("REPLACE_MIN_RATIO", "0.5"), "GHTRADER_REPLACE_MIN_RATIO", float, 0
        )
        if ratio > 1:
            raise SettingsError(
                f"GHTRADER_REPLACE_MIN_RATIO={ratio!r} must be a number from 0 to 1"
            )
        universe = parse_universe_setting(env.get("GHTRADER_UNIVERSE"))
        from ghtrader_assets.accounts import accounts_from_env

        return cls(
            store=store,
            source=source,
            data_dir=data_dir,
            universe=universe,
            tq_accounts=accounts_from_env(env, universe, source),
            start_date=parse_start_date(get("START_DATE", DEFAULT_START_DATE)),
            csv_dir=Path(csv_dir).expanduser() if csv_dir else None,
            close_time=parse_close_time(get("CLOSE_TIME", "15:30")),
            source_pool_limit=pool_limit,
            source_pool_limit_given=bool(env.get("GHTRADER_SOURCE_POOL_LIMIT", "").strip()),
            days_per_run=days_per_run,
            source_latency_seconds=parse_number(
                get("SOURCE_LATENCY_SECONDS", "0"), "GHTRADER_SOURCE_LATENCY_SECONDS", float, 0
            ),
            replace_min_ratio=ratio,
        )

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Settings:
        """:meth:`from_env` plus :func:`check_environment`: what the definitions load with."""
        settings = cls.from_env(dict(env) if env is not None else None)
        check_environment(env)
        return settings

    @property
    def store_dir(self) -> Path:
        """Where the embedded store keeps its Parquet dataset."""
        return self.data_dir / "store"

    @property
    def manifest_dir(self) -> Path:
        """Where manifests are written as JSON files, next to the store."""
        return self.data_dir / "manifests"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Parse every ``GHTRADER_*`` setting that lives outside :class:`Settings` (validation
    thresholds, automation, QuestDB, Prometheus) so a bad value or an unknown
    ``GHTRADER_VALIDATION_*`` name fails when the definitions load, not inside a run after
    partial writes. Every failure is a :class:`SettingsError` naming the variable."""
    from ghtrader_assets.automation import AutomationSettings
    from ghtrader_assets.metrics import exporter_settings
    from ghtrader_assets.stores.questdb.settings import QuestDBSettings
    from ghtrader_assets.validation.config import ValidationConfig

    env = os.environ if env is None else env
    for parse in (
        ValidationConfig.from_env,
        AutomationSettings.from_env,
        QuestDBSettings.from_env,
        exporter_settings,
    ):
        try:
            parse(env)
        except SettingsError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(one_line(exc)) from None

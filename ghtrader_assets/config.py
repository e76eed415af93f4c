"""Settings read from ``GHTRADER_*`` environment variables, with defaults that run the demo.

Only non-secret settings live here. Secrets (TqSdk account, QuestDB password/token) are
never read into this object: the Dagster resources take them through ``EnvVar`` so they
stay out of run configs, logs and the UI (see :mod:`ghtrader_assets.resources`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghtrader_assets.symbols import MainSymbol, SymbolError, parse_universe

DEFAULT_UNIVERSE = "KQ.m@SHFE.cu,KQ.m@SHFE.au,KQ.m@SHFE.ag,KQ.m@DCE.m,KQ.m@CZCE.SR"
DEFAULT_START_DATE = "2025-01-02"
STORE_KINDS = ("embedded", "questdb")
SOURCE_KINDS = ("simulated", "csv", "tqsdk")


class SettingsError(ValueError):
    """A GHTRADER_* variable holds a value this project cannot use."""


class UniverseError(SettingsError, SymbolError):
    """``GHTRADER_UNIVERSE`` names a malformed symbol or an unknown product."""


def _universe(text: str) -> tuple[MainSymbol, ...]:
    try:
        return tuple(parse_universe(text))
    except SymbolError as exc:
        raise UniverseError(f"GHTRADER_UNIVERSE: {exc}") from None


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
        return cls(
            store=store,
            source=source,
            data_dir=data_dir,
            universe=_universe(get("UNIVERSE", DEFAULT_UNIVERSE)),
            start_date=get("START_DATE", DEFAULT_START_DATE),
            csv_dir=Path(csv_dir).expanduser() if csv_dir else None,
            close_time=get("CLOSE_TIME", "15:30"),
            source_pool_limit=pool_limit,
            days_per_run=days_per_run,
            source_latency_seconds=parse_number(
                get("SOURCE_LATENCY_SECONDS", "0"), "GHTRADER_SOURCE_LATENCY_SECONDS", float, 0
            ),
        )

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

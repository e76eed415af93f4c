"""Tuning of the TqSdk source, read from ``GHTRADER_TQ_*`` variables and validated at load.

Why these knobs exist (each answers a way the real tqsdk 3.10 library behaves in a long
backfill; see the README's "TqSdk limits"):

* ``GHTRADER_TQ_CACHE_DIR``: where tqsdk's ``DataSeries`` writes its tick cache (232 bytes
  per SHFE tick, 104 elsewhere). Default ``$GHTRADER_DATA_DIR/tqsdk_cache``; in Docker put it
  on a volume, not in the container layer. Each source gets its own sub-directory, emptied
  after every download and removed on close.
* ``GHTRADER_TQ_CALL_TIMEOUT``: our wall-clock deadline for one TqSdk call (a day's
  download, a lookup). tqsdk's own 30 s deadline restarts on *every* update the connection
  delivers, so a stalled download never times out while the market trades.
* ``GHTRADER_TQ_RECYCLE_DAYS`` / ``GHTRADER_TQ_RECYCLE_ROWS``: a ``TqApi`` keeps every tick
  it downloaded in memory for its whole life (about 4 KiB per tick); after this many days or
  rows the source closes it and logs in again on the next call.
* ``GHTRADER_TQ_ROLL_TABLE_TTL`` / ``GHTRADER_TQ_ROLL_TABLE_TIMEOUT``: the main-contract
  table is fetched by the source itself (tqsdk caches it once per process, without an HTTP
  timeout): at most this old, and each fetch bounded by this timeout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The table tqsdk's ``query_his_cont_quotes`` downloads (``TQ_CONT_TABLE_URL`` overrides it,
#: as in tqsdk).
DEFAULT_ROLL_TABLE_URL = "https://files.shinnytech.com/continuous_table.json"


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    from ghtrader_assets.config import parse_number

    text = env.get(name, "").strip()
    return float(parse_number(text, name, float, minimum)) if text else default


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    from ghtrader_assets.config import parse_number

    text = env.get(name, "").strip()
    return int(parse_number(text, name, int, minimum)) if text else default


@dataclass(frozen=True)
class TqSdkSettings:
    """Validated TqSdk source settings (no secrets: the account comes through ``EnvVar``)."""

    #: Root of the per-source tick cache directories; ``None``: ``<data dir>/tqsdk_cache``.
    cache_root: Path | None = None
    #: Wall-clock seconds one TqSdk call may take before it is abandoned (and retried).
    call_timeout: float = 300.0
    #: A TqApi is recycled after this many downloaded days ...
    recycle_days: int = 5
    #: ... or this many downloaded rows (raw, before trimming), whichever comes first.
    recycle_rows: int = 100_000
    #: Seconds a fetched main-contract table is trusted before it is fetched again.
    roll_table_ttl: float = 900.0
    #: HTTP timeout (seconds) of one main-contract table fetch.
    roll_table_timeout: float = 20.0
    roll_table_url: str = DEFAULT_ROLL_TABLE_URL

    def __post_init__(self) -> None:
        if self.call_timeout <= 0 or self.roll_table_timeout <= 0:
            raise ValueError("TqSdk call and roll-table timeouts must be > 0 seconds")
        if self.recycle_days < 1 or self.recycle_rows < 1:
            raise ValueError("TqSdk recycle budgets must be >= 1")
        if self.roll_table_ttl < 0:
            raise ValueError("GHTRADER_TQ_ROLL_TABLE_TTL must be >= 0 seconds")

    @property
    def cache_dir(self) -> Path:
        """The cache root to use: the configured one or ``<GHTRADER_DATA_DIR>/tqsdk_cache``."""
        if self.cache_root is not None:
            return self.cache_root
        from ghtrader_assets.config import default_data_dir

        return default_data_dir() / "tqsdk_cache"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TqSdkSettings:
        """Read ``GHTRADER_TQ_*`` (``os.environ`` by default); a bad value raises
        :class:`~ghtrader_assets.config.SettingsError` naming the variable."""
        env = os.environ if env is None else env
        cache = env.get("GHTRADER_TQ_CACHE_DIR", "").strip()
        return cls(
            cache_root=Path(cache).expanduser() if cache else None,
            call_timeout=_number(env, "GHTRADER_TQ_CALL_TIMEOUT", 300.0, 1),
            recycle_days=_integer(env, "GHTRADER_TQ_RECYCLE_DAYS", 5, 1),
            recycle_rows=_integer(env, "GHTRADER_TQ_RECYCLE_ROWS", 100_000, 1),
            roll_table_ttl=_number(env, "GHTRADER_TQ_ROLL_TABLE_TTL", 900.0, 0),
            roll_table_timeout=_number(env, "GHTRADER_TQ_ROLL_TABLE_TIMEOUT", 20.0, 1),
            roll_table_url=env.get("TQ_CONT_TABLE_URL", "").strip() or DEFAULT_ROLL_TABLE_URL,
        )

"""Manifests: one lineage record per symbol-day.

A manifest says what a stored partition is: source, underlying contract, row count,
first/last tick, schema hash, code version and the check outcomes it passed. It is stored
in the store (queryable: "which manifests cover date X?") and written as a JSON file
atomically (temp file + rename) for tools that read files.

Order matters, so the file never vouches for more than the table: the IO manager writes the
JSON only after the table row landed (:mod:`ghtrader_assets.io_managers`), and a withdrawal
clears the table row first, then the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ghtrader_assets.code_version import code_version
from ghtrader_assets.schema import MANIFESTS, TICKS, conform, empty_frame, schema_hash
from ghtrader_assets.stores.base import StoreError, TickStore
from ghtrader_assets.symbols import MainSymbol


def build_manifest(
    *,
    symbol: str,
    trading_day: str,
    day_start: pd.Timestamp,
    underlying: str,
    source: str,
    rows: int,
    first_tick: pd.Timestamp | None,
    last_tick: pd.Timestamp | None,
    check_outcomes: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """The one-row manifest frame for a symbol-day (MANIFESTS schema)."""
    passed = sum(1 for o in check_outcomes.values() if o.get("passed"))
    row = {
        "symbol": symbol,
        "trading_day": trading_day,
        "ts": day_start,
        "underlying": underlying,
        "source": source,
        "rows": int(rows),
        "first_tick": first_tick if first_tick is not None else pd.NaT,
        "last_tick": last_tick if last_tick is not None else pd.NaT,
        "schema_hash": schema_hash(TICKS),
        "code_version": code_version(),
        "checks_passed": passed,
        "checks_failed": len(check_outcomes) - passed,
        "check_outcomes": json.dumps(check_outcomes, sort_keys=True),
        "created_at": pd.Timestamp.now(tz="UTC"),
    }
    return conform(pd.DataFrame([row]), MANIFESTS)


def manifest_json(frame: pd.DataFrame) -> dict[str, Any]:
    """The JSON document for a one-row manifest frame."""
    row = frame.iloc[0].to_dict()
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[key] = value.isoformat()
        elif value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
            out[key] = None
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = value
    out["check_outcomes"] = json.loads(out["check_outcomes"])
    return out


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> Path:
    """Write ``document`` to ``path`` so readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def manifest_path(manifest_dir: Path, symbol_key: str, trading_day: str) -> Path:
    """``<manifest_dir>/<SHFE_cu>/<YYYY-MM-DD>.json``."""
    return manifest_dir / symbol_key / f"{trading_day}.json"


def withdraw_manifest(store: TickStore, manifest_dir: Path, symbol: MainSymbol, day: str) -> bool:
    """Remove a day's manifest (table row and JSON file) when the day no longer passes.

    A manifest vouches for a stored day. When a re-materialization or a re-validation finds
    a blocking failure, the old manifest would contradict the stored data, so it goes; the
    manifest asset writes a new one once the day passes again. Returns whether one existed.
    """
    try:
        existed = not store.read_partition(MANIFESTS, symbol.raw, day).empty
    except StoreError:  # an unreadable manifest vouches for nothing either: replace it
        existed = True
    if existed:
        store.write_partition(MANIFESTS, symbol.raw, day, empty_frame(MANIFESTS))
    path = manifest_path(manifest_dir, symbol.key, day)
    if path.exists():
        path.unlink()
        existed = True
    return existed


def store_manifests(
    store: TickStore, manifest_dir: Path, symbol: MainSymbol, frames: Mapping[str, pd.DataFrame]
) -> dict[str, Path]:
    """Write the manifests of some days of a step (table rows, then JSON files), for a step
    that materializes only part of its days (see :mod:`ghtrader_assets.assets.day_checks`).
    Same order as the IO manager: every table row written and the store's writes settled
    before any file vouches for them. Returns each day's JSON path."""
    for day, frame in frames.items():
        store.write_partition(MANIFESTS, symbol.raw, day, frame)
    store.settle()
    return {
        day: write_json_atomic(
            manifest_path(manifest_dir, symbol.key, day),
            manifest_json(frame.reset_index(drop=True)),
        )
        for day, frame in frames.items()
    }

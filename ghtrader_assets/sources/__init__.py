"""Tick sources behind one interface: simulated (demo/tests), csv (offline files), tqsdk (real)."""

from ghtrader_assets.sources.base import (
    MalformedInputError,
    NoDataError,
    RollEntry,
    SourceError,
    SourceUnavailableError,
    TickSource,
    UnknownSymbolError,
)

__all__ = [
    "MalformedInputError",
    "NoDataError",
    "RollEntry",
    "SourceError",
    "SourceUnavailableError",
    "TickSource",
    "UnknownSymbolError",
]

"""Build a tick source by kind name, so configuration never imports source modules itself.

The TqSdk source is imported only when asked for: importing ``tqsdk`` is slow and pulls in
network machinery that the simulated demo and the CSV source never need.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ghtrader_assets.sources.base import TickSource

#: kind -> (module, class name)
_SOURCES: dict[str, tuple[str, str]] = {
    "simulated": ("ghtrader_assets.sources.simulated", "SimulatedSource"),
    "csv": ("ghtrader_assets.sources.csv", "CsvSource"),
    "tqsdk": ("ghtrader_assets.sources.tqsdk", "TqSdkSource"),
}
SOURCE_KINDS: tuple[str, ...] = tuple(_SOURCES)


def source_class(kind: str) -> type[TickSource]:
    """The class implementing ``kind`` (imported on demand)."""
    key = kind.strip().lower() if isinstance(kind, str) else kind
    if key not in _SOURCES:
        raise ValueError(f"unknown source kind {kind!r}: expected one of {', '.join(SOURCE_KINDS)}")
    module, name = _SOURCES[key]
    return getattr(importlib.import_module(module), name)


def make_source(kind: str, **options: Any) -> TickSource:
    """A new source of ``kind`` ("simulated" | "csv" | "tqsdk") built with ``options``.

    Unknown option names raise ``ValueError`` listing the accepted ones, rather than a bare
    ``TypeError`` from deep inside a Dagster step.
    """
    cls = source_class(kind)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [
        n for n in params if n != "self" and params[n].kind is not inspect.Parameter.VAR_POSITIONAL
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(
            f"source {kind!r} does not take option(s) {unknown}; accepted: {', '.join(accepted)}"
        )
    return cls(**options)

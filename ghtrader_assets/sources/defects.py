"""Route each trading day to a simulated market with that day's injected defects.

Demos and tests inject defects into chosen symbol-days (``SourceResource.simulated_defects``)
while a step keeps one source open for all its days, so the per-day choice lives here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ghtrader_assets.sources.base import RollEntry, TickSource
from ghtrader_assets.sources.simulated import SimulatedSource
from ghtrader_assets.symbols import MainSymbol


class DefectRouter(TickSource):
    """A simulated source whose defects depend on the trading day.

    ``per_day`` maps an ISO trading day, or ``"*"`` for every other day, to the defects of
    :class:`SimulatedSource`; days with neither get a clean market.
    """

    name = "simulated"

    def __init__(self, seed: int, per_day: Mapping[str, Mapping[str, Any]]) -> None:
        self.seed = seed
        self.per_day = dict(per_day)
        self._sources: dict[str, SimulatedSource] = {}

    def _for(self, day: dt.date) -> SimulatedSource:
        key = day.isoformat()
        chosen = key if key in self.per_day else "*" if "*" in self.per_day else ""
        if chosen not in self._sources:
            defects = self.per_day.get(chosen) or None
            self._sources[chosen] = SimulatedSource(seed=self.seed, defects=defects)
        return self._sources[chosen]

    def roll_entry(self, symbol: MainSymbol, trading_day: dt.date) -> RollEntry:
        return self._for(trading_day).roll_entry(symbol, trading_day)

    def ticks(self, entry: RollEntry) -> pd.DataFrame:
        return self._for(entry.trading_day).ticks(entry)

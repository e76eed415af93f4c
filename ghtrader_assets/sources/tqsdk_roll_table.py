"""TqSdk's main-contract table, fetched by us: fresh, time-bounded, and honest about its end.

``TqApi.query_his_cont_quotes`` reads ``continuous_table.json`` once per *process* into the
class attribute ``TqContCalendar.continuous`` (``tqsdk/calendar.py:81-84``, a
``requests.get`` without timeout) and fills it forward to the library's weekday-only
"current trading day". A long-lived process (the automation daemon's workers, the demo's
pool) therefore kept mapping today's main symbol to whatever the table said when the process
started, and a row for today existed even when the server had not published it: carried
forward from the previous contract, silently.

So the source fetches the same table itself (same URL, ``TQ_CONT_TABLE_URL`` honoured) with
an HTTP timeout, once per source (one per Dagster step) and again when older than a TTL,
and every answer says whether the table *confirms* it: a day after the table's last
published date is only carried forward. The source then asks the live main quote (see
:meth:`ghtrader_assets.sources.tqsdk.TqSdkSource.roll_entry`).

Format (as tqsdk reads it): ``{"SHFE.cu": [["20250102", "SHFE.cu2502"], ...], ...}``, rows
sorted or not, possibly only on the days the main contract changed; a day's main is the
contract of the last row on or before it (tqsdk's forward fill).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ghtrader_assets.sources.base import MalformedInputError

#: Fetches the raw table: ``(url, timeout_seconds) -> parsed JSON``.
RollTableFetcher = Callable[[str, float], Any]


def http_fetch(url: str, timeout: float) -> Any:
    """GET the table with a timeout (tqsdk's own request has none)."""
    import requests

    response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


@dataclass(frozen=True)
class RollAnswer:
    """The table's main contract for one day, and whether the table confirms it."""

    contract: str  # "" when the main symbol had no contract yet
    confirmed: bool
    published_through: dt.date


@dataclass(frozen=True)
class RollTable:
    """One fetch of the main-contract table."""

    rows: Mapping[str, tuple[tuple[dt.date, ...], tuple[str, ...]]]
    published_through: dt.date
    fetched_at: dt.datetime
    url: str

    @classmethod
    def parse(cls, raw: Any, *, url: str, fetched_at: dt.datetime) -> RollTable:
        """Check and index the JSON; errors name the table, the key and the row."""
        where = f"TqSdk main-contract table {url}"
        if not isinstance(raw, Mapping) or not raw:
            raise MalformedInputError(f"{where}: expected a non-empty JSON object")
        rows: dict[str, tuple[tuple[dt.date, ...], tuple[str, ...]]] = {}
        last = dt.date.min
        for key, entries in raw.items():
            if not isinstance(entries, list):
                raise MalformedInputError(f"{where}: {key!r} is not a list of [date, contract]")
            pairs: list[tuple[dt.date, str]] = []
            for i, entry in enumerate(entries):
                try:
                    day_text, contract = entry
                    day = dt.datetime.strptime(str(day_text), "%Y%m%d").date()
                except (TypeError, ValueError):
                    raise MalformedInputError(
                        f"{where}: {key!r} row {i}: {entry!r} is not [YYYYMMDD, contract]"
                    ) from None
                pairs.append((day, str(contract or "").strip()))
            pairs.sort(key=lambda p: p[0])
            if pairs:
                last = max(last, pairs[-1][0])
            rows[f"KQ.m@{key}"] = (tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
        if last == dt.date.min:
            raise MalformedInputError(f"{where}: no rows")
        return cls(rows, last, fetched_at, url)

    def knows(self, main: str) -> bool:
        return main in self.rows

    def first_day(self, main: str) -> dt.date | None:
        days, _ = self.rows.get(main, ((), ()))
        return days[0] if days else None

    def answer(self, main: str, day: dt.date) -> RollAnswer:
        """The contract that is main on ``day`` (forward-filled like tqsdk)."""
        days, contracts = self.rows[main]
        i = bisect.bisect_right(days, day) - 1
        contract = contracts[i] if i >= 0 else ""
        return RollAnswer(contract, day <= self.published_through, self.published_through)

    def age_seconds(self, now: dt.datetime) -> float:
        return (now - self.fetched_at).total_seconds()

"""The fixed catalogue of checks and rules, and why each one has the severity it has.

A *rule* measures one thing (a count, a share, a length in seconds) and compares it with its
thresholds from :class:`~ghtrader_assets.validation.config.ValidationConfig`. A *check* is a
small group of rules shown as one Dagster asset check on the ticks asset; its names are fixed
so the asset layer can declare its ``AssetCheckSpec`` objects up front. Nine checks keep the
UI readable while every rule still reports its own figure as metadata.

Severity reasoning (defaults; every threshold and level is configurable):

* ``field_quality`` and ``book_integrity`` fail at ERROR and block: a wrong dtype, a
  non-positive price, a negative volume, a cumulative volume that falls, a crossed book or a
  broken ladder is a fact that is wrong in the data itself. Storing a manifest for such a day
  would certify corrupt rows to every reader.
* ``nulls``: a few null quotes are normal (an empty side at a limit move), so the null
  *rate* only warns; a *run* of more than 100 consecutive nulls means a field stopped being
  published and blocks.
* ``duplicates``: ingestion drops exact duplicate rows before storing (see
  :func:`~ghtrader_assets.validation.engine.drop_exact_duplicates`), so what is stored is
  clean and exact duplicates only warn. Two rows with the same ``(ts, id)`` key but different
  values are an ERROR and block: the store's dedup key would silently keep one version.
* ``gaps``, ``cadence`` and ``completeness`` are coverage policy: small holes warn, large
  ones (a gap above 30 s, more than 10 % of expected half-seconds missing, no ticks on a
  trading day, ticks ending long before the close) block, because a consumer of the manifest
  assumes the day is complete.
* ``cadence``: an event-driven day (most seconds hold one tick) on a product that streams
  every 500 ms warns (``event_cadence``): the feed was thinned, but each tick is still valid.
* ``out_of_session`` warns on any *trading* tick outside the sessions (sources trim to
  sessions, so one is a sign our calendar or trimming is off) and blocks above 60 seconds of
  them, which means whole stretches of data were assigned to the wrong day or the calendar
  is wrong. A tick outside the sessions whose cumulative volume did not grow is a *snapshot*
  (vendors' pre-open static rows around 18:30/19:30, post-close settlement rows until about
  16:00, CFFEX's 00:00 placeholders): counted as ``off_session_snapshots``, never a failure,
  because it records no trade the calendar could have misplaced. ``misdated_rows`` (WARN)
  counts rows of a one-day file stamped on another trading day that the source left out
  (a CZCE file's last row repeating the previous night's close, stamped 23:29:59).
* ``gaps`` and ``session_end_lag`` separate a *quiet* market from a provider hole: a gap
  (or the stretch before the close) across which cumulative volume grew by no more than
  one ordinary tick carries (the day's 99th percentile of per-tick volume) hid no trades;
  it is reported (WARN, ``quiet_gaps``) but never blocks, so an illiquid contract's genuine
  day is not refused. A gap that hid more volume than that is judged by the thresholds.
  Likewise ``half_seconds_missing`` only warns, and ``event_cadence`` passes, when the ticks
  after longer intervals carry no more volume than those at the 500 ms cadence: exchanges
  publish on change, so such empty half-seconds are a market that did not move.
* ``outliers`` never block: a price jump, a volume spike or a wide spread is usually a real
  market event, so it is reported for a human to look at, not used to withhold the day.
* ``open_interest_decrease`` is INFO only (counted, never fails): open interest falls
  whenever positions are closed, so unlike volume and amount it is not cumulative.

Every rule also names the *layer* it speaks for in the day's verdict: ``engineering`` (our
pipeline did something wrong), ``source`` (the provider's data is defective) or ``policy``
(the data is plausible but misses our completeness policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layer = Literal["engineering", "source", "policy"]
LAYERS: tuple[Layer, ...] = ("engineering", "source", "policy")


@dataclass(frozen=True)
class CheckDef:
    """One asset check on the ticks asset. ``blocking``: a failure at ERROR severity stops the
    day's manifest (Dagster ``AssetCheckSpec(blocking=...)``); WARN failures never block."""

    name: str
    description: str
    blocking: bool


@dataclass(frozen=True)
class RuleDef:
    """One measured rule: which check shows it, which verdict layer it speaks for, its unit
    and the one-line action hint shown when it fails."""

    name: str
    check: str
    layer: Layer
    unit: str
    description: str
    hint: str

    @property
    def reason_code(self) -> str:
        return self.name.upper()


CHECKS: tuple[CheckDef, ...] = (
    CheckDef(
        "field_quality",
        "TICKS schema (dtypes, positive prices, non-negative volumes), cumulative volume and "
        "amount never decreasing within the day, prices inside the limit band when known.",
        blocking=True,
    ),
    CheckDef(
        "book_integrity",
        "Order book consistency: bid1 < ask1 when both quoted, bid prices strictly falling and "
        "ask prices strictly rising from level 1 to 5.",
        blocking=True,
    ),
    CheckDef(
        "nulls",
        "Null rates of bid1, ask1, last, volume, open interest and of levels 2-5; runs of "
        "consecutive nulls in a key field.",
        blocking=True,
    ),
    CheckDef(
        "duplicates",
        "Exact duplicate rows (dropped before storing: warn) and rows sharing the (ts, id) key "
        "with different values (error).",
        blocking=True,
    ),
    CheckDef(
        "gaps",
        "Runs of empty seconds inside the sessions, bucketed 2-5, 6-15, 16-30, >30 s; "
        "threshold per product and session kind.",
        blocking=True,
    ),
    CheckDef(
        "cadence",
        "Cadence mode (fixed half-second or event-driven) and, on fixed days, the share of "
        "expected half-seconds without a tick.",
        blocking=True,
    ),
    CheckDef(
        "out_of_session",
        "Ticks outside the product's sessions for the trading day (auction and closing prints "
        "next to a session boundary excepted).",
        blocking=True,
    ),
    CheckDef(
        "completeness",
        "A trading day with sessions but no ticks, and the lag between the last tick and the "
        "close of the last session.",
        blocking=True,
    ),
    CheckDef(
        "outliers",
        "Price jumps above k rolling standard deviations, volume spikes above a multiple of "
        "the rolling median, spreads above a multiple of the day's p95 spread. Never blocks.",
        blocking=False,
    ),
)

CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in CHECKS)
CHECKS_BY_NAME: dict[str, CheckDef] = {c.name: c for c in CHECKS}

_RULES: tuple[RuleDef, ...] = (
    RuleDef(
        "schema",
        "field_quality",
        "engineering",
        "failures",
        "pandera TICKS schema failures (missing/extra columns, dtypes, required nulls)",
        "the frame does not match TICKS: fix the source normaliser and re-ingest the day",
    ),
    RuleDef(
        "non_positive_price",
        "field_quality",
        "source",
        "rows",
        "rows with a price (last, high, low, average, book) <= 0",
        "provider sent non-positive prices: re-download the day or report it to the provider",
    ),
    RuleDef(
        "negative_volume",
        "field_quality",
        "source",
        "rows",
        "rows with a negative volume, amount, open interest or book volume",
        "provider sent negative volumes: re-download the day or report it to the provider",
    ),
    RuleDef(
        "cumulative_decrease",
        "field_quality",
        "source",
        "rows",
        "rows whose cumulative volume or amount is below an earlier value of the day",
        "cumulative volume fell within the day: check for mixed contracts or a feed reset",
    ),
    RuleDef(
        "open_interest_decrease",
        "field_quality",
        "source",
        "rows",
        "rows whose open interest is below the previous value (normal: positions close)",
        "open interest fell; normal when positions close, inspect only if asked",
    ),
    RuleDef(
        "limit_band",
        "field_quality",
        "source",
        "rows",
        "rows with a price outside the day's [lower, upper] limit band",
        "prices outside the limit band: check the underlying contract and the limits",
    ),
    RuleDef(
        "crossed_book",
        "book_integrity",
        "source",
        "rows",
        "rows with bid1 >= ask1 while both are quoted",
        "crossed book from the provider: re-download the day; report if it persists",
    ),
    RuleDef(
        "bid_ladder",
        "book_integrity",
        "source",
        "rows",
        "rows whose bid prices do not strictly fall from level 1 to 5",
        "bid levels out of order: check level mapping in the source normaliser",
    ),
    RuleDef(
        "ask_ladder",
        "book_integrity",
        "source",
        "rows",
        "rows whose ask prices do not strictly rise from level 1 to 5",
        "ask levels out of order: check level mapping in the source normaliser",
    ),
    RuleDef(
        "null_rate",
        "nulls",
        "source",
        "share",
        "largest null share among bid1, ask1, last, volume, open interest",
        "key fields are null: check for limit-locked sides or a partial feed",
    ),
    RuleDef(
        "null_rate_depth",
        "nulls",
        "source",
        "share",
        "null share of book levels 2-5 (five-level products only)",
        "levels 2-5 are often empty: check the five-level subscription",
    ),
    RuleDef(
        "null_run",
        "nulls",
        "source",
        "rows",
        "longest run of consecutive nulls in a key field",
        "a key field stopped being published for a stretch: re-download the day",
    ),
    RuleDef(
        "exact_duplicates",
        "duplicates",
        "engineering",
        "rows",
        "exact duplicate rows (dropped at ingestion plus any still present)",
        "the provider repeated rows; dropped before storing, no action unless it grows",
    ),
    RuleDef(
        "conflicting_duplicates",
        "duplicates",
        "source",
        "rows",
        "rows sharing (ts, id) with different values",
        "two versions of one tick: the store keeps one; re-download and compare",
    ),
    RuleDef(
        "gap",
        "gaps",
        "policy",
        "seconds",
        "longest run of empty seconds inside a session (per-session threshold)",
        "holes in the session: run gap attribution or re-download the day",
    ),
    RuleDef(
        "event_cadence",
        "cadence",
        "source",
        "flag",
        "1 when the day is event-driven on a product expected to stream every 500 ms",
        "the half-second stream was thinned: re-download, or list the product as event-driven",
    ),
    RuleDef(
        "half_seconds_missing",
        "cadence",
        "policy",
        "share",
        "share of expected half-seconds without a tick (fixed-cadence days only)",
        "the half-second stream is thin: re-download the day or accept it as sparse",
    ),
    RuleDef(
        "out_of_session",
        "out_of_session",
        "engineering",
        "seconds",
        "seconds holding ticks outside the sessions",
        "ticks outside sessions: check the calendar, exchange events and session trimming",
    ),
    RuleDef(
        "misdated_rows",
        "out_of_session",
        "source",
        "rows",
        "rows of a one-day file stamped on another trading day, left out before storing",
        "the provider mis-stamped a few rows (e.g. a repeat of the last close): they were "
        "left out; no action unless the count grows",
    ),
    RuleDef(
        "missing_day",
        "completeness",
        "source",
        "flag",
        "1 when the day has sessions but no tick inside them",
        "no ticks on a trading day: check the roll schedule and the provider, then retry",
    ),
    RuleDef(
        "session_end_lag",
        "completeness",
        "policy",
        "seconds",
        "seconds from the last tick to the close of the last session",
        "ticks stop before the close: re-download the day once the provider has it all",
    ),
    RuleDef(
        "price_jump",
        "outliers",
        "source",
        "rows",
        "ticks whose price change exceeds k rolling standard deviations (and one tick)",
        "price jumps: compare with another source before using the day for signals",
    ),
    RuleDef(
        "volume_spike",
        "outliers",
        "source",
        "rows",
        "ticks whose traded volume exceeds a multiple of the rolling median",
        "volume spikes: usually real block trades; inspect if they cluster",
    ),
    RuleDef(
        "spread_anomaly",
        "outliers",
        "source",
        "rows",
        "ticks whose spread exceeds a multiple of the day's p95 spread",
        "wide spreads: usually thin books at the open; inspect if they persist",
    ),
)

RULES: dict[str, RuleDef] = {r.name: r for r in _RULES}
RULE_NAMES: tuple[str, ...] = tuple(RULES)


def rules_of(check: str) -> tuple[RuleDef, ...]:
    """The rules shown by ``check``, in catalogue order."""
    return tuple(r for r in _RULES if r.check == check)


def _self_check() -> None:
    unknown = {r.check for r in _RULES} - set(CHECK_NAMES)
    empty = [c for c in CHECK_NAMES if not rules_of(c)]
    if unknown or empty:  # pragma: no cover - a catalogue edit gone wrong
        raise RuntimeError(f"rule catalogue inconsistent: unknown checks {unknown}, empty {empty}")


_self_check()

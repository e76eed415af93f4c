"""The work behind the per-symbol assets, free of Dagster decorators so it is easy to test.

One trading day at a time: ask the source for the roll entry and ticks, drop exact duplicate
rows, validate, and turn validation outcomes into asset-check results. A run may cover
several days (a backfill policy with more than one partition per run): the functions here
take one day, the assets loop, and :func:`check_results` folds several days into one result
per check because Dagster records one check evaluation per step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, Failure

from ghtrader_assets.calendar import day_start_utc
from ghtrader_assets.metadata import sample_table
from ghtrader_assets.quarantine import REJECTED_TICKS, quarantine
from ghtrader_assets.resources import SourceResource
from ghtrader_assets.schema import (
    ROLL_SCHEDULE,
    TICKS,
    VALIDATION_GAPS,
    VALIDATION_SUMMARY,
    conform,
)
from ghtrader_assets.sessions import not_listed_reason
from ghtrader_assets.sources.base import MalformedInputError, RollEntry, SourceError, TickSource
from ghtrader_assets.sources.skip_ledger import DaySkippedError, SkipLedger, SkipReason
from ghtrader_assets.stores.base import CorruptPartitionError, TickStore
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import (
    AttributionBudget,
    ValidationConfig,
    ValidationResult,
    drop_exact_duplicates,
    validate_day,
)


def roll_frame(symbol: MainSymbol, trading_day: str, underlying: str, source: str) -> pd.DataFrame:
    """The one-row roll-schedule partition with a hash of the mapping it states."""
    digest = hashlib.sha256(f"{symbol.raw}|{trading_day}|{underlying}".encode()).hexdigest()[:16]
    row = {
        "symbol": symbol.raw,
        "trading_day": trading_day,
        "ts": day_start_utc(trading_day),
        "underlying": underlying,
        "source": source,
        "schedule_hash": digest,
    }
    return conform(pd.DataFrame([row]), ROLL_SCHEDULE)


T = TypeVar("T")


class SourceFailure(Failure):
    """A source error turned into a Dagster failure with a message a user can act on."""


def source_failure(symbol: MainSymbol, trading_day: str, exc: SourceError) -> SourceFailure:
    """Name symbol, day and cause; malformed input and unknown symbols are not retried."""
    retry = not isinstance(exc, MalformedInputError | DaySkippedError)
    metadata = {"error": type(exc).__name__, "symbol": symbol.raw, "trading_day": trading_day}
    if isinstance(exc, DaySkippedError):
        metadata.update(skip_reason=exc.reason, skip_detail=exc.detail)
    return SourceFailure(
        description=f"{symbol.raw} {trading_day}: {type(exc).__name__}: {exc}",
        metadata=metadata,
        allow_retries=retry,
    )


class StepSource:
    """The one source a step uses for all its days, opened on first use, closed at the end.

    One login per step instead of one per day (TqSdk), and a summary-only recompute never
    opens it at all. Source errors become Dagster failures naming symbol and day; a day the
    source skipped on purpose is also written to the skip ledger.
    """

    def __init__(self, resource: SourceResource, symbol: MainSymbol, store: TickStore) -> None:
        self.resource = resource
        self.symbol = symbol
        self.store = store
        self._source: TickSource | None = None

    def call(self, trading_day: str, fn: Callable[[TickSource], T]) -> T:
        try:
            if self._source is None:
                self._source = self.resource.open(self.symbol)
            return fn(self._source)
        except DaySkippedError as exc:
            SkipLedger(self.store).record_error(exc, source=self.resource.kind)
            raise source_failure(self.symbol, trading_day, exc) from None
        except SourceError as exc:
            raise source_failure(self.symbol, trading_day, exc) from None

    def close(self) -> None:
        if self._source is not None:
            source, self._source = self._source, None
            source.close()

    def __enter__(self) -> StepSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_listed(source: StepSource, trading_day: str) -> None:
    """A day before the product's listing (or while it is delisted) is not work: record a
    ``not_listed`` skip and fail the step saying so, without opening the source (the
    automation and backfills never request such days; this catches explicit requests)."""
    symbol, day = source.symbol, dt.date.fromisoformat(trading_day)
    reason = not_listed_reason(symbol.exchange, symbol.product, day)
    if reason is None:
        return
    exc = DaySkippedError(symbol, day, SkipReason.NOT_LISTED, reason)
    SkipLedger(source.store).record_error(exc, source=source.resource.kind)
    raise source_failure(symbol, trading_day, exc)


def fetch_roll(source: StepSource, trading_day: str) -> pd.DataFrame:
    """The roll-schedule row of one day."""
    symbol, day = source.symbol, dt.date.fromisoformat(trading_day)
    require_listed(source, trading_day)
    entry = source.call(trading_day, lambda src: src.roll_entry(symbol, day))
    return roll_frame(symbol, trading_day, entry.underlying, entry.source)


#: Run tag that lets a re-download replace a stored day with far fewer rows (or none).
ALLOW_SHRINK_TAG = "ghtrader/allow_shrink"

#: Run tag (``true``) that re-validates stored ticks instead of downloading them: the checks
#: and the validation summary are recomputed (after a threshold change), the ticks are left
#: as stored and the source is never opened.
REVALIDATE_TAG = "ghtrader/revalidate"


def replacement_min_ratio() -> float:
    """``GHTRADER_REPLACE_MIN_RATIO`` (default 0.5): the smallest share of a stored day's rows
    a re-download may bring without the allow-shrink tag (checked when definitions load)."""
    from ghtrader_assets.config import Settings

    return Settings.from_env().replace_min_ratio


class ShrinkRefused(Failure):
    """:func:`guard_replacement` refused a download that lost most of a stored day (nothing
    was written). A run of one day fails with it; a run of several days keeps the stored
    day and goes on with the others (see :func:`ingest_day`)."""


def guard_replacement(
    store: TickStore, symbol: MainSymbol, trading_day: str, new_rows: int, *, allow: bool
) -> None:
    """Refuse to replace a stored day with a download that lost most of it.

    A provider hiccup (an empty or truncated answer) must not destroy good stored ticks:
    the blocking checks only run after the write, so the comparison happens before it,
    against the row count in the day's stored validation summary.
    """
    if allow:
        return
    try:
        stored = store.read_partition(VALIDATION_SUMMARY, symbol.raw, trading_day)
    except CorruptPartitionError:
        # A corrupt stored summary vouches for nothing: it must never block replacing
        # the day (the store has marked it corrupt; coverage and status report it). Any
        # other read failure propagates: an unanswered read says nothing about the day.
        return
    if stored.empty:
        return
    before = int(stored.at[0, "rows"])
    ratio = replacement_min_ratio()
    if before > 0 and new_rows < before * ratio:
        raise ShrinkRefused(
            f"{symbol.raw} {trading_day}: refusing to replace {before} stored ticks with "
            f"{new_rows} downloaded ({new_rows / before:.0%} < {ratio:.0%} of the stored day); "
            f"nothing was changed. If the smaller day is right, re-run with the run tag "
            f"{ALLOW_SHRINK_TAG}=true.",
            metadata={"stored_rows": before, "downloaded_rows": new_rows},
            allow_retries=True,
        )


#: Run tag that lets a download failing blocking checks replace a stored day that passed.
ALLOW_FAILING_TAG = "ghtrader/allow_failing_replacement"

logger = logging.getLogger(__name__)


#: ``replacement`` metadata of a day whose download was refused and whose stored day was
#: kept: the manifest step of the same run skips such a day (and fails naming it).
REFUSED_FAILING = "refused: stored day kept"
REFUSED_SHRINK = "refused (fewer rows): stored day kept"


@dataclass(frozen=True)
class Rejection:
    """A download refused because it fails blocking checks while the stored day passes.

    The stored day is kept (ticks, summary, gaps, manifest); the download went to the
    quarantine tables (:mod:`ghtrader_assets.quarantine`)."""

    downloaded_rows: int
    stored_rows: int
    blocking_failures: tuple[str, ...]
    quarantined_at: str
    #: ``failing``: the download fails blocking checks; ``shrink``: it lost most of the day
    #: (refused by :func:`guard_replacement` in a run of several days, not quarantined).
    kind: str = "failing"

    def message(self, symbol: str, trading_day: str) -> str:
        if self.kind == "shrink":
            return (
                f"{symbol} {trading_day}: download of {self.downloaded_rows} rows refused, "
                f"fewer than {replacement_min_ratio():.0%} of the {self.stored_rows} stored; "
                f"kept the stored day and its manifest. If the smaller day is right, re-run "
                f"with the run tag {ALLOW_SHRINK_TAG}=true."
            )
        return (
            f"{symbol} {trading_day}: download of {self.downloaded_rows} rows fails blocking "
            f"checks ({', '.join(self.blocking_failures)}); kept the stored day "
            f"({self.stored_rows} rows, passed) and its manifest; the rejected download is in "
            f"{REJECTED_TICKS.name} ({self.quarantined_at}). To replace the day anyway, re-run "
            f"with the run tag {ALLOW_FAILING_TAG}=true."
        )

    def metadata(self) -> dict[str, object]:
        if self.kind == "shrink":
            return {
                "replacement": REFUSED_SHRINK,
                "rejected_rows": self.downloaded_rows,
                "kept_rows": self.stored_rows,
                "override_tag": f"{ALLOW_SHRINK_TAG}=true",
            }
        return {
            "replacement": REFUSED_FAILING,
            "rejected_rows": self.downloaded_rows,
            "kept_rows": self.stored_rows,
            "quarantined_at": self.quarantined_at,
            "override_tag": f"{ALLOW_FAILING_TAG}=true",
        }


@dataclass
class DayIngest:
    """What one trading day produced: the ticks to store, validation, and timing figures.

    With ``rejection`` set, ``ticks`` and ``summary`` are the stored (good) day, written back
    unchanged, while ``validation`` is the rejected download's, so the checks report it."""

    trading_day: str
    ticks: pd.DataFrame
    validation: ValidationResult
    summary: pd.DataFrame
    download_seconds: float
    duplicates_dropped: int
    rejection: Rejection | None = None


def stored_good_day(
    store: TickStore, symbol: MainSymbol, trading_day: str, *, passing_only: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The stored ticks and summary of a day that passed its blocking checks, else ``None``
    (with ``passing_only=False``: of any stored day, passed or not).

    A day counts as good when its stored summary records no blocking failure and its stored
    ticks have the row count the summary vouches for. A partition that cannot be read is
    not a good day to protect: it must never stand in the way of replacing it (a store that
    cannot be reached at all raises instead, so the step is retried).
    """
    try:
        summary = store.read_partition(VALIDATION_SUMMARY, symbol.raw, trading_day)
        if summary.empty:
            return None
        if passing_only:
            outcomes = json.loads(str(summary.at[0, "check_outcomes"]))
            if any(o.get("blocking") and not o.get("passed") for o in outcomes.values()):
                return None
        ticks = store.read_partition(TICKS, symbol.raw, trading_day)
    except (CorruptPartitionError, ValueError, AttributeError) as exc:
        # Proven damage (a corrupt partition, an unparsable summary): nothing good to keep.
        # Anything else (a server that does not answer, EMFILE...) propagates, so the step
        # is retried and the stored day is never replaced by accident.
        logger.warning("%s %s: stored day unreadable (%s); not kept", symbol.raw, trading_day, exc)
        return None
    if len(ticks) != int(summary.at[0, "rows"]):
        return None
    return ticks, summary


def _restore_roll(
    store: TickStore, symbol: MainSymbol, trading_day: str, underlying: str, kept: pd.DataFrame
) -> None:
    """The roll step already recorded this download's underlying; the kept day's own
    contract goes back, so roll schedule, ticks and manifest agree."""
    kept_underlying = str(kept.at[0, "underlying"])
    if kept_underlying != underlying:
        store.write_partition(
            ROLL_SCHEDULE,
            symbol.raw,
            trading_day,
            roll_frame(symbol, trading_day, kept_underlying, str(kept.at[0, "source"])),
        )


def ingest_day(
    source: StepSource,
    roll_row: pd.Series,
    config: ValidationConfig,
    *,
    download: bool,
    attribution_budget: AttributionBudget | None = None,
    allow_shrink: bool = False,
    allow_failing: bool = False,
    keep_refused: bool = False,
) -> DayIngest:
    """Download (or, with ``download=False``, read back from the store) and validate one day.

    The replacement decision happens here, before anything is written: a download that
    fails a blocking check while the stored day passed is quarantined and the stored day is
    returned for writing back unchanged (unless ``allow_failing``). A download that lost
    most of the stored day raises :class:`ShrinkRefused`, or, with ``keep_refused`` (a run
    of several days, where one refused day must not stop the others), returns the stored
    day the same way, with the refusal recorded."""
    symbol, store = source.symbol, source.store
    trading_day = str(roll_row["trading_day"])
    day = dt.date.fromisoformat(trading_day)
    underlying, source_name = str(roll_row["underlying"]), str(roll_row["source"])
    entry = RollEntry(symbol, day, underlying, source_name)

    def download_ticks() -> pd.DataFrame:
        return source.call(trading_day, lambda src: src.ticks(entry))

    seconds, dropped, excluded = 0.0, 0, None
    if download:
        started = time.perf_counter()
        raw = download_ticks()
        excluded = source.call(trading_day, lambda src: src.left_out(entry))
        seconds = time.perf_counter() - started
        ticks, dropped = drop_exact_duplicates(raw)
        try:
            guard_replacement(store, symbol, trading_day, len(ticks), allow=allow_shrink)
        except ShrinkRefused:
            kept = (
                stored_good_day(store, symbol, trading_day, passing_only=False)
                if keep_refused
                else None
            )
            if kept is None:
                raise
            result = validate_day(
                ticks, symbol, day, config, duplicates_dropped=dropped, excluded=excluded
            )
            rejection = Rejection(
                downloaded_rows=len(ticks),
                stored_rows=len(kept[0]),
                blocking_failures=tuple(result.blocking_failures),
                quarantined_at="not stored",
                kind="shrink",
            )
            _restore_roll(store, symbol, trading_day, underlying, kept[1])
            return DayIngest(trading_day, kept[0], result, kept[1], seconds, dropped, rejection)
        SkipLedger(store).clear(symbol, day)
    else:
        ticks = store.read_partition(TICKS, symbol.raw, trading_day)
        # Exact duplicates were dropped before storing; keep the count the first pass saw.
        previous = store.read_partition(VALIDATION_SUMMARY, symbol.raw, trading_day)
        dropped = int(previous.at[0, "duplicates_dropped"]) if len(previous) else 0
    # With attribution on, a freshly downloaded day with gaps re-asks the source (once,
    # within the run's budget) whether it has data in the gap windows; a recompute from the
    # store never calls the source.
    result = validate_day(
        ticks,
        symbol,
        day,
        config,
        duplicates_dropped=dropped,
        refetch=download_ticks if download and config.attribution_enabled else None,
        attribution_budget=attribution_budget,
        excluded=excluded,
    )
    summary = _with_lineage(result.summary, underlying, source_name)
    if download and result.blocking_failures and not allow_failing:
        kept = stored_good_day(store, symbol, trading_day)
        if kept is not None:
            location = quarantine(store, symbol.raw, trading_day, ticks, summary)
            rejection = Rejection(
                downloaded_rows=len(ticks),
                stored_rows=len(kept[0]),
                blocking_failures=tuple(result.blocking_failures),
                quarantined_at=location,
            )
            stored_ticks, stored_summary = kept
            _restore_roll(store, symbol, trading_day, underlying, stored_summary)
            return DayIngest(
                trading_day, stored_ticks, result, stored_summary, seconds, dropped, rejection
            )
    return DayIngest(trading_day, ticks, result, summary, seconds, dropped)


def store_gaps(store: TickStore, symbol: MainSymbol, days: Sequence[DayIngest]) -> int:
    """Persist each day's largest gaps next to its summary; returns rows written.

    A day whose download was rejected keeps the gaps of its stored day."""
    return sum(
        store.write_partition(VALIDATION_GAPS, symbol.raw, d.trading_day, d.validation.gaps).rows
        for d in days
        if d.rejection is None
    )


def _with_lineage(summary: pd.DataFrame, underlying: str, source: str) -> pd.DataFrame:
    """Fill underlying/source from the roll schedule when the day had no ticks to tell."""
    out = summary.copy()
    for column, value in (("underlying", underlying), ("source", source)):
        current = out.at[0, column]
        if pd.isna(current) or not str(current).strip():
            out.at[0, column] = value
    return out


def check_results(
    asset_key: AssetKey, days: Sequence[DayIngest], selected: set[str]
) -> Iterator[AssetCheckResult]:
    """One result per selected check: a day's own outcome, or several days folded together.

    Folding keeps the worst severity, fails if any day failed, and names the failing days;
    per-day figures stay exact in each day's validation summary.
    """
    names = [c.name for c in days[0].validation.checks if c.name in selected]
    for name in names:
        outcomes = [(d.trading_day, _outcome(d.validation, name)) for d in days]
        if len(outcomes) == 1:
            outcome = outcomes[0][1]
            metadata: dict[str, object] = dict(outcome.metadata)
            if outcome.sample is not None and len(outcome.sample):
                metadata["sample"] = sample_table(outcome.sample)
            description = outcome.description
            rejection = days[0].rejection
            if rejection is not None:
                metadata.update(rejection.metadata())
                description = f"download rejected, stored day kept: {description}"
            yield AssetCheckResult(
                asset_key=asset_key,
                check_name=name,
                passed=bool(outcome.passed),
                severity=AssetCheckSeverity(outcome.severity),
                description=description,
                metadata=metadata,
            )
            continue
        failed = [(day, o) for day, o in outcomes if not o.passed]
        severity = (
            AssetCheckSeverity.ERROR
            if any(o.severity == "ERROR" for _, o in failed)
            else AssetCheckSeverity.WARN
        )
        metadata = {"days": len(outcomes), "days_failed": len(failed)}
        rejected = [d.trading_day for d in days if d.rejection is not None]
        if rejected:
            metadata["rejected_days (stored day kept)"] = ", ".join(rejected)
        if failed:
            metadata["failed_days"] = ", ".join(day for day, _ in failed)
            first_day, first = failed[0]
            if first.sample is not None and len(first.sample):
                metadata[f"sample ({first_day})"] = sample_table(first.sample)
        yield AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=not failed,
            severity=severity,
            description=(
                f"{len(failed)} of {len(outcomes)} days failed: {failed[0][1].description}"
                if failed
                else f"all {len(outcomes)} days passed"
            ),
            metadata=metadata,
        )


def _outcome(result: ValidationResult, name: str):
    for outcome in result.checks:
        if outcome.name == name:
            return outcome
    raise KeyError(f"validation produced no outcome for check {name!r}")

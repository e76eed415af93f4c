"""Automation: each trading day materializes by itself after the close; new symbols backfill.

Daily ingestion uses Dagster's declarative automation, evaluated by the daemon through one
:class:`~dagster.AutomationConditionSensorDefinition` that is running by default:

* **Roots** (each symbol's roll schedule) use :func:`new_day_condition`: request a
  partition when it *newly becomes missing* within the last ``lookback_days`` of the latest
  partition, once per partition (``since_last_handled``), never while it is in progress.
  Partition key D appears at D's close (see :mod:`ghtrader_assets.partitions`), so the new
  day is requested at the first evaluation after the close; weekends and holidays add no
  key and request nothing; days that appeared while the daemon was down are all "newly
  missing" at its next evaluation, so they are caught up if they fall in the lookback.
  A day that fails is not retried every tick (it was handled when requested).
* **Downstream** partitioned assets (ticks, validation summary, manifest) use
  :func:`follow_condition`, ``eager()`` widened to the same lookback, so they join the
  roots' run (and re-run when an upstream day is re-materialized).
* The unpartitioned **coverage report** uses :func:`report_condition`: eager, but not held
  back by days that are missing upstream (there always are some: history not backfilled,
  days whose blocking checks failed).

Why not the built-ins (measured with ``evaluate_automation_conditions``): ``on_missing()``
and ``eager()`` look at the latest partition only, so after two days of daemon downtime they
request the newest day and silently skip the others; ``on_cron(close_cron)`` fires on every
weekday close including holidays, and on the first evaluation after a holiday it re-requests
the last trading day, which is already materialized. A missing-based condition is also what
makes the ``end_offset``/``exclusions`` bug (dagster#33551) irrelevant: the partitions never
use ``end_offset``, and nothing here depends on cron ticks.

New symbols: :func:`build_universe_sensor` keeps the known universe in its cursor. When the
code location reloads with a symbol it has not seen, it backfills that symbol's chain over
the start date .. the latest partition at that moment, **newest day first** (the recent days
are the ones a user wants first; history follows), in bounded steps: at most
``backfill_runs_per_tick`` runs per evaluation and ``backfill_max_in_flight`` unfinished
runs, each covering up to ``days_per_run`` consecutive missing days. The runs go through the
run queue and the source pool like any other. Days already materialized are skipped. The
first evaluation only records the universe: backfilling the initial universe is an explicit
choice (``ghtrader demo``, or a backfill from the UI).

Listing dates (from :mod:`ghtrader_assets.sessions`): days before a product's listing, or
while it is delisted, are not work. Partitions are shared by all symbols, so this is applied
in the requests: the universe backfill leaves such days out of its runs, and a root whose
product does not trade at load time gets a condition that is never true, while one listed
within the lookback gets a lookback that stops at its listing day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionsDefinition,
    sensor,
)

from ghtrader_assets.assets import SymbolAssetKeys
from ghtrader_assets.calendar import TZ
from ghtrader_assets.config import SettingsError, parse_number
from ghtrader_assets.io_managers import SYMBOL_METADATA_KEY
from ghtrader_assets.resources import StoreResource
from ghtrader_assets.sessions import listed_days, listing_date, not_listed_reason
from ghtrader_assets.symbols import MainSymbol, parse_main_symbol

logger = logging.getLogger(__name__)

AUTOMATION_SENSOR = "ghtrader_daily_automation"
UNIVERSE_SENSOR = "ghtrader_universe_backfill"
EXPORTER_SENSOR = "ghtrader_prometheus_exporter"
#: Tag on runs launched by the universe sensor; the run queue limits them (dagster.yaml).
UNIVERSE_TAG = "ghtrader/universe_backfill"
SYMBOL_TAG = "ghtrader/symbol"
TRIGGER_TAG = "ghtrader/trigger"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
_UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
#: Version 2: a pending backfill is the window still to request, consumed newest-first.
_CURSOR_VERSION = 2


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = env.get(name, "").strip()
    return default if not text else int(parse_number(text, name, int, minimum))


@dataclass(frozen=True)
class AutomationSettings:
    """How the automation behaves; ``GHTRADER_AUTOMATION*`` / ``GHTRADER_BACKFILL_*``."""

    #: ``GHTRADER_AUTOMATION=off`` ships the sensors stopped (turn them on in the UI).
    enabled: bool = True
    #: Calendar days before the latest close within which missed days are caught up. 14
    #: covers a week of downtime plus a holiday break (Spring Festival, National Day).
    lookback_days: int = 14
    interval_seconds: int = 60
    universe_interval_seconds: int = 120
    backfill_runs_per_tick: int = 20
    backfill_max_in_flight: int = 40

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AutomationSettings:
        env = os.environ if env is None else env
        switch = env.get("GHTRADER_AUTOMATION", "on").strip().lower() or "on"
        if switch not in ("on", "off"):
            raise SettingsError(f"GHTRADER_AUTOMATION={switch!r}: expected 'on' or 'off'")
        return cls(
            enabled=switch == "on",
            lookback_days=_env_int(env, "GHTRADER_AUTOMATION_LOOKBACK_DAYS", 14, 1),
            interval_seconds=_env_int(env, "GHTRADER_AUTOMATION_INTERVAL_SECONDS", 60, 30),
            universe_interval_seconds=_env_int(
                env, "GHTRADER_UNIVERSE_SENSOR_INTERVAL_SECONDS", 120, 30
            ),
            backfill_runs_per_tick=_env_int(env, "GHTRADER_BACKFILL_RUNS_PER_TICK", 20, 1),
            backfill_max_in_flight=_env_int(env, "GHTRADER_BACKFILL_MAX_IN_FLIGHT", 40, 1),
        )

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(days=self.lookback_days)

    @property
    def default_status(self) -> DefaultSensorStatus:
        return DefaultSensorStatus.RUNNING if self.enabled else DefaultSensorStatus.STOPPED


# --------------------------------------------------------------------------- conditions


def new_day_condition(lookback: dt.timedelta) -> AutomationCondition:
    """For root assets: each partition once, when it appears (or reappears) missing."""
    return (
        AutomationCondition.in_latest_time_window(lookback)
        & AutomationCondition.missing()
        .newly_true()
        .since_last_handled()
        .with_label("newly_missing_since_last_handled")
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.in_progress()
    ).with_label(f"new_trading_day(lookback={lookback.days}d)")


def follow_condition(lookback: dt.timedelta) -> AutomationCondition:
    """For partitioned assets with upstream: ``eager()`` over the same lookback window."""
    return (
        AutomationCondition.eager()
        .replace("in_latest_time_window", AutomationCondition.in_latest_time_window(lookback))
        .with_label(f"eager(lookback={lookback.days}d)")
    )


def report_condition() -> AutomationCondition:
    """For unpartitioned reports over partitioned inputs: refresh after any upstream day."""
    return (
        AutomationCondition.eager()
        .without(~AutomationCondition.any_deps_missing())
        .with_label("eager(ignoring missing days)")
    )


def not_listed_condition(reason: str) -> AutomationCondition:
    """A root whose product does not trade now (delisted, or listed later): never true."""
    window = AutomationCondition.in_latest_time_window()
    return (window & ~window).with_label(f"not listed: {reason}")


def listing_lookback(
    symbol: MainSymbol,
    partitions_def: TimeWindowPartitionsDefinition,
    lookback: dt.timedelta,
    now: dt.datetime,
) -> dt.timedelta | None:
    """The root's lookback, shortened so that it never reaches a day before the product's
    listing; ``None`` when the product does not trade as of ``now`` (delisted or not listed
    yet). Partitions are shared by all symbols, so the listing date is applied here (and in
    the universe backfill), not by per-symbol partitions."""
    today = now.astimezone(TZ).date()
    if not_listed_reason(symbol.exchange, symbol.product, today) is not None:
        return None
    listed = listing_date(symbol.exchange, symbol.product)
    if today - listed > lookback + dt.timedelta(days=7):
        return lookback  # listed long ago: the lookback cannot reach before it
    keys = partitions_def.get_partition_keys(current_time=now)
    if not keys:
        return lookback
    latest = partitions_def.time_window_for_partition_key(keys[-1])
    try:
        listed_start = partitions_def.time_window_for_partition_key(listed.isoformat()).start
    except Exception:  # the listing precedes the first partition: nothing to shorten
        return lookback
    return max(dt.timedelta(0), min(lookback, latest.end - listed_start))


def condition_for(
    spec: AssetSpec, lookback: dt.timedelta, now: dt.datetime | None = None
) -> AutomationCondition:
    """The condition an asset gets from its shape: root, downstream, or unpartitioned.

    A root of a symbol whose product is not trading at load time never requests anything,
    and a product listed within the lookback gets a lookback that stops at its listing day
    (days before a listing are not work)."""
    if spec.partitions_def is None:
        return report_condition()
    if not spec.deps:
        raw = spec.metadata.get(SYMBOL_METADATA_KEY)
        if raw is not None and isinstance(spec.partitions_def, TimeWindowPartitionsDefinition):
            symbol = parse_main_symbol(str(raw))
            now = now or dt.datetime.now(dt.UTC)
            day = now.astimezone(TZ).date()
            reason = not_listed_reason(symbol.exchange, symbol.product, day)
            if reason is not None:
                logger.warning(
                    "%s: no daily automation while it does not trade (%s); it starts at the "
                    "first code-location reload on or after its listing",
                    symbol.raw,
                    reason,
                )
                return not_listed_condition(reason)
            own = listing_lookback(symbol, spec.partitions_def, lookback, now)
            return new_day_condition(lookback if own is None else own)
        return new_day_condition(lookback)
    return follow_condition(lookback)


def with_automation(
    assets: Sequence[AssetsDefinition], lookback: dt.timedelta, now: dt.datetime | None = None
) -> list[AssetsDefinition]:
    """``assets`` with their automation conditions attached (see the module docstring)."""
    return [
        a.map_asset_specs(
            lambda spec: spec.replace_attributes(
                automation_condition=condition_for(spec, lookback, now)
            )
        )
        for a in assets
    ]


def build_automation_sensor(settings: AutomationSettings) -> AutomationConditionSensorDefinition:
    """The daemon-evaluated sensor that runs every asset's automation condition."""
    return AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=AssetSelection.all(),
        default_status=settings.default_status,
        minimum_interval_seconds=settings.interval_seconds,
        run_tags={TRIGGER_TAG: "automation"},
        description="Materializes each trading day after the close (roll schedule, ticks with "
        "checks, validation summary, manifest of every symbol, then the coverage report); "
        f"days that became due while the daemon was down (within {settings.lookback_days} "
        "calendar days) are requested at its next evaluation. History is backfilled by hand "
        "or by the universe sensor, not by this one.",
    )


# --------------------------------------------------------------------------- universe sensor


@dataclass
class PendingBackfill:
    """A symbol being backfilled: the days ``oldest_day..newest_day`` still to request
    (newest first, so ``newest_day`` moves back as slices are requested), and when noticed."""

    oldest_day: str
    newest_day: str
    noticed: str


@dataclass
class UniverseCursor:
    """The universe sensor's state, stored as JSON in the Dagster sensor cursor."""

    known: list[str] = field(default_factory=list)
    pending: dict[str, PendingBackfill] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": _CURSOR_VERSION,
                "known": sorted(self.known),
                "pending": {s: vars(p) for s, p in sorted(self.pending.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> UniverseCursor | None:
        """``None`` for no cursor (first evaluation); a clear error for a corrupt one.

        A version-1 cursor (oldest-first: ``next_day`` .. ``end_day`` still to request)
        names the same window, so a running backfill carries on, newest-first."""
        if not text:
            return None
        try:
            doc = json.loads(text)
            version = doc.get("version")
            if version == 1:
                pending = {
                    s: PendingBackfill(p["next_day"], p["end_day"], p["noticed"])
                    for s, p in doc["pending"].items()
                }
            elif version == _CURSOR_VERSION:
                pending = {s: PendingBackfill(**p) for s, p in doc["pending"].items()}
            else:
                raise ValueError(f"version {version!r} is not 1 or {_CURSOR_VERSION}")
            return cls(known=[str(s) for s in doc["known"]], pending=pending)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{UNIVERSE_SENSOR}: cursor {text[:200]!r} is not a universe cursor ({exc}); "
                "reset the sensor's cursor in the UI to start from the current universe"
            ) from None


@dataclass(frozen=True)
class BackfillPlan:
    """What one universe-sensor evaluation decided."""

    run_requests: list[RunRequest]
    cursor: UniverseCursor
    notes: list[str]


def _chunks(keys: Sequence[str], wanted: set[str], size: int) -> list[list[str]]:
    """Runs of consecutive ``keys`` that are all ``wanted``, each at most ``size`` long,
    newest run first; each run lists its days in day order (a partition range)."""
    out: list[list[str]] = []
    current: list[str] = []
    for key in reversed(keys):
        if key in wanted and len(current) < size:
            current.insert(0, key)
            continue
        if current:
            out.append(current)
        current = [key] if key in wanted else []
    if current:
        out.append(current)
    return out


def _run_request(symbol: MainSymbol, days: list[str], noticed: str) -> RunRequest:
    keys = SymbolAssetKeys.of(symbol)
    tags = {UNIVERSE_TAG: "true", SYMBOL_TAG: symbol.key, TRIGGER_TAG: "universe_backfill"}
    run_key = f"{UNIVERSE_TAG}:{symbol.key}:{noticed}:{days[0]}..{days[-1]}"
    selection: list[AssetKey] = [
        keys.roll_schedule,
        keys.ticks,
        keys.validation_summary,
        keys.manifest,
    ]
    if len(days) == 1:
        return RunRequest(
            run_key=run_key, asset_selection=selection, partition_key=days[0], tags=tags
        )
    tags.update({RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]})
    return RunRequest(run_key=run_key, asset_selection=selection, tags=tags)


def unfinished_backfill_runs(instance: DagsterInstance) -> int:
    """Runs launched by the universe sensor that are queued or running."""
    return instance.get_runs_count(RunsFilter(tags={UNIVERSE_TAG: "true"}, statuses=_UNFINISHED))


def plan_universe_backfill(
    cursor: UniverseCursor | None,
    universe: Sequence[MainSymbol],
    partitions_def: TimeWindowPartitionsDefinition,
    instance: DagsterInstance,
    *,
    now: dt.datetime,
    days_per_run: int = 1,
    runs_per_tick: int = 20,
    max_in_flight: int = 40,
) -> BackfillPlan:
    """Notice added symbols and request the next bounded slice of their backfills."""
    current = [s.raw for s in universe]
    by_raw = {s.raw: s for s in universe}
    if cursor is None:
        return BackfillPlan(
            [],
            UniverseCursor(known=current),
            [f"first evaluation: recorded {len(current)} symbols as the baseline universe"],
        )
    notes: list[str] = []
    keys = list(partitions_def.get_partition_keys(current_time=now))
    pending = {s: p for s, p in cursor.pending.items() if s in by_raw}
    for removed in sorted(set(cursor.known) - set(current)):
        dropped = " (its unfinished backfill is dropped)" if removed in cursor.pending else ""
        notes.append(f"{removed} left the universe{dropped}")
    for added in current:
        if added in cursor.known:
            continue
        if not keys:
            notes.append(f"{added} added; no partition exists yet, nothing to backfill")
            continue
        noticed = now.astimezone(dt.UTC).isoformat()
        pending[added] = PendingBackfill(keys[0], keys[-1], noticed)
        notes.append(
            f"{added} added: backfill {keys[0]}..{keys[-1]} requested in slices, newest first"
        )
    budget = min(runs_per_tick, max_in_flight - unfinished_backfill_runs(instance))
    if pending and budget <= 0:
        notes.append(f"{max_in_flight} backfill runs unfinished; waiting before requesting more")
    # Per symbol: the chunks still to request, newest first.
    queues: dict[str, list[list[str]]] = {}
    for raw, p in pending.items():
        window = [k for k in keys if p.oldest_day <= k <= p.newest_day]
        done = instance.get_materialized_partitions(SymbolAssetKeys.of(by_raw[raw]).ticks)
        sym = by_raw[raw]
        # days before the listing (or while delisted) are not work
        listed = {
            d.isoformat()
            for d in listed_days(
                sym.exchange, sym.product, [dt.date.fromisoformat(k) for k in window]
            )
        }
        queues[raw] = _chunks(window, listed - set(done), days_per_run)
    requests: list[RunRequest] = []
    while budget > 0 and any(queues.values()):
        for raw in sorted(queues):  # round robin so one long backfill cannot starve others
            if budget <= 0 or not queues[raw]:
                continue
            days = queues[raw].pop(0)
            requests.append(_run_request(by_raw[raw], days, pending[raw].noticed))
            budget -= 1
    for raw in sorted(queues):
        if queues[raw]:
            pending[raw].newest_day = queues[raw][0][-1]
        else:
            notes.append(f"{raw}: backfill fully requested")
            del pending[raw]
    return BackfillPlan(requests, UniverseCursor(known=current, pending=pending), notes)


def build_universe_sensor(
    universe: Sequence[MainSymbol],
    partitions_def: TimeWindowPartitionsDefinition,
    settings: AutomationSettings,
    *,
    days_per_run: int = 1,
) -> SensorDefinition:
    """The sensor that backfills symbols added to the universe (see the module docstring)."""
    chains = [SymbolAssetKeys.of(s) for s in universe]
    selection = AssetSelection.assets(
        *(k for c in chains for k in (c.roll_schedule, c.ticks, c.validation_summary, c.manifest))
    )

    @sensor(
        name=UNIVERSE_SENSOR,
        target=selection,
        minimum_interval_seconds=settings.universe_interval_seconds,
        default_status=settings.default_status,
        description="Notices symbols added to GHTRADER_UNIVERSE and backfills them back to the "
        f"start date, newest day first, at most {settings.backfill_runs_per_tick} runs per evaluation and "
        f"{settings.backfill_max_in_flight} unfinished runs.",
    )
    def universe_backfill(context: SensorEvaluationContext) -> SensorResult:
        plan = plan_universe_backfill(
            UniverseCursor.from_json(context.cursor),
            universe,
            partitions_def,
            context.instance,
            now=dt.datetime.now(dt.UTC),
            days_per_run=days_per_run,
            runs_per_tick=settings.backfill_runs_per_tick,
            max_in_flight=settings.backfill_max_in_flight,
        )
        for note in plan.notes:
            context.log.info(note)
        skip = None if plan.run_requests else SkipReason("; ".join(plan.notes) or "no change")
        return SensorResult(
            run_requests=plan.run_requests, cursor=plan.cursor.to_json(), skip_reason=skip
        )

    return universe_backfill


# --------------------------------------------------------------------------- exporter sensor


def build_exporter_sensor(universe: Sequence[MainSymbol], port: int, addr: str) -> SensorDefinition:
    """Keeps the Prometheus endpoint up in the Dagster code server process.

    The code server is the one long-lived process of a deployment that loads this code
    (runs and steps come and go), so the endpoint lives there; each evaluation (re)starts it
    if it is not serving, e.g. after a code reload freed the port.
    """

    @sensor(
        name=EXPORTER_SENSOR,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Serves Prometheus metrics on http://{addr}:{port}/metrics "
        "(GHTRADER_PROMETHEUS_PORT).",
    )
    def prometheus_exporter(context: SensorEvaluationContext, store: StoreResource) -> SkipReason:
        from ghtrader_assets.metrics import ensure_exporter

        handle = ensure_exporter(port, addr=addr, store_factory=store.get_store, universe=universe)
        if handle is None:
            return SkipReason(f"port {addr}:{port} is busy; retrying at the next evaluation")
        return SkipReason(f"serving http://{addr}:{handle.port}/metrics")

    return prometheus_exporter


def build_sensors(
    universe: Sequence[MainSymbol],
    partitions_def: TimeWindowPartitionsDefinition,
    settings: AutomationSettings,
    *,
    days_per_run: int = 1,
    exporter: tuple[int, str] | None = None,
) -> list[SensorDefinition]:
    """Every sensor of the code location: automation, universe backfill, and the Prometheus
    exporter when ``exporter`` (``(port, addr)``, see ``metrics.exporter_settings``) is set."""
    sensors: list[SensorDefinition] = [
        build_automation_sensor(settings),
        build_universe_sensor(universe, partitions_def, settings, days_per_run=days_per_run),
    ]
    if exporter is not None:
        sensors.append(build_exporter_sensor(universe, *exporter))
    return sensors

"""Record the ticks' check results under each trading day, on every route a run can take.

Dagster 1.13 gives an ``AssetCheckResult`` a partition only when the run carries the
``dagster/partition`` tag. Runs that carry partition-*range* tags instead (backfills with a
multi-run backfill policy, ``dagster asset materialize --partition-range``, several days per
run) would record the results unpartitioned, and the UI then shows every check of those days
as *Skipped* (issue 13, item 1). So:

* a run tagged with one partition yields plain ``AssetCheckResult`` objects (Dagster
  attaches the partition and the day's materialization itself);
* any other run yields, for every day it covered, one ``AssetCheckEvaluation`` per check
  with ``partition=<day>``, pointing at that day's materialization, plus the check's
  (empty) output once, so downstream steps and the run's plan see the check as executed.

**Each day's outcome stands alone in a run of several days.** Dagster gates per *step*: a
failing blocking evaluation fails the whole ticks step and skips the manifest step for
every day of the run, so one bad day would withhold the good days' manifests. In such runs
the evaluations are therefore recorded with ``blocking=False`` and the gate is per day in
the manifest step, which writes the manifests of the days that passed and then fails the
run naming each day it refused: blocked by its checks (from the stored summary) or whose
download was refused this run (:func:`refused_in_run`). A run of one day keeps Dagster's
own blocking (the step fails, the manifest step is skipped).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dagster import AssetCheckKey, AssetCheckResult, AssetExecutionContext, AssetKey, Output
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.event_log.base import AssetRecordsFilter
from dagster._core.storage.tags import PARTITION_NAME_TAG

from ghtrader_assets.assets.ingest import DayIngest, check_results


def day_check_events(
    context: AssetExecutionContext,
    asset_key: AssetKey,
    days: Sequence[DayIngest],
    selected: set[str],
) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output]:
    """The selected checks' results of ``days``, each recorded under its own trading day."""
    if PARTITION_NAME_TAG in context.run.tags:
        yield from check_results(asset_key, days, selected)
        return
    assets_def = context.assets_def
    for day in days:
        target = _materialization_of(context, asset_key, day.trading_day)
        for result in check_results(asset_key, [day], selected):
            yield AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=str(result.check_name),
                passed=result.passed,
                metadata=result.metadata,
                target_materialization_data=target,
                severity=result.severity,
                description=result.description,
                # Gated per day by the manifest step instead (see the module docstring).
                blocking=False,
                partition=day.trading_day,
            )
    for name in sorted(selected):
        output = assets_def.get_output_name_for_asset_check_key(AssetCheckKey(asset_key, name))
        yield Output(None, output_name=output)


def _materialization_of(
    context: AssetExecutionContext, asset_key: AssetKey, trading_day: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The latest materialization of ``asset_key`` for ``trading_day`` (this run's, when it
    stored the day), so the UI ties the day's results to the data they judged."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[trading_day]), limit=1
    ).records
    if not records:
        return None
    mat = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=mat.storage_id, run_id=mat.event_log_entry.run_id, timestamp=mat.timestamp
    )


def refused_in_run(context: AssetExecutionContext, asset_key: AssetKey, trading_day: str) -> str:
    """The ``replacement`` refusal recorded on ``asset_key``'s materialization of
    ``trading_day`` by *this* run (the download was refused and the stored day kept), or
    ``""``. A refusal in an earlier run does not count: a later run re-decided the day."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[trading_day]), limit=1
    ).records
    if not records or records[0].event_log_entry.run_id != context.run.run_id:
        return ""
    materialization = records[0].asset_materialization
    value = materialization.metadata.get("replacement") if materialization else None
    return str(value.value) if value is not None else ""

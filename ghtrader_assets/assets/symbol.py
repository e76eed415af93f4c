"""The per-symbol asset chain: roll schedule -> ticks (+ checks) -> validation summary -> manifest.

One factory call per main symbol of the universe; assets are keyed
``<EXCHANGE>/<product>/<asset>`` and grouped by exchange so the asset graph reads like the
market. Ticks, their checks and the validation summary come from one step that cannot be
subset, so validation runs in the same pass as ingestion with no second read, and a check
never runs without its day (Dagster greys out *Execute* on the checks tab: "cannot execute
without materializing the asset"; an unpartitioned checks-only run would have no day to
check). A run tagged ``ghtrader/revalidate=true`` (the ``revalidate_from_store`` job)
recomputes the checks and the summary from stored ticks (after a threshold change) without
touching the source.

Step names follow Dagster's own key-derived scheme, ``<EXCHANGE>__<product>_<asset>``
(``SHFE__cu_roll_schedule``, ``SHFE__cu_ticks``, ``SHFE__cu_manifest``).
"""

import json
import time
import warnings
from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetMaterialization,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    DataVersion,
    Failure,
    MetadataValue,
    Output,
    PartitionsDefinition,
    asset,
    multi_asset,
)
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._utils.warnings import BetaWarning, PreviewWarning

from ghtrader_assets.assets.day_checks import day_check_events, refused_in_run
from ghtrader_assets.assets.ingest import (
    ALLOW_FAILING_TAG,
    ALLOW_SHRINK_TAG,
    REVALIDATE_TAG,
    DayIngest,
    StepSource,
    fetch_roll,
    ingest_day,
    store_gaps,
)
from ghtrader_assets.calendar import TZ, day_start_utc
from ghtrader_assets.io_managers import SYMBOL_METADATA_KEY, TABLE_METADATA_KEY
from ghtrader_assets.manifest import build_manifest, store_manifests, withdraw_manifest
from ghtrader_assets.metadata import column_schema
from ghtrader_assets.metrics import record_day_metrics, write_mark
from ghtrader_assets.resources import SourceResource, StoreResource
from ghtrader_assets.schema import MANIFESTS, ROLL_SCHEDULE, TICKS, VALIDATION_SUMMARY, TableSpec
from ghtrader_assets.stores.base import TickStore
from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation import CHECKS, AttributionBudget, ValidationConfig
from ghtrader_assets.validation.verdict import DayVerdict, day_verdict

IO_MANAGER_KEY = "store_io_manager"

# Backfill policies are a Dagster beta feature; they are how one run covers several days.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=BetaWarning)


@dataclass(frozen=True)
class SymbolAssetKeys:
    """The asset keys of one symbol's chain."""

    roll_schedule: AssetKey
    ticks: AssetKey
    validation_summary: AssetKey
    manifest: AssetKey

    @property
    def validated_day(self) -> tuple[AssetKey, AssetKey]:
        """The assets of the one non-subsettable step: ticks (with checks) and summary."""
        return (self.ticks, self.validation_summary)

    @classmethod
    def of(cls, symbol: MainSymbol) -> "SymbolAssetKeys":
        """``SHFE/cu_ticks`` and so on: the graph shows a key's last part, so it names the
        product (three identical ``ticks`` nodes in the SHFE group would say nothing)."""
        return cls(
            *(
                AssetKey([symbol.exchange, f"{symbol.product}_{name}"])
                for name in ("roll_schedule", "ticks", "validation_summary", "manifest")
            )
        )


def local_time(ts: pd.Timestamp) -> str:
    """A tick time as exchange-local (Asia/Shanghai) ISO text, as traders read it."""
    return pd.Timestamp(ts).tz_convert(TZ).isoformat()


_TABLE_METADATA: dict[str, dict[str, object]] = {}


def table_metadata(spec: TableSpec) -> dict[str, object]:
    """Which table the IO manager stores an asset in, and its columns for the UI.

    Built once per table, not once per symbol: the column schema is the same for every
    symbol, and rebuilding it was a tenth of the definitions' load time at 80 symbols.
    """
    if spec.name not in _TABLE_METADATA:
        _TABLE_METADATA[spec.name] = {
            TABLE_METADATA_KEY: spec.name,
            "dagster/column_schema": column_schema(spec),
        }
    return _TABLE_METADATA[spec.name]


def require_stored_days(store: TickStore, symbol: MainSymbol, days: list[str]) -> None:
    """Re-validating a day that was never ingested would store a summary (and check
    results) for ticks that do not exist; refuse it, naming the days."""
    never = [d for d in days if store.read_partition(VALIDATION_SUMMARY, symbol.raw, d).empty]
    if never:
        raise Failure(
            f"{symbol.raw}: nothing stored to re-validate on {', '.join(never)}; materialize "
            "the ticks of these days first (without the revalidate tag)",
            metadata={"days_not_stored": ", ".join(never)},
            allow_retries=False,
        )


def validation_metadata(summary: pd.DataFrame) -> dict[str, object]:
    """Figures of the validated day(s) with their unit in the name, and whether the row-level
    rules saw every row (``validation_sampled``) or which share of them (``sample_fraction``)."""
    rows = int(summary["rows"].sum())
    checked = int(summary["sample_rows"].sum())
    return {
        "max_gap_seconds": int(summary["max_gap_seconds"].max()) if len(summary) else 0,
        "validation_sampled": bool((summary["sampled"] == 1).any()),
        "sample_fraction": round(checked / rows, 6) if rows else 1.0,
    }


def verdicts_of(days: list[DayIngest]) -> list[DayVerdict]:
    """Each ingested day's verdict (pass / warn / blocked), reason, hint and largest gap."""
    out = []
    for day in days:
        row = day.summary.iloc[0].to_dict() if len(day.summary) else {}
        failed = [c.name for c in day.validation.checks if not c.passed]
        blocking = list(day.validation.blocking_failures)
        if day.rejection is not None:
            # The stored (passing) day was kept and is what this materialization records:
            # its verdict is the stored summary's; the rejected download is named apart.
            outcomes = json.loads(str(row.get("check_outcomes") or "{}"))
            failed = [n for n, o in outcomes.items() if not o["passed"]]
            blocking = [n for n, o in outcomes.items() if o["blocking"] and not o["passed"]]
        out.append(day_verdict(day.trading_day, row, failed, blocking))
    return out


def manifest_metadata(out: pd.DataFrame) -> dict[str, object]:
    """A manifest materialization's figures (one day, or every day of a run)."""
    return {
        "tick_rows": int(out["rows"].sum()),
        "schema_hash": str(out["schema_hash"].iloc[0]),
        "code_version": str(out["code_version"].iloc[0]),
        "checks_failed": int(out["checks_failed"].sum()),
    }


def run_verdict(verdicts: list[DayVerdict]) -> dict[str, object]:
    """The run-level verdict: the worst day's (a single-day run: that day's). Each day's own
    verdict overrides it on that day's materialization (``add_asset_metadata``)."""
    rank = {"pass": 0, "warn": 1, "blocked": 2}
    worst = max(verdicts, key=lambda v: rank[v.status])
    failed = sorted({c for v in verdicts for c in v.failed_checks})
    blocking = sorted({c for v in verdicts for c in v.blocking_failures})
    out = worst.metadata()
    out.update(
        max_gap_seconds=max(v.max_gap_seconds for v in verdicts),
        checks_failed=len(failed),
        failed_checks=", ".join(failed) or "none",
        blocking_failures=", ".join(blocking) or "none",
    )
    if len(verdicts) > 1:
        out["verdict_days"] = "; ".join(f"{v.trading_day} {v.status}" for v in verdicts)
    return out


def build_symbol_assets(
    symbol: MainSymbol,
    partitions_def: PartitionsDefinition,
    *,
    pool: str,
    backfill_policy: BackfillPolicy | None = None,
) -> list[AssetsDefinition]:
    """The four daily-partitioned assets (and ticks checks) of one main symbol.

    ``pool`` caps concurrent source calls across runs (the TqSdk account); the backfill
    policy decides how many trading days one run covers (see ``GHTRADER_DAYS_PER_RUN``).
    """
    keys = SymbolAssetKeys.of(symbol)
    group = symbol.exchange
    meta = {SYMBOL_METADATA_KEY: symbol.raw}
    tags = {"ghtrader/exchange": symbol.exchange, "ghtrader/product": symbol.product}

    @asset(
        key=keys.roll_schedule,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        group_name=group,
        metadata={**meta, **table_metadata(ROLL_SCHEDULE)},
        tags=tags,
        io_manager_key=IO_MANAGER_KEY,
        pool=pool,
        kinds={"pandas"},
        description=f"Which real contract is main for `{symbol.raw}` on each trading day. Its data "
        "version is the mapping's hash, so a changed roll marks that day's ticks stale.",
    )
    def roll_schedule(
        context: AssetExecutionContext, source: SourceResource, store: StoreResource
    ) -> Output[pd.DataFrame]:
        started = time.perf_counter()
        with StepSource(source, symbol, store.get_store()) as step_source:
            frames = [fetch_roll(step_source, day) for day in context.partition_keys]
        download_seconds = time.perf_counter() - started
        frame = pd.concat(frames, ignore_index=True)
        metadata = {
            "underlying": ", ".join(sorted(set(frame["underlying"]))),
            "source": source.kind,
            "days": len(frame),
            "download_seconds": round(download_seconds, 4),
        }
        if len(frame) > 1:
            return Output(frame, metadata=metadata)
        digest = str(frame.at[0, "schedule_hash"])
        # Data versions are a Dagster beta feature; they are what turns a changed roll into
        # "upstream data changed" on the day's ticks, so we opt in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BetaWarning)
            return Output(
                frame,
                data_version=DataVersion(digest),
                metadata={**metadata, "schedule_hash": digest},
            )

    # Partitioned checks are a Dagster preview feature, and the one that gives each trading
    # day its own check result in the UI (instead of only the latest), so we opt in.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        check_specs = [
            AssetCheckSpec(
                c.name,
                asset=keys.ticks,
                description=c.description,
                blocking=c.blocking,
                partitions_def=partitions_def,
            )
            for c in CHECKS
        ]

    @multi_asset(
        # The name Dagster derives for a single asset keyed SHFE/cu_ticks: one step-naming
        # scheme for the whole chain.
        name=keys.ticks.to_python_identifier(),
        outs={
            "ticks": AssetOut(
                key=keys.ticks,
                io_manager_key=IO_MANAGER_KEY,
                group_name=group,
                metadata={**meta, **table_metadata(TICKS)},
                tags=tags,
                is_required=False,
                kinds={"pandas"},
                description=f"Main-contract L5 ticks of `{symbol.raw}` for one trading day (night "
                "session of the evening before included), validated in the same pass.",
            ),
            "validation_summary": AssetOut(
                key=keys.validation_summary,
                io_manager_key=IO_MANAGER_KEY,
                group_name=group,
                metadata={**meta, **table_metadata(VALIDATION_SUMMARY)},
                tags=tags,
                is_required=False,
                kinds={"pandas"},
                description=f"Coverage and field-quality figures of `{symbol.raw}` for one day. "
                "Made with the ticks; after a threshold change, run the `revalidate_from_store` "
                f"job (or tag a run `{REVALIDATE_TAG}=true`) to recompute it from stored ticks.",
            ),
        },
        ins={"roll": AssetIn(keys.roll_schedule)},
        internal_asset_deps={
            "ticks": {keys.roll_schedule},
            "validation_summary": {keys.ticks},
        },
        check_specs=check_specs,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        # Not subsettable: the checks and the summary only ever run with their day's ticks.
        can_subset=False,
        pool=pool,
    )
    def ticks_and_validation(
        context: AssetExecutionContext,
        roll: pd.DataFrame,
        source: SourceResource,
        store: StoreResource,
    ):
        wanted = set(context.partition_keys)
        missing = wanted - set(roll["trading_day"])
        if missing:
            raise Failure(
                f"{symbol.raw}: no roll-schedule entry for {', '.join(sorted(missing))}; "
                "materialize the roll schedule first"
            )
        download = context.run.tags.get(REVALIDATE_TAG) != "true"
        if not download:
            require_stored_days(store.get_store(), symbol, sorted(wanted))
        config = ValidationConfig.from_env()
        budget = AttributionBudget(config.attribution_max_days)
        rows = [
            r for _, r in roll.sort_values("trading_day").iterrows() if r["trading_day"] in wanted
        ]
        days = []
        # In a run of several days one refused download keeps its stored day and the step
        # goes on with the others (see ghtrader_assets.assets.day_checks).
        keep_refused = PARTITION_NAME_TAG not in context.run.tags
        with StepSource(source, symbol, store.get_store()) as step_source:
            for i, row in enumerate(rows, start=1):
                day = ingest_day(
                    step_source,
                    row,
                    config,
                    download=download,
                    attribution_budget=budget,
                    allow_shrink=context.run.tags.get(ALLOW_SHRINK_TAG) == "true",
                    allow_failing=context.run.tags.get(ALLOW_FAILING_TAG) == "true",
                    keep_refused=keep_refused,
                )
                days.append(day)
                if day.rejection is not None:
                    context.log.warning(day.rejection.message(symbol.raw, day.trading_day))
                failed = [c.name for c in day.validation.checks if not c.passed]
                context.log.info(
                    f"{symbol.raw} {day.trading_day} ({i}/{len(rows)}): {len(day.ticks)} rows "
                    f"{'downloaded' if download else 'read from the store'} and validated; "
                    f"failed checks: {', '.join(failed) or 'none'}"
                )
        for day in days:
            if day.rejection is not None:
                continue  # the stored day was kept, and so is its manifest
            if day.validation.blocking_failures and withdraw_manifest(
                store.get_store(), store.manifest_dir, symbol, day.trading_day
            ):
                context.log.warning(
                    f"{symbol.raw} {day.trading_day}: manifest withdrawn, blocking checks now "
                    f"fail: {', '.join(day.validation.blocking_failures)}"
                )
        ticks = pd.concat([d.ticks for d in days], ignore_index=True)
        summary = pd.concat([d.summary for d in days], ignore_index=True)
        validation_seconds = sum(d.validation.duration_seconds for d in days)
        gap_count = int(summary["gap_count"].sum())
        verdicts = verdicts_of(days)
        # The verdict leads the metadata, so a blocked day reads "verdict: blocked" first on
        # its materialization (Partitions tab -> the day), not only on its manifest.
        verdict = run_verdict(verdicts)
        rejected = [d for d in days if d.rejection is not None]
        if rejected:
            verdict["rejected_downloads (stored day kept)"] = "; ".join(
                f"{d.trading_day} ({d.rejection.quarantined_at})"
                for d in rejected
                if d.rejection is not None
            )
        outputs = [keys.validation_summary] + ([keys.ticks] if download else [])
        refusals = {d.trading_day: d.rejection.metadata() for d in days if d.rejection}
        for v in verdicts:
            day_metadata = {**v.metadata(), **refusals.get(v.trading_day, {})}
            for key in outputs:
                context.add_asset_metadata(day_metadata, asset_key=key, partition_key=v.trading_day)
        figures = validation_metadata(summary)
        mark = write_mark(store.get_store())  # the IO manager writes when outputs are yielded
        if download:
            seconds = max(sum(d.download_seconds for d in days), 1e-9)
            yield Output(
                ticks,
                output_name="ticks",
                metadata={
                    **verdict,
                    "dagster/row_count": len(ticks),
                    "underlying": ", ".join(sorted(set(roll["underlying"]))),
                    "source": source.kind,
                    "download_seconds": round(seconds, 4),
                    "download_rows_per_second": round(len(ticks) / seconds, 1),
                    "duplicates_dropped_rows": sum(d.duplicates_dropped for d in days),
                    "gap_count": gap_count,
                    "validation_seconds": round(validation_seconds, 4),
                    **figures,
                    "max_gap_seconds": verdict["max_gap_seconds"],
                    "first_tick": local_time(ticks["ts"].min()) if len(ticks) else "",
                    "last_tick": local_time(ticks["ts"].max()) if len(ticks) else "",
                },
            )
        # The summary comes with every run of this step (ticks or not).
        gap_rows = store_gaps(store.get_store(), symbol, days)
        yield Output(
            summary,
            output_name="validation_summary",
            metadata={
                **verdict,
                "tick_rows": len(ticks),
                "gap_count": gap_count,
                "validation_seconds": round(validation_seconds, 4),
                **figures,
                "max_gap_seconds": verdict["max_gap_seconds"],
                "recomputed_from_store": not download,
                "gaps_stored": gap_rows,
            },
        )
        record_day_metrics(
            store,
            symbol,
            days,
            ingested=download,
            summarized=True,
            mark=mark,
            run_id=context.run.run_id,
            log=context.log,
        )
        selected = {k.name for k in context.selected_asset_check_keys}
        yield from day_check_events(context, keys.ticks, days, selected)

    @asset(
        key=keys.manifest,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        group_name=group,
        metadata={**meta, **table_metadata(MANIFESTS)},
        tags=tags,
        io_manager_key=IO_MANAGER_KEY,
        ins={"summary": AssetIn(keys.validation_summary)},
        deps=[keys.ticks],
        kinds={"pandas", "json"},
        # A run of several days may materialize only the days that passed.
        output_required=False,
        description=f"Lineage record of `{symbol.raw}` for one day: source, underlying, rows, "
        "first/last tick, schema hash, code version, check outcomes. Not written for a day "
        "whose blocking checks failed or whose download was refused.",
    )
    def manifest(context: AssetExecutionContext, summary: pd.DataFrame, store: StoreResource):
        missing = set(context.partition_keys) - set(summary["trading_day"])
        if missing:
            raise Failure(
                f"{symbol.raw}: no validation summary stored for {', '.join(sorted(missing))}; "
                "materialize the ticks first"
            )
        frames: dict[str, pd.DataFrame] = {}
        refused: list[str] = []
        for _, row in summary.sort_values("trading_day").iterrows():
            trading_day = str(row["trading_day"])
            outcomes = json.loads(str(row["check_outcomes"]))
            blocked = sorted(n for n, o in outcomes.items() if o["blocking"] and not o["passed"])
            if blocked:
                refused.append(f"{trading_day} (blocking checks failed: {', '.join(blocked)})")
                continue
            refusal = refused_in_run(context, keys.validation_summary, trading_day)
            if refusal:
                refused.append(f"{trading_day} (download {refusal}, manifest kept)")
                continue
            frames[trading_day] = build_manifest(
                symbol=symbol.raw,
                trading_day=trading_day,
                day_start=day_start_utc(trading_day),
                underlying=str(row["underlying"]),
                source=str(row["source"]),
                rows=int(row["rows"]),
                first_tick=row["first_tick"] if pd.notna(row["first_tick"]) else None,
                last_tick=row["last_tick"] if pd.notna(row["last_tick"]) else None,
                check_outcomes=outcomes,
            )
        if not refused:
            # Every day passed: the IO manager writes the table rows, then the JSON files.
            out = pd.concat(list(frames.values()), ignore_index=True)
            yield Output(out, metadata=manifest_metadata(out))
            return
        # Each day stands alone: the days that passed get their manifests now, then the
        # step fails naming the others (a run of one day never gets here with a refused
        # download: Dagster's blocking checks skipped this step).
        written = store_manifests(store.get_store(), store.manifest_dir, symbol, frames)
        for day, path in written.items():
            yield AssetMaterialization(
                asset_key=keys.manifest,
                partition=day,
                metadata={**manifest_metadata(frames[day]), "json": MetadataValue.path(str(path))},
            )
        raise Failure(
            f"{symbol.raw}: manifest not written for {'; '.join(refused)}"
            + (f"; written for {', '.join(written)}" if written else ""),
            metadata={"refused_days": "; ".join(refused), "written_days": ", ".join(written)},
            allow_retries=False,
        )

    return [roll_schedule, ticks_and_validation, manifest]

"""Run trading days as Dagster runs in parallel worker processes.

Used by ``ghtrader demo`` and ``bench/backfill.py``. Each day is one run of the ingest job
(recorded in the Dagster instance at ``$DAGSTER_HOME``, so the UI shows it); ``workers``
runs go at once, the same shape a Dagster backfill takes under the run queue and the source
pool. Environment variables set before calling (``GHTRADER_*``, ``DAGSTER_HOME``) reach the
workers, so they build the same definitions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

#: Run logs stay in the Dagster instance (the UI shows them); the terminal gets warnings only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class DayRun:
    """The outcome of one day's run."""

    trading_day: str
    success: bool
    run_id: str


def ensure_dagster_home(default: Path) -> Path:
    """Use ``$DAGSTER_HOME`` or create ``default`` with a minimal dagster.yaml, and export it."""
    home = Path(os.environ.get("DAGSTER_HOME") or default).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(
            "# Created by ghtrader; see infra/dagster/dagster.yaml\ntelemetry:\n  enabled: false\n"
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_day(day: str) -> DayRun:
    """Materialize every symbol's chain for one trading day in one Dagster run."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from ghtrader_assets.definitions import ingest_job

    with DagsterInstance.get() as instance:
        result = execute_job(
            reconstructable(ingest_job),
            instance=instance,
            tags={"dagster/partition": day},
            run_config=QUIET,  # the job's executor is in-process (ghtrader_assets.executors)
            raise_on_error=False,
        )
        return DayRun(day, result.success, result.run_id)


def set_pool_limit(pool: str, limit: int) -> None:
    """Cap concurrent steps of ``pool`` in the instance at ``$DAGSTER_HOME`` (all runs).

    The same as ``dagster instance concurrency set POOL LIMIT``; it also creates the
    instance's storage once, before worker processes race to create the same SQLite schema.
    """
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(pool, limit)


def run_days(days: Sequence[str], workers: int) -> list[DayRun]:
    """Run ``days`` with at most ``workers`` runs at once; results in the order of ``days``."""
    from dagster import DagsterInstance

    from ghtrader_assets.definitions import ingest_job

    # Create the instance's storage once here: worker processes racing to create the same
    # SQLite schema would collide.
    DagsterInstance.get().dispose()
    # Load the code location once, here, and fork the workers from this process: each run
    # then starts with the definitions in memory instead of importing and building them
    # again (about a second of CPU per run; bench/overhead.py, bench/backfill.py).
    ingest_job()
    context = multiprocessing.get_context("fork") if os.name == "posix" else None
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        return list(pool.map(run_day, days))

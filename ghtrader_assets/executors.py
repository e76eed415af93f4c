"""Which Dagster executor runs the steps of a run (``GHTRADER_EXECUTOR``).

Why in-process by default: Dagster's default (multiprocess) starts one Python process per
step, and each one imports Dagster, pandas and pyarrow and rebuilds the definitions before
doing a tenth of a second of work. A one-day run of 5 symbols has 15 steps, so the
multiprocess route cost about 20x the CPU of the ticks themselves (``bench/overhead.py``).
Parallelism comes from *runs* instead: a backfill is one run per trading day (or per
``GHTRADER_DAYS_PER_RUN`` days), the run queue starts several at once, and the source pool
caps source calls across all of them. The in-process executor claims pool slots exactly
like the multiprocess one (Dagster's ``InstanceConcurrencyContext``), so the TqSdk account
stays protected (``ghtrader_assets_tests/test_executors.py`` holds a slot and watches a run
wait for it).

``multiprocess`` (Dagster's default, one fresh interpreter per step) and ``forkserver``
(multiprocess whose step processes fork from a server that imported the code location once)
stay available for a machine with many cores and few, large runs.
"""

from __future__ import annotations

import os

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from ghtrader_assets.config import SettingsError

EXECUTOR_ENV = "GHTRADER_EXECUTOR"
EXECUTOR_KINDS = ("in_process", "forkserver", "multiprocess")

#: Modules a forkserver imports once, before forking step processes.
PRELOAD_MODULES = ["ghtrader_assets.definitions"]


def executor_kind(env: dict[str, str] | None = None) -> str:
    """``$GHTRADER_EXECUTOR`` (default ``in_process``); an unknown value names the choices."""
    env = os.environ if env is None else env
    kind = (env.get(EXECUTOR_ENV, "") or "in_process").strip().lower().replace("-", "_")
    if kind not in EXECUTOR_KINDS:
        raise SettingsError(f"{EXECUTOR_ENV}={kind!r}: expected one of {EXECUTOR_KINDS}")
    return kind


def build_executor(kind: str, max_concurrent: int | None = None) -> ExecutorDefinition:
    """The executor for ``kind`` (see :data:`EXECUTOR_KINDS`)."""
    if kind == "in_process":
        return in_process_executor
    config: dict[str, object] = {}
    if max_concurrent:
        config["max_concurrent"] = max_concurrent
    if kind == "forkserver":
        config["start_method"] = {"forkserver": {"preload_modules": PRELOAD_MODULES}}
    elif kind != "multiprocess":
        raise SettingsError(f"{EXECUTOR_ENV}={kind!r}: expected one of {EXECUTOR_KINDS}")
    return multiprocess_executor.configured(config, name=f"ghtrader_{kind}_executor")

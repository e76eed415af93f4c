"""Run trading days as Dagster runs in parallel worker processes.

Used by ``ghtrader demo`` and ``bench/backfill.py``. Each day is one run of the ingest job
(recorded in the Dagster instance at ``$DAGSTER_HOME``, so the UI shows it); ``workers``
runs go at once, the same shape a Dagster backfill takes under the run queue and the source
pool. Environment variables set before calling (``GHTRADER_*``, ``DAGSTER_HOME``) reach the
workers, so they build the same definitions.

**Runs look like the UI's own.** Each run is created with the *code-location origin* of
``workspace.yaml`` (location ``ghtrader_assets``, repository ``__repository__``;
:func:`workspace_job_origin`), exactly what ``dagster dev -w workspace.yaml`` stamps on the
runs it launches. The UI then lists them on the *Overview* timeline under that location and
*Re-execute* loads the job from it without the "loaded from a different code location"
warning. The run is still executed here, in the worker (no webserver or daemon needed), so
the protections below hold.

Crashes, in the order they bite:

* **Concurrent first use.** Several demos starting on a fresh ``$DAGSTER_HOME`` would race
  to create the SQLite schema and the pool's slots (``table alembic_version already
  exists``, ``UNIQUE constraint failed: concurrency_limits``). Instance set-up runs under a
  file lock (:func:`instance_setup_lock`); runs themselves only open existing storage.
* **A killed run (kill -9, OOM).** Its run stays STARTED and its pool slots stay claimed, so
  after a few kills every later step waits for a slot forever. Each run is tagged with the
  host and pid of the process executing it (:data:`HOST_TAG`, :data:`PID_TAG`); before and
  while waiting, :func:`release_dead_runs` marks runs of this host whose process no longer
  exists as failed (``report_run_failed``) and frees their slots with Dagster's own
  ``free_concurrency_slots_for_run``. Dagster's default run launcher cannot check a local
  run worker's health, so runs launched from ``dagster dev`` are not judged here (no tags):
  terminated in the UI, their slots are freed by the daemon
  (``infra/dagster/dagster.yaml``: ``free_slots_after_run_end_seconds``).
* **Waiting.** :func:`run_days` never waits silently: while runs are unfinished it prints
  which days it waits for and who holds the pool's slots, and gives up after ``timeout``
  seconds with :class:`RunsStalledError` naming the holders and what to do.
* **Ctrl-C / SIGTERM / the parent killed.** Workers are terminated (never orphaned): on an
  interrupt :func:`run_days` terminates them and releases their runs' slots. When the demo
  itself is killed, each worker gets SIGTERM from Linux (``PR_SET_PDEATHSIG``), which Dagster
  turns into an interrupt that fails the run cleanly, and then exits: right after its run,
  or at the latest :data:`ORPHAN_GRACE_SECONDS` later (a watchdog thread; Dagster keeps
  SIGTERM captured, so the signal alone would leave an idle worker waiting forever).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

if TYPE_CHECKING:
    from ghtrader_assets.config import Settings

#: Run logs stay in the Dagster instance (the UI shows them); the terminal gets warnings only.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

#: Run tags naming the machine and process that execute a run (how a dead run is detected).
HOST_TAG = "ghtrader/host"
PID_TAG = "ghtrader/pid"

#: The lock file that serialises instance set-up in ``$DAGSTER_HOME``.
SETUP_LOCK = ".ghtrader-setup.lock"

#: The ``dagster.yaml`` block that selects Dagster's SQLite storages with pooled connections
#: and the WAL synced at checkpoints (:mod:`ghtrader_assets.instance_storage`). Kept here,
#: in a module that imports no Dagster, so the CLI starts fast.
STORAGE_YAML = """\
run_storage:
  module: ghtrader_assets.instance_storage
  class: PooledSqliteRunStorage
  config:
    synchronous: NORMAL
event_log_storage:
  module: ghtrader_assets.instance_storage
  class: PooledSqliteEventLogStorage
  config:
    synchronous: NORMAL
"""

#: The ``dagster.yaml`` a fresh demo instance gets: run monitoring and slot freeing on, so
#: ``dagster dev`` on it also fails dead runs and frees their slots; and the pooled storages
#: (about a third of a day run's CPU less, ``bench/overhead.py --levers``).
DEMO_INSTANCE_YAML = (
    """\
# Created by ghtrader; see infra/dagster/dagster.yaml
telemetry:
  enabled: false
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 30
"""
    + STORAGE_YAML
)


#: How long a worker whose parent died may take to fail its run before it exits anyway.
ORPHAN_GRACE_SECONDS = 15.0

#: The parent pid a pool worker started under (``None`` outside a worker).
_PARENT: int | None = None


class RunsStalledError(RuntimeError):
    """Runs did not finish within the time allowed (the message says who holds the pool)."""


@dataclass(frozen=True)
class DayRun:
    """The outcome of one day's run."""

    trading_day: str
    success: bool
    run_id: str
    error: str = ""


def instance_setup_lock(home: Path) -> FileLock:
    """The cross-process lock around creating and migrating the instance at ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home / SETUP_LOCK), timeout=120)


def ensure_dagster_home(default: Path) -> Path:
    """Use ``$DAGSTER_HOME`` or create ``default`` with a minimal dagster.yaml, and export it.

    The file is written atomically under the set-up lock, so a concurrent demo never reads
    a half-written dagster.yaml. A relative path is made absolute here (Dagster refuses a
    relative ``$DAGSTER_HOME`` with a stack trace; the worker processes must agree on it)."""
    home = Path(os.path.abspath(Path(os.environ.get("DAGSTER_HOME") or default).expanduser()))
    with instance_setup_lock(home):
        config = home / "dagster.yaml"
        if not config.exists():
            tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
            tmp.write_text(DEMO_INSTANCE_YAML)
            os.replace(tmp, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _home() -> Path:
    return Path(os.environ["DAGSTER_HOME"])


#: The code location ``workspace.yaml`` loads (and the one runs are stamped with).
LOCATION_NAME = "ghtrader_assets"
WORKSPACE_YAML = Path(__file__).resolve().parent.parent / "workspace.yaml"


def workspace_job_origin(job_name: str, workspace: Path | None = None):
    """The ``RemoteJobOrigin`` the UI gives runs of ``job_name`` it launches itself.

    Read from ``workspace.yaml`` when the checkout has one (the same file ``dagster dev -w``
    reads, so the two cannot disagree), else the same module target built in code (an
    installed package). Only the origin is built: no code server is started."""
    from dagster._core.definitions.repository_definition.valid_definitions import (
        SINGLETON_REPOSITORY_NAME,
    )
    from dagster._core.remote_origin import RemoteRepositoryOrigin
    from dagster._core.workspace.load import (
        location_origin_from_module_name,
        location_origins_from_yaml_paths,
    )

    path = workspace or WORKSPACE_YAML
    origins = location_origins_from_yaml_paths([str(path)]) if path.exists() else []
    location = next((o for o in origins if o.location_name == LOCATION_NAME), None)
    if location is None:
        location = location_origin_from_module_name(
            "ghtrader_assets.definitions", "defs", None, location_name=LOCATION_NAME
        )
    return RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME).get_job_origin(job_name)


#: This process's Dagster instance: (pid, $DAGSTER_HOME, instance); see process_instance.
_INSTANCE: tuple[int, str, object] | None = None
_INHERITED: list[object] = []


def process_instance():
    """The instance at ``$DAGSTER_HOME`` for the runs this process executes, opened once.

    A day worker executes many runs; opening the instance for each one re-read
    ``dagster.yaml``, rebuilt the three storages and re-checked their schema revisions
    (Alembic loads every migration script to find the head), about a sixth of a one-symbol
    day run's CPU. Kept per process (a forked worker opens its own) and per
    ``$DAGSTER_HOME`` (a changed home closes the old one); closed at exit.
    """
    global _INSTANCE
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME", "")
    if _INSTANCE is not None and _INSTANCE[:2] == (os.getpid(), home):
        return _INSTANCE[2]
    if _INSTANCE is not None and _INSTANCE[0] == os.getpid():
        with contextlib.suppress(Exception):
            _INSTANCE[2].dispose()  # type: ignore[attr-defined]
    elif _INSTANCE is not None:
        # The parent's, inherited by fork: kept alive and unused, so its open SQLite
        # connections are never closed (nor used) in this process.
        _INHERITED.append(_INSTANCE[2])
    instance = DagsterInstance.get()
    if _INSTANCE is None or _INSTANCE[0] != os.getpid():
        atexit.register(_dispose_process_instance)
    _INSTANCE = (os.getpid(), home, instance)
    return instance


def _dispose_process_instance() -> None:
    global _INSTANCE
    if _INSTANCE is not None and _INSTANCE[0] == os.getpid():
        with contextlib.suppress(Exception):
            _INSTANCE[2].dispose()  # type: ignore[attr-defined]
        _INSTANCE = None


def execute_with_origin(
    recon,
    *,
    run_config: dict,
    tags: dict[str, str],
    asset_selection: Sequence | None = None,
):
    """``execute_job`` plus the workspace's code-location origin, which it cannot pass:
    create the run with ``remote_job_origin`` (as the UI would), then execute it here, in
    this process, against the instance at ``$DAGSTER_HOME`` (:func:`process_instance`).
    Returns the execution result."""
    from dagster._core.execution.api import _job_with_repository_load_data, execute_run

    # What execute_job does first: bake the repository load data in once.
    recon, load_data = _job_with_repository_load_data(recon)
    job_def = recon.get_definition()
    instance = process_instance()
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=run_config,
        tags=tags,
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        job_code_origin=recon.get_python_origin(),
        remote_job_origin=workspace_job_origin(job_def.name),
        repository_load_data=load_data,
    )
    return execute_run(recon, run, instance, raise_on_error=False)


def run_day(
    day: str,
    symbols: Sequence[str] | None = None,
    *,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
) -> DayRun:
    """Materialize every symbol's chain (or only ``symbols``' chains) for one trading day in
    one Dagster run, stamped with the workspace's code-location origin (module docstring).

    ``run_config`` is merged over :data:`QUIET` (e.g. resource config of a demo defect);
    ``tags`` are added to the run's."""
    from dagster import reconstructable

    from ghtrader_assets.definitions import ingest_job

    selection = None
    if symbols is not None:
        from ghtrader_assets.assets import SymbolAssetKeys
        from ghtrader_assets.symbols import parse_main_symbol

        selection = [
            key
            for raw in symbols
            for key in vars(SymbolAssetKeys.of(parse_main_symbol(raw))).values()
        ]
    result = execute_with_origin(
        reconstructable(ingest_job),
        run_config={**QUIET, **(run_config or {})},
        tags={
            **(tags or {}),
            "dagster/partition": day,
            HOST_TAG: socket.gethostname(),
            PID_TAG: str(os.getpid()),
        },
        asset_selection=selection,
    )
    if _orphaned():
        os._exit(1)  # the demo is gone: nobody will read the result, nor send more work
    return DayRun(day, result.success, result.run_id)


def set_pool_limit(pool: str, limit: int, *, keep_set: bool = False) -> int:
    """Cap concurrent steps of ``pool`` in the instance at ``$DAGSTER_HOME`` (all runs);
    returns the limit in force.

    The same as ``dagster instance concurrency set POOL LIMIT``. With ``keep_set`` (a TqSdk
    account's pool) a limit already set in the instance stands: an operator who capped a
    smaller account with ``dagster instance concurrency set tqsdk_b 2`` must not see the
    next ``ghtrader backfill`` raise it back to the default. Under the set-up lock: it
    also creates the instance's storage once, and concurrent first demos would otherwise
    collide on the SQLite schema and the pool's slot rows."""
    from dagster import DagsterInstance

    with instance_setup_lock(_home()), DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info(pool)
        if keep_set and info.slot_count and not info.using_default_limit:
            return info.slot_count
        if info.slot_count != limit:
            instance.event_log_storage.set_concurrency_slots(pool, limit)
        return limit


def set_source_pool_limits(settings: Settings) -> list[str]:
    """:func:`set_pool_limit` for every source pool of ``settings`` (one per TqSdk account,
    else the source's) at ``GHTRADER_SOURCE_POOL_LIMIT``; an account's limit set in the
    instance stands. Returns a progress line for each limit kept from the instance."""
    lines = []
    for pool in settings.source_pools:
        limit = set_pool_limit(
            pool, settings.source_pool_limit, keep_set=settings.keeps_instance_pool_limit
        )
        if limit != settings.source_pool_limit:
            lines.append(f"  pool {pool!r}: limit {limit}, as set in the instance (kept)")
    return lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def release_dead_runs(instance=None) -> list[str]:
    """Fail unfinished runs of this host whose process is gone and free their pool slots.

    Only runs tagged by :func:`run_day` on this host are judged (a pid means nothing on
    another machine); the verdict and the freeing are Dagster's own (``report_run_failed``,
    ``free_concurrency_slots_for_run``). Returns the released run ids."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    if instance is None:
        instance = process_instance()  # called after every finished run: open it once
    host = socket.gethostname()
    runs = instance.get_runs(
        RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES), tags={HOST_TAG: host})
    )
    released = []
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            f"run worker process {pid} on {host} no longer exists (killed or crashed); "
            "marked failed by ghtrader, its pool slots freed",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def pool_holders(pool: str, instance=None) -> str:
    """``"4/4 slots held by runs a1b2c3d4, ..."``: who holds ``pool`` right now."""
    if instance is None:
        instance = process_instance()
    info = instance.event_log_storage.get_concurrency_info(pool)
    runs = sorted(info.active_run_ids)
    held = f"{info.active_slot_count}/{info.slot_count} slots"
    shown = ", ".join(r[:8] for r in runs)
    return f"{held} held by run(s) {shown}" if runs else f"{held} held"


def _pool_names(pool: str | Sequence[str] | None) -> tuple[str, ...]:
    """``run_days``'s ``pool``: one name, several (one per TqSdk account) or none."""
    if pool is None:
        return ()
    return (pool,) if isinstance(pool, str) else tuple(pool)


def pools_holders(pools: Sequence[str], instance=None) -> str:
    """``"pool 'tqsdk_a': 4/4 slots held by run(s) ...; pool 'tqsdk_b': 0/4 slots held"``:
    who holds each pool right now, in one instance (several accounts: one pool each, and a
    stall may be any of them)."""
    if instance is None:
        instance = process_instance()  # the process's one instance, as pool_holders
    return "; ".join(f"pool {p!r}: {pool_holders(p, instance)}" for p in pools)


def _orphaned() -> bool:
    return _PARENT is not None and os.getppid() != _PARENT


def _die_with_parent() -> None:
    """Worker initializer: no orphaned workers after a kill -9 of the demo.

    SIGTERM on the parent's death (Linux) lets Dagster fail the running run cleanly; the
    watchdog then ends the process, since Dagster keeps SIGTERM captured after a run."""
    global _PARENT
    _PARENT = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    threading.Thread(target=_watch_parent, name="ghtrader-orphan-watchdog", daemon=True).start()


def _watch_parent() -> None:
    while not _orphaned():
        time.sleep(0.5)
    time.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(1)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, so cleanup runs as for Ctrl-C."""

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop every worker now (Python 3.14 has terminate_workers; earlier, the processes)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def run_days(
    days: Sequence[str],
    workers: int,
    *,
    pool: str | Sequence[str] | None = None,
    timeout: float = 3600.0,
    report_every: float = 30.0,
    say: Callable[[str], None] = print,
    run: Callable[[str], DayRun] = run_day,
    on_done: Callable[[DayRun], None] | None = None,
) -> list[DayRun]:
    """Run ``days`` with at most ``workers`` runs at once; results in the order of ``days``.
    ``on_done`` sees each day's outcome as it finishes (progress lines).

    While runs are unfinished it reports, every ``report_every`` seconds, the days it waits
    for and (with ``pool``: one pool name, or several, e.g. one per TqSdk account) who holds
    each pool, releasing runs whose process died; after
    ``timeout`` seconds it stops the workers and raises :class:`RunsStalledError`.
    """
    from dagster import DagsterInstance

    pools = _pool_names(pool)
    # Create the instance's storage once here, under the set-up lock: worker processes
    # racing to create the same SQLite schema would collide.
    with instance_setup_lock(_home()):
        DagsterInstance.get().dispose()
    # Load the code location once, here, and fork the workers from this process: each run
    # then starts with the definitions in memory instead of importing and building them
    # again (about a second of CPU per run; bench/overhead.py, bench/backfill.py).
    from ghtrader_assets.definitions import ingest_job

    ingest_job()
    context = multiprocessing.get_context("fork") if os.name == "posix" else None
    started = last_progress = time.monotonic()
    executor = ProcessPoolExecutor(
        max_workers=max(1, workers), initializer=_die_with_parent, mp_context=context
    )
    futures: dict[Future[DayRun], str] = {}
    try:
        with _sigterm_as_interrupt():
            futures = {executor.submit(run, day): day for day in days}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=report_every, return_when=FIRST_COMPLETED)
                if done:
                    last_progress = time.monotonic()  # the timeout is for a stall, not a run
                if on_done is not None:
                    for future in done:
                        on_done(_outcome(future, futures[future]))
                if not pending:
                    break
                now = time.monotonic()
                holders = _progress(pools, say, [futures[f] for f in pending], now - started)
                stalled = now - last_progress
                if stalled > timeout:
                    raise RunsStalledError(
                        f"gave up after {stalled:.0f} s without a finished run, waiting for "
                        f"the runs of {', '.join(sorted(futures[f] for f in pending))}"
                        + (f"; {holders}" if holders else "")
                        + ". If those runs are dead, mark them failed in the Dagster UI "
                        "(Runs -> Terminate) or delete them (`dagster run delete RUN_ID`), "
                        "which frees their slots; raise the limit with `dagster instance "
                        f"concurrency set {' / '.join(pools) or 'POOL'} N`; or allow more "
                        "time (--timeout)."
                    )
    except BaseException:
        _terminate(executor)
        with contextlib.suppress(Exception):
            release_dead_runs()
        raise
    if any(isinstance(f.exception(), BrokenProcessPool) for f in futures):
        # A worker died (kill -9, OOM): the pool is broken and a surviving worker may sit in
        # a run that keeps SIGTERM captured, so a waiting shutdown would never return. Stop
        # the workers, and fail the runs of dead processes so their pool slots come back.
        _terminate(executor)
        with contextlib.suppress(Exception):
            release_dead_runs()
    else:
        executor.shutdown(wait=True)
    return [_outcome(future, day) for future, day in futures.items()]


def _outcome(future: Future[DayRun], day: str) -> DayRun:
    exc = future.exception()
    if exc is None:
        return future.result()
    # a worker that died (BrokenProcessPool) or raised: the day failed, say why
    return DayRun(day, False, "", f"{type(exc).__name__}: {exc}")


def _progress(
    pools: Sequence[str], say: Callable[[str], None], days: list[str], waited: float
) -> str:
    """One progress line: the days still running and who holds each pool; releases dead
    runs. Returns the holders part ("" without pools) for the stall message."""
    holders = ""
    try:
        released = release_dead_runs()
        if released:
            say(
                f"  released {len(released)} run(s) whose process died: "
                f"{', '.join(r[:8] for r in released)} (their pool slots are free again)"
            )
        if pools:
            holders = pools_holders(pools)
    except Exception as exc:  # noqa: BLE001 - progress reporting must not stop the runs
        holders = f"pool {' / '.join(pools)}: state unavailable ({exc})" if pools else ""
    say(
        f"  waiting {waited:.0f} s for {len(days)} run(s) ({', '.join(sorted(days))})"
        + (f"; {holders}" if holders else "")
    )
    return holders

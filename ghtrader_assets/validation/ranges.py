"""Many days: parallel re-validation from stored ticks, and which days need it.

Incremental by construction: each trading day is validated on its own, once, when its
partition materializes. :func:`pending_days` names the days whose stored summary is absent
or was computed with another configuration hash; only those are loaded and validated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Literal

import pandas as pd

from ghtrader_assets.symbols import MainSymbol
from ghtrader_assets.validation.config import ValidationConfig
from ghtrader_assets.validation.engine import validate_day
from ghtrader_assets.validation.model import ValidationInputError, ValidationResult


class ValidationRangeError(RuntimeError):
    """Some days of a range could not be validated; ``results`` holds the days that could."""

    def __init__(
        self, failures: dict[dt.date, BaseException], results: dict[dt.date, ValidationResult]
    ):
        self.failures = failures
        self.results = results
        listed = "; ".join(f"{d}: {e}" for d, e in sorted(failures.items())[:5])
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} day(s) failed validation: {listed}{more}")


def _load_and_validate(
    loader: Callable[[dt.date], pd.DataFrame],
    symbol: MainSymbol,
    day: dt.date,
    config: ValidationConfig,
    limits: tuple[float, float] | None,
) -> ValidationResult:
    """One day of :func:`validate_range` (module level so worker processes can run it)."""
    return validate_day(loader(day), symbol, day, config, limits=limits)


def validate_range(
    days: Sequence[dt.date],
    loader: Callable[[dt.date], pd.DataFrame],
    symbol: MainSymbol,
    config: ValidationConfig | None = None,
    *,
    max_workers: int = 2,
    limits: Callable[[dt.date], tuple[float, float] | None] | None = None,
    executor: Literal["thread", "process"] = "thread",
) -> dict[dt.date, ValidationResult]:
    """Validate ``days`` of ``symbol`` from stored ticks (``loader(day)``), in parallel.

    ``executor="thread"`` (default) suits loaders that wait on I/O (PGWire, object
    stores) and needs nothing picklable; validation itself is mostly pandas/pandera Python
    code that holds the GIL, so threads barely speed up CPU-bound days
    (``bench/validate.py`` prints both). ``executor="process"`` scales with cores; it needs
    a picklable ``loader`` (a module-level function or ``functools.partial``) that reads
    the day inside the worker, so only the small result travels back. Inside Dagster,
    days are partitions and the executor already runs them in parallel within its limits;
    this is for the CLI and re-validation after a threshold change. Every day is
    attempted; failures are raised together at the end (:class:`ValidationRangeError`)
    with the results of the days that succeeded.
    """
    config = config or ValidationConfig()
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if executor not in ("thread", "process"):
        raise ValueError(f"executor must be 'thread' or 'process', got {executor!r}")
    pool_type = ThreadPoolExecutor if executor == "thread" else ProcessPoolExecutor
    results: dict[dt.date, ValidationResult] = {}
    failures: dict[dt.date, BaseException] = {}
    with pool_type(max_workers=max_workers) as pool:
        futures = {
            day: pool.submit(
                _load_and_validate, loader, symbol, day, config, limits(day) if limits else None
            )
            for day in days
        }
        for day, fut in futures.items():
            try:
                results[day] = fut.result()
            except Exception as exc:  # collected and re-raised together below
                failures[day] = exc
    if failures:
        raise ValidationRangeError(failures, results)
    return results


def pending_days(
    days: Iterable[dt.date], summaries: pd.DataFrame, config: ValidationConfig | None = None
) -> list[dt.date]:
    """The days among ``days`` without a stored summary computed with ``config``'s hash.

    With 30 days validated and one new day, only the new day is pending; after a threshold
    change every day is pending again (its summary is recomputed from stored ticks).
    """
    config = config or ValidationConfig()
    done: set[str] = set()
    if len(summaries):
        missing = {"trading_day", "config_hash"} - set(summaries.columns)
        if missing:
            raise ValidationInputError(f"validation summaries lack columns {sorted(missing)}")
        current = summaries["config_hash"].astype(str) == config.config_hash()
        done = set(summaries.loc[current, "trading_day"].astype(str))
    return [d for d in days if d.isoformat() not in done]

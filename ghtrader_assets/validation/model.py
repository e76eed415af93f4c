"""Result types of the validation engine (what the asset layer and the CLI consume)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Severity = str  # "WARN" | "ERROR" (Dagster AssetCheckSeverity values)
MetadataValue = bool | float | int | str

#: At most this many offending rows are attached to a failed check.
SAMPLE_ROWS = 10


class ValidationInputError(ValueError):
    """The ticks or arguments handed to the validator cannot be validated at all (the
    message names the symbol, trading day and the column or argument at fault)."""


@dataclass
class RuleResult:
    """The measurement of one rule before thresholds are applied.

    ``rows`` are positions of offending rows in the frame the rule looked at (used for the
    sample); ``sample`` replaces them when the offending items are not rows (schema
    failures, gaps). ``skipped`` says why a rule was not evaluated (e.g. no limits given).
    """

    name: str
    value: float
    rows: np.ndarray | None = None
    columns: tuple[str, ...] = ()
    sample: pd.DataFrame | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    skipped: str | None = None


@dataclass(frozen=True)
class Sample:
    """Row positions of the field-quality sample of a large day and where its blocks start."""

    rows: np.ndarray
    block_starts: np.ndarray
    population: int


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check result for one symbol-day.

    ``severity`` is the worst severity among the check's failed rules (``"WARN"`` for a
    passed check). ``blocking`` is True exactly when this outcome stops the manifest: the
    check failed at ERROR severity and is declared blocking.
    """

    name: str
    passed: bool
    severity: Severity
    blocking: bool
    description: str
    metadata: dict[str, MetadataValue]
    sample: pd.DataFrame


@dataclass(frozen=True)
class ValidationResult:
    """Everything one validation of one symbol-day produced."""

    symbol: str
    trading_day: str
    checks: list[CheckOutcome]
    summary: pd.DataFrame
    gaps: pd.DataFrame
    duration_seconds: float
    rules: dict[str, RuleResult] = field(repr=False, default_factory=dict)
    #: Severity of every failed rule (``{"crossed_book": "ERROR", ...}``).
    failed_rules: dict[str, Severity] = field(default_factory=dict)

    @property
    def blocking_failures(self) -> list[str]:
        """Names of the checks whose failure keeps the day's manifest from being written."""
        return [c.name for c in self.checks if c.blocking]

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckOutcome:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

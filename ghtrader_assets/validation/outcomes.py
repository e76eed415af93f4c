"""From measured rules to check outcomes: severities, descriptions, metadata, samples."""

from __future__ import annotations

import math

import pandas as pd

from ghtrader_assets.validation.config import Threshold, ValidationConfig
from ghtrader_assets.validation.coverage import Coverage
from ghtrader_assets.validation.model import CheckOutcome, MetadataValue, RuleResult, Sample
from ghtrader_assets.validation.rules import CHECKS, RULES, rules_of
from ghtrader_assets.validation.samples import check_sample


def rule_severity(
    name: str, result: RuleResult, config: ValidationConfig, cov: Coverage
) -> str | None:
    """``"ERROR"``/``"WARN"`` when rule ``name`` fails, ``None`` when it passes or was skipped.

    Gaps are judged one by one: each gap's warn level depends on its product and session
    kind (``gap_thresholds``), the error level is global (``gap.error_above``)."""
    threshold: Threshold = config.threshold(name)
    if result.skipped or not threshold.enabled:
        return None
    if name == "event_cadence" and cov.missing_halves_quiet:
        return None  # the longer intervals traded no more: an on-change feed, not thinned
    if name == "half_seconds_missing" and cov.missing_halves_quiet:
        return _at_most_warn(threshold.severity(result.value))
    if name == "session_end_lag" and cov.session_end_lag_quiet:
        return _at_most_warn(threshold.severity(result.value))
    if name != "gap":
        return threshold.severity(result.value)
    # gaps: the warn level depends on the product and session kind of each gap; a quiet
    # gap (no more volume crossed it than one ordinary tick carries) never blocks
    worst = None
    for g in cov.gaps:
        level = Threshold(g.warn_seconds, threshold.error_above).severity(float(g.seconds))
        if g.quiet:
            level = _at_most_warn(level)
        if level == "ERROR":
            return level
        worst = level or worst
    return worst


def _at_most_warn(level: str | None) -> str | None:
    return "WARN" if level == "ERROR" else level


def _num(value: float) -> float | int | str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(float(value), 6)


def _unit(unit: str) -> str:
    return "" if unit == "flag" else f" {unit}"


#: Metadata keys of rule figures whose bare rule name would hide what or which unit it is;
#: thresholds and skip reasons keep the rule name (it is the GHTRADER_VALIDATION_* name).
FIGURE_KEYS = {
    "gap": "max_gap_seconds",
    "out_of_session": "out_of_session_seconds",
    "session_end_lag": "session_end_lag_seconds",
}


def _describe_threshold(t: Threshold) -> str:
    if not t.enabled:
        return "off"
    parts = [
        f"warn>{_num(float(t.warn_above))}" if t.warn_above is not None else "",
        f"error>{_num(float(t.error_above))}" if t.error_above is not None else "",
    ]
    return " ".join(p for p in parts if p) or "info only"


def check_outcome(
    name: str,
    rules: dict[str, RuleResult],
    severities: dict[str, str | None],
    config: ValidationConfig,
    fq: pd.DataFrame,
    sample: Sample | None,
) -> CheckOutcome:
    """The outcome of check ``name``: failed when any of its rules failed, at the worst
    severity among them; metadata holds every rule's figure, threshold and skip reason,
    plus the sampling facts for the row-level checks."""
    check = next(c for c in CHECKS if c.name == name)
    defs = rules_of(name)
    failed = [r.name for r in defs if severities.get(r.name)]
    severity = "ERROR" if any(severities[r] == "ERROR" for r in failed) else "WARN"
    meta: dict[str, MetadataValue] = {}
    for rd in defs:
        r = rules[rd.name]
        meta[FIGURE_KEYS.get(rd.name, rd.name)] = _num(r.value)
        meta[f"{rd.name}_threshold"] = _describe_threshold(config.threshold(rd.name))
        if r.skipped:
            meta[f"{rd.name}_skipped"] = r.skipped
        meta.update({k: _num(v) if isinstance(v, float) else v for k, v in r.metadata.items()})
    meta["failed_rules"] = ", ".join(failed) or "none"
    if name in ("field_quality", "book_integrity", "nulls", "outliers"):
        # Explicit: whether these figures describe every row or a sample, and how much.
        meta["validation_sampled"] = sample is not None
        meta["sample_fraction"] = (
            round(sample.rows.size / sample.population, 6)
            if sample is not None and sample.population
            else 1.0
        )
        if sample is not None:
            meta.update(
                sample_rows=int(sample.rows.size),
                population_rows=sample.population,
                sample_method=f"random blocks of {config.sample_block_rows} rows, seed "
                f"{config.sample_seed}+symbol-day",
            )
    if failed:
        first = RULES[failed[0]]
        shown = "; ".join(
            f"{r} = {_num(rules[r].value)}{_unit(RULES[r].unit)} ({severities[r]}, "
            f"{_describe_threshold(config.threshold(r))})"
            for r in failed
        )
        description = f"{shown}. Action: {first.hint}"
    else:
        description = check.description
    return CheckOutcome(
        name=name,
        passed=not failed,
        severity=severity,
        blocking=bool(failed) and severity == "ERROR" and check.blocking,
        description=description,
        metadata=meta,
        sample=check_sample([rules[r] for r in failed], fq),
    )

"""Validation engine: asset checks and the per-day validation summary of the ticks.

The asset layer calls :func:`validate_day` in the same step that ingests a day (and again,
from stored ticks, when only the summary is re-materialized), turns ``result.checks`` into
Dagster ``AssetCheckResult`` objects for the fixed :data:`CHECKS`, and stores
``result.summary`` (:data:`~ghtrader_assets.schema.VALIDATION_SUMMARY`) and ``result.gaps``
(:data:`~ghtrader_assets.schema.VALIDATION_GAPS`). See :mod:`.rules` for the checks, their
rules and the reasoning behind each severity, :mod:`.config` for thresholds.
"""

from ghtrader_assets.validation.attribution import AttributionBudget, attribute_gaps
from ghtrader_assets.validation.config import Threshold, ValidationConfig, ValidationConfigError
from ghtrader_assets.validation.duplicates import drop_exact_duplicates
from ghtrader_assets.validation.engine import choose_sample, validate_day
from ghtrader_assets.validation.model import (
    CheckOutcome,
    ValidationInputError,
    ValidationResult,
)
from ghtrader_assets.validation.ranges import ValidationRangeError, pending_days, validate_range
from ghtrader_assets.validation.rules import CHECK_NAMES, CHECKS, RULES, CheckDef, RuleDef

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "RULES",
    "AttributionBudget",
    "CheckDef",
    "CheckOutcome",
    "RuleDef",
    "Threshold",
    "ValidationConfig",
    "ValidationConfigError",
    "ValidationInputError",
    "ValidationRangeError",
    "ValidationResult",
    "attribute_gaps",
    "choose_sample",
    "drop_exact_duplicates",
    "pending_days",
    "validate_day",
    "validate_range",
]

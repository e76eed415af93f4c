"""The layered verdict of one symbol-day: engineering / source / policy / overall.

One red light says "something is wrong"; three say *who should act*:

* ``engineering``: our pipeline (schema mismatch, ticks outside sessions, duplicates not
  dropped, a gap the provider can fill): fix code or re-ingest.
* ``source``: the provider's data is defective (crossed books, negative volumes, null runs,
  no ticks on a trading day): re-download, compare, or report to the provider.
* ``policy``: the data is plausible but misses our completeness policy (gaps, thin
  half-second stream, ticks ending before the close): accept, backfill or tune thresholds.

Each layer is ``ok``/``warn``/``error`` with a reason code (the upper-case rule name of its
most severe failure, ``OK`` when clean) and a one-line action hint; ``overall`` is the worst
layer, engineering first on ties because it is the one we can fix ourselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ghtrader_assets.validation.rules import LAYERS, RULE_NAMES, RULES

STATUS_OF = {None: "ok", "WARN": "warn", "ERROR": "error"}
_RANK = {"ok": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class LayerVerdict:
    status: str  # ok | warn | error
    reason: str
    hint: str


@dataclass(frozen=True)
class Finding:
    """A failure that is not a rule of the catalogue (e.g. from gap attribution)."""

    layer: str
    severity: str  # WARN | ERROR
    reason: str
    hint: str


OK = LayerVerdict("ok", "OK", "no action")


def layered_verdict(
    failed: Mapping[str, str], extra: Iterable[Finding] = ()
) -> dict[str, LayerVerdict]:
    """Verdicts per layer and ``overall`` from ``{rule: "WARN"|"ERROR"}`` of failed rules."""
    findings = [
        Finding(RULES[r].layer, failed[r], RULES[r].reason_code, RULES[r].hint)
        for r in RULE_NAMES
        if r in failed
    ]
    findings.extend(extra)
    out: dict[str, LayerVerdict] = {}
    for layer in LAYERS:
        mine = [f for f in findings if f.layer == layer]
        if not mine:
            out[layer] = OK
            continue
        worst = max(mine, key=lambda f: _RANK[STATUS_OF[f.severity]])  # first of the worst
        more = sum(1 for f in mine if f is not worst)
        hint = worst.hint + (f" (+{more} more)" if more else "")
        out[layer] = LayerVerdict(STATUS_OF[worst.severity], worst.reason, hint)
    overall_layer = max(LAYERS, key=lambda layer: _RANK[out[layer].status])
    out["overall"] = out[overall_layer]
    return out


#: What a user sees per symbol-day: ``pass`` (every check passed), ``warn`` (a check failed
#: without blocking: the day is stored and has its manifest) or ``blocked`` (a blocking
#: check failed: the day is stored for inspection but gets no manifest).
DAY_STATUSES = ("pass", "warn", "blocked")


@dataclass(frozen=True)
class DayVerdict:
    """The one-word verdict of a symbol-day with why and what to do, for the UI.

    ``blocked`` is decided by the blocking checks (what keeps the manifest out), not by the
    overall layer status alone: a non-blocking check failing at ERROR is a ``warn`` day.
    """

    trading_day: str
    status: str  # pass | warn | blocked
    reason: str  # reason code of the most severe failure, OK when clean
    hint: str  # one-line action hint
    max_gap_seconds: int
    failed_checks: tuple[str, ...]
    blocking_failures: tuple[str, ...]

    def metadata(self) -> dict[str, object]:
        """The day's materialization metadata: verdict first, so the UI lists it on top."""
        return {
            "verdict": self.status,
            "verdict_reason": self.reason,
            "action_hint": self.hint,
            "max_gap_seconds": self.max_gap_seconds,
            "checks_failed": len(self.failed_checks),
            "failed_checks": ", ".join(self.failed_checks) or "none",
            "blocking_failures": ", ".join(self.blocking_failures) or "none",
        }


def day_status(failed_checks: Iterable[str], blocking_failures: Iterable[str]) -> str:
    """``blocked`` if a blocking check failed, ``warn`` if any check failed, else ``pass``."""
    if any(True for _ in blocking_failures):
        return "blocked"
    return "warn" if any(True for _ in failed_checks) else "pass"


def status_from_summary(verdict_overall: str, blocking_failure: bool) -> str:
    """The day status from a stored validation-summary row (reports read these)."""
    if blocking_failure:
        return "blocked"
    return "pass" if str(verdict_overall) in ("ok", "", "nan", "None") else "warn"


def day_verdict(
    trading_day: str,
    summary_row: Mapping[str, object],
    failed_checks: Iterable[str],
    blocking_failures: Iterable[str],
) -> DayVerdict:
    """The :class:`DayVerdict` of one day from its summary row and its failed checks."""
    failed = tuple(sorted(failed_checks))
    blocking = tuple(sorted(blocking_failures))
    status = day_status(failed, blocking)
    reason = str(summary_row.get("reason_overall") or "OK")
    hint = str(summary_row.get("hint_overall") or "no action")
    if status == "pass":
        reason, hint = "OK", "no action"
    gap = summary_row.get("max_gap_seconds")
    return DayVerdict(
        trading_day=trading_day,
        status=status,
        reason=reason,
        hint=hint,
        max_gap_seconds=int(gap) if gap is not None and gap == gap else 0,  # NaN-safe
        failed_checks=failed,
        blocking_failures=blocking,
    )

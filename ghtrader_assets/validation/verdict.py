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

"""Validation thresholds and severities, from defaults, ``GHTRADER_VALIDATION_*`` or a dict.

Every rule of :mod:`~ghtrader_assets.validation.rules` has a :class:`Threshold`: the rule's
measured value fails at WARN when it exceeds ``warn_above`` and at ERROR when it exceeds
``error_above``. Leaving a level at ``None`` removes it, so severity is configured by which
levels are set (``Threshold(None, 0)``: any occurrence is an ERROR; ``Threshold(0, None)``:
warn only; ``Threshold(None, None)``: INFO, counted but never failing); ``enabled=False``
skips the rule and says so in the metadata.

Environment variables (all optional):

* ``GHTRADER_VALIDATION_<RULE>_WARN_ABOVE`` / ``_ERROR_ABOVE``: a number, or ``none``;
  ``GHTRADER_VALIDATION_<RULE>_ENABLED``: ``true``/``false`` (``<RULE>`` is the upper-case
  rule name, e.g. ``GAP``, ``CROSSED_BOOK``).
* ``GHTRADER_VALIDATION_<PARAMETER>`` for the scalar parameters below, e.g.
  ``GHTRADER_VALIDATION_PRICE_JUMP_SIGMA=4``.
* ``GHTRADER_VALIDATION_GAP_THRESHOLDS``: per-product/per-session gap warn thresholds in
  seconds, ``SHFE.cu:night=10,DCE.m=8,:night=6`` (``EXCHANGE.product``, optional
  ``:day``/``:night``; a bare ``:night`` applies to every product's night session).
* ``GHTRADER_VALIDATION_EVENT_CADENCE_PRODUCTS``: products whose ticks only arrive on
  change, e.g. ``DCE.jd,CZCE.PK`` (an event-driven day is normal for them).

An unknown ``GHTRADER_VALIDATION_*`` variable is an error, so a typo never silently leaves a
default in force. :meth:`ValidationConfig.config_hash` goes into each validation summary, so
a reader can tell which thresholds a stored verdict was computed with, and
:func:`~ghtrader_assets.validation.engine.pending_days` re-validates exactly the days whose
hash differs after a change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ghtrader_assets.sessions import POST_CLOSE_GRACE_SECONDS, PRE_OPEN_GRACE_SECONDS
from ghtrader_assets.validation.rules import RULE_NAMES

ENV_PREFIX = "GHTRADER_VALIDATION_"
SESSION_KINDS = ("day", "night")


class ValidationConfigError(ValueError):
    """A validation setting (variable, override key or value) that cannot be used."""


@dataclass(frozen=True)
class Threshold:
    """Levels of one rule: fails at WARN above ``warn_above``, at ERROR above ``error_above``."""

    warn_above: float | None = None
    error_above: float | None = None
    enabled: bool = True

    def severity(self, value: float) -> str | None:
        """``"ERROR"``, ``"WARN"`` or ``None`` (passes) for a measured ``value``; NaN passes."""
        if not self.enabled or value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.error_above is not None and value > self.error_above:
            return "ERROR"
        if self.warn_above is not None and value > self.warn_above:
            return "WARN"
        return None

    @property
    def level(self) -> str:
        """The most severe outcome this threshold can produce (``OFF``/``INFO``/``WARN``/``ERROR``)."""
        if not self.enabled:
            return "OFF"
        if self.error_above is not None:
            return "ERROR"
        return "WARN" if self.warn_above is not None else "INFO"


def _t(warn: float | None = None, error: float | None = None, enabled: bool = True) -> Threshold:
    return Threshold(warn, error, enabled)


@dataclass(frozen=True)
class ValidationConfig:
    """All thresholds, severities and parameters of the validation engine (see module doc)."""

    # -- rule thresholds (field names == rule names) ------------------------------------
    schema: Threshold = _t(error=0)
    non_positive_price: Threshold = _t(error=0)
    negative_volume: Threshold = _t(error=0)
    cumulative_decrease: Threshold = _t(error=0)
    open_interest_decrease: Threshold = _t()  # INFO: open interest is not cumulative
    limit_band: Threshold = _t(error=0)
    crossed_book: Threshold = _t(error=0)
    bid_ladder: Threshold = _t(error=0)
    ask_ladder: Threshold = _t(error=0)
    null_rate: Threshold = _t(
        warn=0
    )  # any null key field warns (limit-locked sides exempt with limits)
    null_rate_depth: Threshold = _t(warn=0.05)
    null_run: Threshold = _t(error=100)
    exact_duplicates: Threshold = _t(warn=0)
    conflicting_duplicates: Threshold = _t(error=0)
    gap: Threshold = _t(warn=5, error=30)
    event_cadence: Threshold = _t(warn=0)
    half_seconds_missing: Threshold = _t(warn=0.02, error=0.10)
    out_of_session: Threshold = _t(warn=0, error=60)
    misdated_rows: Threshold = _t(warn=0)
    missing_day: Threshold = _t(error=0)
    session_end_lag: Threshold = _t(warn=5, error=30)
    price_jump: Threshold = _t(warn=0)
    volume_spike: Threshold = _t(warn=0)
    spread_anomaly: Threshold = _t(warn=0)

    # -- coverage parameters --------------------------------------------------------------
    #: Per-product/per-session gap warn thresholds (seconds), most specific key wins:
    #: ``("SHFE.cu:night", 10.0)``, ``("SHFE.cu", 8.0)``, ``(":night", 6.0)``.
    gap_thresholds: tuple[tuple[str, float], ...] = ()
    #: Ticks this many seconds before an opening session (night, first day session) are
    #: call-auction prints, counted as boundary ticks rather than out of session.
    pre_open_grace_seconds: float = PRE_OPEN_GRACE_SECONDS
    #: Ticks up to this many seconds after any session end are closing prints.
    post_close_grace_seconds: float = POST_CLOSE_GRACE_SECONDS
    #: A day is fixed-cadence when at least this share of seconds with ticks has two or more.
    fixed_cadence_min_share: float = 0.5
    #: Products (``EXCHANGE.product``) whose ticks are expected event-driven (only on change):
    #: an event-driven day is normal for them and not reported by ``cadence_mode``.
    event_cadence_products: tuple[str, ...] = ()
    #: A day on which at most this share of the session seconds holds a tick is *sparse*
    #: (an illiquid contract): there a gap or session-end lag across which no more volume
    #: traded than one ordinary tick carries is a quiet market and never blocks. On denser
    #: days every silence over the thresholds is judged as a hole.
    quiet_market_max_share: float = 0.5
    #: How many of the largest over-threshold gaps are kept in the gaps table.
    max_gaps_stored: int = 20

    # -- outlier parameters ---------------------------------------------------------------
    price_jump_sigma: float = 5.0
    price_jump_window: int = 200
    volume_spike_factor: float = 10.0
    #: Floor of the rolling median (lots), so a quiet stretch with median 0 does not flag
    #: every trade.
    volume_spike_min_median: float = 1.0
    volume_spike_window: int = 200
    spread_anomaly_factor: float = 3.0
    #: Rolling windows need this many observations before they judge a tick.
    outlier_min_periods: int = 30

    # -- sampling of field-quality rules on very large days --------------------------------
    sample_threshold_rows: int = 1_000_000
    sample_rows: int = 200_000
    sample_block_rows: int = 1_000
    sample_seed: int = 0

    # -- gap attribution (re-asking the source for gap windows) ----------------------------
    attribution_enabled: bool = False
    attribution_max_days: int = 5
    attribution_max_gaps: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in RULE_NAMES and not isinstance(value, Threshold):
                raise ValidationConfigError(f"{f.name}: expected a Threshold, got {value!r}")
        _products(self.event_cadence_products)
        for key, seconds in self.gap_thresholds:
            _parse_gap_key(key)
            if not seconds > 0:
                raise ValidationConfigError(f"gap threshold {key}={seconds}: must be > 0 seconds")
        positive = (
            "price_jump_sigma",
            "price_jump_window",
            "volume_spike_factor",
            "volume_spike_window",
            "spread_anomaly_factor",
            "outlier_min_periods",
            "sample_rows",
            "sample_block_rows",
            "sample_threshold_rows",
            "max_gaps_stored",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValidationConfigError(f"{name}={getattr(self, name)!r}: must be > 0")
        if not 0 <= self.quiet_market_max_share <= 1:
            raise ValidationConfigError("quiet_market_max_share must be in [0, 1]")
        if not 0 < self.fixed_cadence_min_share <= 1:
            raise ValidationConfigError("fixed_cadence_min_share must be in (0, 1]")
        if self.pre_open_grace_seconds < 0 or self.post_close_grace_seconds < 0:
            raise ValidationConfigError("grace seconds must be >= 0")

    # -- lookups ------------------------------------------------------------------------
    def threshold(self, rule: str) -> Threshold:
        """The :class:`Threshold` of ``rule``."""
        if rule not in RULE_NAMES:
            raise ValidationConfigError(f"unknown rule {rule!r}; rules: {', '.join(RULE_NAMES)}")
        return getattr(self, rule)

    def gap_warn_seconds(self, exchange: str, product: str, kind: str) -> float | None:
        """The gap warn threshold for one product's ``day``/``night`` session."""
        table = dict(self.gap_thresholds)
        for key in (f"{exchange}.{product}:{kind}", f"{exchange}.{product}", f":{kind}"):
            if key in table:
                return table[key]
        return self.gap.warn_above

    def config_hash(self) -> str:
        """A short stable hash of every setting; stored with each summary."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (thresholds as dicts)."""
        out = dataclasses.asdict(self)
        out["gap_thresholds"] = [list(p) for p in self.gap_thresholds]
        return out

    # -- construction -------------------------------------------------------------------
    def with_overrides(self, overrides: Mapping[str, Any]) -> ValidationConfig:
        """A copy with ``overrides`` applied, e.g. from Dagster run config.

        Keys are parameter names (``price_jump_sigma``), rule names with a
        :class:`Threshold` or a dict of its fields (``{"gap": {"warn_above": 10}}``), dotted
        rule fields (``"gap.error_above"``) or ``gap_thresholds`` as a mapping or a
        ``"SHFE.cu:night=10,..."`` string. Unknown keys raise naming the key.
        """
        changes: dict[str, Any] = {}
        names = {f.name: f for f in fields(self)}
        for key, value in overrides.items():
            rule, _, attr = key.partition(".")
            if attr:
                if rule not in RULE_NAMES:
                    raise ValidationConfigError(f"override {key!r}: unknown rule {rule!r}")
                current = changes.get(rule, self.threshold(rule))
                changes[rule] = _threshold_with(current, {attr: value}, key)
            elif key in RULE_NAMES:
                if isinstance(value, Threshold):
                    changes[key] = value
                elif isinstance(value, Mapping):
                    changes[key] = _threshold_with(
                        changes.get(key, self.threshold(key)), value, key
                    )
                else:
                    raise ValidationConfigError(
                        f"override {key!r}: expected a Threshold or a mapping of "
                        f"warn_above/error_above/enabled, got {value!r}"
                    )
            elif key == "gap_thresholds":
                changes[key] = _gap_thresholds(value)
            elif key == "event_cadence_products":
                changes[key] = _products(value)
            elif key in names:
                changes[key] = _coerce(key, value, type(getattr(self, key)))
            else:
                raise ValidationConfigError(
                    f"unknown validation setting {key!r}; rules: {', '.join(RULE_NAMES)}; "
                    f"parameters: {', '.join(n for n in names if n not in RULE_NAMES)}"
                )
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ValidationConfig:
        """Defaults overridden by ``GHTRADER_VALIDATION_*`` variables (see module doc)."""
        env = os.environ if env is None else env
        base = cls()
        params = {f.name for f in fields(cls) if f.name not in RULE_NAMES}
        overrides: dict[str, Any] = {}
        variables: dict[str, str] = {}  # override key -> the variable that set it
        for var, raw in env.items():
            if not var.startswith(ENV_PREFIX):
                continue
            name = var[len(ENV_PREFIX) :].lower()
            value = raw.strip()
            for suffix, attr in (
                ("_warn_above", "warn_above"),
                ("_error_above", "error_above"),
                ("_enabled", "enabled"),
            ):
                rule = name[: -len(suffix)] if name.endswith(suffix) else ""
                if rule in RULE_NAMES:
                    overrides[f"{rule}.{attr}"] = value
                    variables[f"{rule}.{attr}"] = var
                    break
            else:
                if name not in params:
                    raise ValidationConfigError(
                        f"{var}: unknown validation variable{_did_you_mean(var, params)} "
                        f"(rules take _WARN_ABOVE, _ERROR_ABOVE or _ENABLED; parameters: "
                        f"{', '.join(ENV_PREFIX + p.upper() for p in sorted(params))})"
                    )
                overrides[name] = value
                variables[name] = var
        try:
            return base.with_overrides(overrides)
        except ValidationConfigError as exc:
            combined = exc
        # Name the variable: the first one whose value is wrong on its own, else them all
        # (values that only conflict together, e.g. a warn level above the error level).
        for key, var in variables.items():
            try:
                base.with_overrides({key: overrides[key]})
            except ValidationConfigError as exc:
                raise ValidationConfigError(f"{var}={env[var]!r}: {exc}") from None
        names = ", ".join(sorted(variables.values()))
        raise ValidationConfigError(f"{combined} (from {names})") from None


def _did_you_mean(var: str, params: set[str]) -> str:
    """``", did you mean GHTRADER_VALIDATION_GAP_WARN_ABOVE?"`` for a near-miss, else ``""``."""
    import difflib

    known = [ENV_PREFIX + p.upper() for p in params] + [
        f"{ENV_PREFIX}{rule.upper()}{suffix}"
        for rule in RULE_NAMES
        for suffix in ("_WARN_ABOVE", "_ERROR_ABOVE", "_ENABLED")
    ]
    close = difflib.get_close_matches(var.upper(), known, n=1, cutoff=0.8)
    return f", did you mean {close[0]}?" if close else ""


def _parse_gap_key(key: str) -> tuple[str, str]:
    target, _, kind = key.partition(":")
    if kind and kind not in SESSION_KINDS:
        raise ValidationConfigError(f"gap threshold key {key!r}: session must be day or night")
    if not target and not kind:
        raise ValidationConfigError(f"gap threshold key {key!r}: name a product or a session")
    if target and (target.count(".") != 1 or not all(target.split("."))):
        raise ValidationConfigError(
            f"gap threshold key {key!r}: expected EXCHANGE.product[:day|:night] or :day/:night"
        )
    return target, kind


def _gap_thresholds(value: Any) -> tuple[tuple[str, float], ...]:
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, seconds = item.partition("=")
            if not sep:
                raise ValidationConfigError(f"gap threshold {item!r}: expected KEY=SECONDS")
            pairs.append((key.strip(), seconds.strip()))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = list(value)
    out = []
    for key, seconds in pairs:
        _parse_gap_key(str(key))
        out.append((str(key), _coerce(f"gap_thresholds[{key}]", seconds, float)))
    return tuple(sorted(out))


def _products(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if item.count(".") != 1 or not all(item.split(".")):
            raise ValidationConfigError(
                f"event_cadence_products: {item!r} is not EXCHANGE.product (e.g. DCE.m)"
            )
        out.append(item)
    return tuple(sorted(set(out)))


def _threshold_with(current: Threshold, values: Mapping[str, Any], where: str) -> Threshold:
    kw: dict[str, Any] = {}
    for attr, value in values.items():
        if attr in ("warn_above", "error_above"):
            kw[attr] = _optional_float(where, value)
        elif attr == "enabled":
            kw[attr] = _coerce(where, value, bool)
        else:
            raise ValidationConfigError(
                f"override {where!r}: unknown threshold field {attr!r} "
                "(warn_above, error_above, enabled)"
            )
    return dataclasses.replace(current, **kw)


def _optional_float(where: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off", "")):
        return None
    return _coerce(where, value, float)


def _coerce(where: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if kind is float:
            out = float(value)
            if math.isnan(out):
                raise ValueError(value)
            return out
    except (TypeError, ValueError):
        raise ValidationConfigError(f"{where}: {value!r} is not a valid {kind.__name__}") from None
    raise ValidationConfigError(f"{where}: cannot set a {kind.__name__} setting from {value!r}")

"""Retries for a remote tick provider: backoff with jitter, maintenance waits, a circuit breaker.

TqSdk fails in three distinct ways and each needs a different answer:

* **transient** (a timeout, a dropped connection): retry soon, backing off exponentially
  with jitter so parallel workers do not retry in lock-step, within an attempt limit and a
  time budget so one stuck day cannot hold a worker for hours;
* **maintenance** (the daily 19:00-19:30 Asia/Shanghai service window, or an error whose text
  says maintenance / 运维 / 维护): retrying every few seconds is pointless, so wait long once;
* **fatal** (bad account, unknown symbol, a bug): retrying cannot help, fail at once.

On top of that a :class:`CircuitBreaker` counts consecutive failed attempts across calls (and,
when shared, across sources in one process) and, once open, fails fast with a clear message
until a cool-down has passed, so a backfill does not hammer a service that is down.

The loop is written here rather than taken from ``tenacity``/``backoff`` because it needs an
injectable clock and sleep (tests must not sleep), wall-clock maintenance windows and a
breaker that spans calls; the arithmetic is a few lines. The caller supplies the
classification of provider-specific errors (see :mod:`ghtrader_assets.sources.tqsdk`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from ghtrader_assets.calendar import TZ
from ghtrader_assets.sources.base import SourceError, SourceUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Returns the current time, tz-aware. Injected so tests control time.
Clock = Callable[[], dt.datetime]
#: Sleeps for a number of seconds. Injected so tests do not sleep.
Sleep = Callable[[float], None]

MAINTENANCE_PATTERN = re.compile(r"maintenance|运维|维护", re.IGNORECASE)


def system_clock() -> dt.datetime:
    """The current time in Asia/Shanghai (the clock every window here is expressed in)."""
    return dt.datetime.now(TZ)


class ErrorKind(Enum):
    """How a failed attempt should be handled."""

    TRANSIENT = "transient"
    MAINTENANCE = "maintenance"
    FATAL = "fatal"


@dataclass(frozen=True)
class Classified:
    """A classified failure. ``message`` is safe to log (no secrets). For ``FATAL`` failures
    ``error`` is the exception to raise instead of the original one."""

    kind: ErrorKind
    message: str
    error: BaseException | None = None


class RetryExhaustedError(SourceUnavailableError):
    """Transient failures went on past the attempt limit or the time budget."""


class MaintenanceError(SourceUnavailableError):
    """The service stayed in maintenance past the allowed number of long waits."""


class CircuitOpenError(SourceUnavailableError):
    """The circuit breaker is open: the service failed repeatedly, so calls fail fast."""


@dataclass(frozen=True)
class RetryPolicy:
    """Limits and delays for one call.

    ``base_delay * multiplier**(n-1)`` (capped at ``max_delay``) is the delay after the n-th
    transient failure, scaled by a random factor in ``[1 - jitter, 1]``. A call gives up after
    ``max_attempts`` attempts or when the next delay would take the time spent on it past
    ``budget_seconds``. Maintenance waits do not count against either: they are bounded by
    ``max_maintenance_waits``. Inside the daily window the wait lasts until the window ends
    plus ``maintenance_grace``; outside it (an error that *says* maintenance)
    ``maintenance_wait`` seconds.
    """

    max_attempts: int = 5
    base_delay: float = 2.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25
    budget_seconds: float = 600.0
    maintenance_wait: float = 2100.0
    maintenance_grace: float = 60.0
    max_maintenance_waits: int = 2
    maintenance_window: tuple[dt.time, dt.time] | None = (dt.time(19, 0), dt.time(19, 30))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy delays must be >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"RetryPolicy.jitter must be within [0, 1], got {self.jitter}")
        if self.budget_seconds < 0 or self.maintenance_wait < 0 or self.max_maintenance_waits < 0:
            raise ValueError("RetryPolicy budget and maintenance settings must be >= 0")
        if self.maintenance_window and not self.maintenance_window[0] < self.maintenance_window[1]:
            raise ValueError(
                f"RetryPolicy.maintenance_window is reversed: {self.maintenance_window}"
            )

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Delay in seconds after the ``failures``-th consecutive transient failure (>= 1)."""
        raw = min(self.max_delay, self.base_delay * self.multiplier ** max(failures - 1, 0))
        return raw * (1.0 - self.jitter * rng.random())

    def in_maintenance_window(self, now: dt.datetime) -> bool:
        """True during the provider's daily maintenance window (Asia/Shanghai)."""
        if self.maintenance_window is None:
            return False
        local = now.astimezone(TZ).time() if now.tzinfo else now.time()
        start, end = self.maintenance_window
        return start <= local < end

    def maintenance_delay(self, now: dt.datetime) -> float:
        """How long to wait for maintenance that is under way at ``now``."""
        if self.maintenance_window is not None and self.in_maintenance_window(now):
            local = now.astimezone(TZ) if now.tzinfo else now.replace(tzinfo=TZ)
            end = dt.datetime.combine(local.date(), self.maintenance_window[1], tzinfo=TZ)
            return (end - local).total_seconds() + self.maintenance_grace
        return self.maintenance_wait

    @staticmethod
    def says_maintenance(message: str) -> bool:
        """True when an error text announces maintenance (English or Chinese)."""
        return bool(MAINTENANCE_PATTERN.search(message))


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failed attempts; while open every call
    fails fast with :class:`CircuitOpenError`. After ``cooldown_seconds`` one trial call is let
    through (half-open): success closes the circuit, failure opens it for another cool-down.

    Thread-safe, so one breaker can be shared by all sources of a process (see
    :meth:`shared`); fatal errors (bad symbol, bad account) are not service failures and are
    never recorded here.
    """

    _registry: dict[str, CircuitBreaker] = {}
    _registry_lock = threading.Lock()

    def __init__(
        self,
        name: str = "source",
        failure_threshold: int = 8,
        cooldown_seconds: float = 300.0,
        clock: Clock = system_clock,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must be >= 0, got {cooldown_seconds}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: dt.datetime | None = None
        self._trial_in_flight = False
        self._last_error = ""

    @classmethod
    def shared(cls, name: str, **kwargs: object) -> CircuitBreaker:
        """The process-wide breaker called ``name`` (created with ``kwargs`` on first use)."""
        with cls._registry_lock:
            breaker = cls._registry.get(name)
            if breaker is None:
                breaker = cls._registry[name] = cls(name, **kwargs)  # type: ignore[arg-type]
            return breaker

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (cool-down over, trial allowed)."""
        with self._lock:
            return self._state_locked()

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return "closed"
        elapsed = (self._clock() - self._opened_at).total_seconds()
        return "half-open" if elapsed >= self.cooldown_seconds else "open"

    def before_call(self) -> None:
        """Raise :class:`CircuitOpenError` when calls must fail fast; otherwise allow one."""
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_in_flight:
                self._trial_in_flight = True
                logger.info("circuit %s half-open: letting one trial call through", self.name)
                return
            assert self._opened_at is not None
            until = self._opened_at + dt.timedelta(seconds=self.cooldown_seconds)
            raise CircuitOpenError(
                f"{self.name} circuit breaker is open after {self._failures} consecutive "
                f"failures (last: {self._last_error}); failing fast until "
                f"{until.astimezone(TZ):%Y-%m-%d %H:%M:%S} Asia/Shanghai "
                f"(cool-down {self.cooldown_seconds:.0f} s)"
            )

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                logger.info("circuit %s closed: the trial call succeeded", self.name)
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self, message: str) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = message
            trial_failed = self._trial_in_flight
            self._trial_in_flight = False
            if trial_failed or (
                self._opened_at is None and self._failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                logger.warning(
                    "circuit %s opened after %d consecutive failures (last: %s); failing fast "
                    "for %.0f s",
                    self.name,
                    self._failures,
                    message,
                    self.cooldown_seconds,
                )

    def release_trial(self) -> None:
        """Forget an in-flight trial that ended in a fatal (non-service) error."""
        with self._lock:
            self._trial_in_flight = False


class Retrier:
    """Runs calls under a :class:`RetryPolicy` and an optional :class:`CircuitBreaker`."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = system_clock,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.breaker = breaker
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str,
        classify: Callable[[BaseException], Classified],
        on_failure: Callable[[Classified], None] | None = None,
    ) -> T:
        """Call ``fn`` until it succeeds, a fatal error occurs or the limits are reached.

        ``classify`` turns a raised exception into a :class:`Classified`; an error text that
        says maintenance, or any transient failure inside the daily window, is treated as
        maintenance. ``on_failure`` runs after each non-fatal failure (e.g. to drop a broken
        connection). Raised errors are :class:`SourceError` subclasses whose messages carry the
        last cause; the provider's traceback is not chained (its internals are noise and may
        hold secrets in frame data).
        """
        policy = self.policy
        started = self._clock()
        failures = 0
        maintenance_waits = 0
        paused = 0.0  # seconds spent in maintenance waits: not part of the retry budget

        def wait_maintenance(reason: str) -> None:
            nonlocal maintenance_waits, paused
            before = self._clock()
            maintenance_waits = self._wait_maintenance(what, reason, maintenance_waits)
            paused += (self._clock() - before).total_seconds()

        while True:
            now = self._clock()
            if policy.in_maintenance_window(now):
                wait_maintenance(f"{now:%H:%M} is inside the daily maintenance window")
                continue
            if self.breaker is not None:
                self.breaker.before_call()
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as SourceError
                failure = classify(exc)
                if failure.kind is ErrorKind.FATAL:
                    if self.breaker is not None:
                        self.breaker.release_trial()
                    error = failure.error or SourceError(f"{what} failed: {failure.message}")
                    raise error from None
                now = self._clock()
                if failure.kind is ErrorKind.TRANSIENT and (
                    policy.says_maintenance(failure.message) or policy.in_maintenance_window(now)
                ):
                    failure = Classified(ErrorKind.MAINTENANCE, failure.message)
                if self.breaker is not None:
                    self.breaker.record_failure(failure.message)
                if on_failure is not None:
                    on_failure(failure)
                if failure.kind is ErrorKind.MAINTENANCE:
                    wait_maintenance(failure.message)
                    continue
                failures += 1
                spent = (now - started).total_seconds() - paused
                if failures >= policy.max_attempts:
                    raise RetryExhaustedError(
                        f"{what}: gave up after {failures} attempts in {spent:.0f} s; "
                        f"last error: {failure.message}"
                    ) from None
                delay = policy.backoff(failures, self._rng)
                if spent + delay > policy.budget_seconds:
                    raise RetryExhaustedError(
                        f"{what}: gave up after {failures} attempts: the retry budget of "
                        f"{policy.budget_seconds:.0f} s would be exceeded; last error: "
                        f"{failure.message}"
                    ) from None
                logger.warning(
                    "%s failed (attempt %d of %d): %s; retrying in %.1f s",
                    what,
                    failures,
                    policy.max_attempts,
                    failure.message,
                    delay,
                )
                self._sleep(delay)
            else:
                if self.breaker is not None:
                    self.breaker.record_success()
                return result

    def _wait_maintenance(self, what: str, reason: str, waits: int) -> int:
        policy = self.policy
        if waits >= policy.max_maintenance_waits:
            raise MaintenanceError(
                f"{what}: the service is still in maintenance after {waits} long waits "
                f"({reason}); try again later"
            ) from None
        delay = policy.maintenance_delay(self._clock())
        logger.warning(
            "%s: provider maintenance (%s); waiting %.0f s (wait %d of %d)",
            what,
            reason,
            delay,
            waits + 1,
            policy.max_maintenance_waits,
        )
        self._sleep(delay)
        return waits + 1

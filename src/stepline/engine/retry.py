"""Retry decisions: exponential backoff with jitter and a cap, overridden by the user's errors."""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stepline import errors


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Delay before attempt n+1 = min(cap, base * factor**n) * (1 + jitter * U[0, 1))."""

    base_seconds: float = 1.0
    factor: float = 2.0
    cap_seconds: float = 600.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> timedelta:
        """The backoff after the failed attempt number `attempt` (0 for the first)."""
        seconds = min(self.cap_seconds, self.base_seconds * self.factor**attempt)
        return timedelta(seconds=seconds * (1 + self.jitter * rng()))


def next_attempt_at(
    error: BaseException,
    attempt: int,
    max_attempts: int,
    now: datetime,
    policy: RetryPolicy,
    rng: Callable[[], float] = random.random,
) -> datetime | None:
    """When to retry after `error` ended attempt `attempt`, or None to give up now."""
    if isinstance(error, errors.NonRetriableError) or attempt + 1 >= max_attempts:
        return None
    if isinstance(error, errors.RetryAfterError):
        delay = error.delay
        if isinstance(delay, datetime):
            return max(now, delay)
        if not isinstance(delay, timedelta):
            delay = timedelta(seconds=float(delay))
        return now + max(delay, timedelta())
    return now + policy.delay(attempt, rng)


def describe(error: BaseException) -> dict[str, Any]:
    """An error as stored: type name, message and traceback (text, never a pickled object)."""
    if isinstance(error, errors.StepError):
        return {
            "name": error.name,
            "message": error.error_message,
            "step": error.step_id,
            "traceback": error.traceback,
        }
    return {
        "name": type(error).__name__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
    }

"""Retry decisions: exponential backoff with a cap and jitter, `NonRetriableError` and the last
attempt give up, `RetryAfterError` sets the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stepline import errors
from stepline.engine.retry import RetryPolicy, describe, next_attempt_at

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=1, factor=2, cap_seconds=60, jitter=0.5)


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (9, 60)]
)
def test_backoff_doubles_up_to_the_cap(attempt: int, seconds: float) -> None:
    assert POLICY.delay(attempt, rng=lambda: 0.0) == timedelta(seconds=seconds)
    assert POLICY.delay(attempt, rng=lambda: 1.0) == timedelta(seconds=seconds * 1.5)


def test_ordinary_error_retries_after_the_backoff_until_attempts_run_out() -> None:
    error = RuntimeError("boom")
    assert next_attempt_at(error, 0, 5, NOW, POLICY, lambda: 0.0) == NOW + timedelta(seconds=1)
    assert next_attempt_at(error, 3, 5, NOW, POLICY, lambda: 0.0) == NOW + timedelta(seconds=8)
    assert next_attempt_at(error, 4, 5, NOW, POLICY, lambda: 0.0) is None


def test_non_retriable_error_gives_up_at_once() -> None:
    assert next_attempt_at(errors.NonRetriableError("no"), 0, 5, NOW, POLICY) is None


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (timedelta(seconds=30), NOW + timedelta(seconds=30)),
        (90, NOW + timedelta(seconds=90)),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=1)),
        (NOW - timedelta(hours=1), NOW),
    ],
)
def test_retry_after_error_sets_the_next_attempt_time(
    delay: timedelta | float | datetime, expected: datetime
) -> None:
    error = errors.RetryAfterError("429", delay=delay)
    assert next_attempt_at(error, 0, 5, NOW, POLICY, lambda: 0.99) == expected


def test_describe_keeps_type_message_and_traceback_as_text() -> None:
    try:
        raise KeyError("region-7")
    except KeyError as exc:
        described = describe(exc)
    assert described["name"] == "KeyError"
    assert described["message"] == "'region-7'"
    assert 'raise KeyError("region-7")' in described["traceback"]

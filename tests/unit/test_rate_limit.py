"""The intake rate limit per event key: a burst, then one request per 1/rate seconds, 429's
Retry-After rounded up to whole seconds, each key on its own, and the limit's text form."""

from __future__ import annotations

import pytest

from stepline import errors
from stepline.server.rate_limit import IntakeLimit, KeyBuckets, RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_then_the_rate_and_others_are_not_affected() -> None:
    clock = Clock()
    buckets = KeyBuckets(IntakeLimit(rate=2.0, burst=3), clock=clock)
    for _ in range(3):
        buckets.take("ci-runner", "ci-runner")
    with pytest.raises(RateLimited) as refused:
        buckets.take("ci-runner", "ci-runner")
    assert refused.value.retry_after == 1
    assert "event key 'ci-runner' is over its rate limit" in str(refused.value)
    buckets.take("shop", "shop")  # another key has its own bucket
    clock.now = 0.5  # one token back at 2 a second
    buckets.take("ci-runner", "ci-runner")
    with pytest.raises(RateLimited):
        buckets.take("ci-runner", "ci-runner")
    clock.now = 100.0  # refills up to the burst, no more
    for _ in range(3):
        buckets.take("ci-runner", "ci-runner")
    with pytest.raises(RateLimited):
        buckets.take("ci-runner", "ci-runner")


def test_a_slow_rate_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = KeyBuckets(IntakeLimit(rate=1 / 60, burst=1), clock=clock)
    buckets.take("nightly", "nightly")
    clock.now = 15.0
    with pytest.raises(RateLimited) as refused:
        buckets.take("nightly", "nightly")
    assert refused.value.retry_after == 45


def test_only_the_most_recent_keys_are_remembered() -> None:
    clock = Clock()
    buckets = KeyBuckets(IntakeLimit(rate=1.0, burst=1), max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        buckets.take(key, key)
    buckets.take("a", "a")  # forgotten: a full bucket again
    with pytest.raises(RateLimited):
        buckets.take("c", "c")


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [("50/s", 50.0, 50), ("600/m", 10.0, 10), ("50/s,burst=200", 50.0, 200), ("1/h", 1 / 3600, 1)],
)
def test_the_limit_reads_as_requests_per_unit(text: str, rate: float, burst: int) -> None:
    assert IntakeLimit.parse(text) == IntakeLimit(rate=rate, burst=burst)


@pytest.mark.parametrize("text", ["50", "50/d", "x/s", "0/s", "-1/s", "5/s,burst=0", "5/s,burst=x"])
def test_a_bad_limit_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        IntakeLimit.parse(text)
    assert refused.value.field == "intake_rate_limit"

"""Event intake's rate limit per event key: a token bucket each, 429 with `Retry-After` beyond.

Each key may send `rate` requests a second on average and `burst` at once; a request that
finds its key's bucket empty is refused with `RateLimited` (429) and the seconds until a
token is back, and stores nothing. Buckets live in the server process (several servers each
allow the rate); at most `MAX_KEYS` are remembered, the least recently used forgotten first
(a forgotten key starts again with a full bucket).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from stepline import errors

MAX_KEYS = 10_000


class RateLimited(errors.SteplineError):
    """The event key sent more requests than its rate allows; retry after `retry_after` s."""

    def __init__(self, key_name: str, retry_after: int) -> None:
        super().__init__(
            f"event key {key_name!r} is over its rate limit; try again in {retry_after} s"
        )
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class IntakeLimit:
    """`rate` requests a second per event key on average, `burst` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise errors.InvalidInput("must be a positive number of requests a second", "rate")
        if self.burst < 1:
            raise errors.InvalidInput("must be at least 1", "burst")

    @classmethod
    def parse(cls, text: str) -> IntakeLimit:
        """`"50/s"`, `"600/m"` or `"50/s,burst=200"` (the burst defaults to one second's worth)."""
        rate_text, _, burst_text = text.replace(" ", "").partition(",burst=")
        count, _, unit = rate_text.partition("/")
        seconds = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(unit)
        try:
            rate = float(count) / seconds if seconds else math.nan
            burst = int(burst_text) if burst_text else max(1, math.ceil(rate))
        except ValueError:
            rate, burst = math.nan, 1
        if not (rate > 0 and math.isfinite(rate)) or burst < 1:
            raise errors.InvalidInput(
                f"{text!r} is not a rate: give N/s, N/m or N/h (N > 0), optionally ',burst=N'",
                "intake_rate_limit",
            )
        return cls(rate=rate, burst=burst)


def key_bucket(key: str) -> str:
    """The bucket of an event key: its SHA-256, so the buckets hold no secret."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyBuckets:
    """A token bucket per event key (thread-safe)."""

    def __init__(
        self,
        limit: IntakeLimit,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, bucket: str, key_name: str) -> None:
        """Take a token from `bucket` for one request of the key named `key_name`.

        Raises:
            RateLimited: The bucket is empty (nothing was taken).
        """
        now = self._clock()
        rate, burst = self._limit.rate, self._limit.burst
        with self._lock:
            tokens, at = self._buckets.pop(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._remember(bucket, tokens, now)
                raise RateLimited(key_name, max(1, math.ceil((1.0 - tokens) / rate)))
            self._remember(bucket, tokens - 1.0, now)

    def _remember(self, bucket: str, tokens: float, now: float) -> None:
        self._buckets[bucket] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

"""Slow down token guessing: per client address, a few failures, then 429 for a while.

After `MAX_FAILURES` wrong API tokens (bearer header, sign-in form or cookie) from one address
within `WINDOW_SECONDS`, that address gets 429 with `Retry-After` for every credential it
presents, right or wrong, until its oldest failure in the window is older than the window.
Right tokens are not counted, and requests without one are not affected. Memory is bounded: at most
`MAX_ADDRESSES` addresses are remembered, the least recently failing forgotten first. IPv6
clients are counted per /64 network (one host usually holds a whole one).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.requests import Request

from stepline import errors

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


class TooManyFailures(errors.SteplineError):
    """Too many wrong credentials from this address; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong tokens from your address; try again in {retry_after} s")
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    """Who is guessing: the client's IP address (IPv6: its /64 network)."""
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class FailureLimiter:
    """Counts failed credentials per client address in a sliding window (thread-safe)."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._capacity = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise `TooManyFailures` while `address` has used up its failures."""
        with self._lock:
            recent = self._recent(address)
            if recent is not None and len(recent) >= self._max:
                wait = recent[0] + self._window - self._clock()
                raise TooManyFailures(max(1, math.ceil(wait)))

    def failed(self, address: str) -> None:
        """Count a wrong credential from `address`."""
        with self._lock:
            recent = self._recent(address)
            if recent is None:
                recent = self._failures[address] = deque(maxlen=self._max)
                while len(self._failures) > self._capacity:
                    self._failures.popitem(last=False)
            recent.append(self._clock())
            self._failures.move_to_end(address)

    def _recent(self, address: str) -> deque[float] | None:
        """`address`'s failures within the window (None when there are none)."""
        recent = self._failures.get(address)
        if recent is None:
            return None
        horizon = self._clock() - self._window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._failures[address]
            return None
        return recent

"""What one process's store saw, kept in memory for its metrics: errors, outages, runs it ended.

Nothing here is written to the database, and the hot path pays one attribute check per
transaction (`succeeded`). An outage is timed from the first `StoreUnavailable` to the next
transaction that succeeds. Runs ended by this process's cancels and timeouts are counted here
(a worker counts the runs it finishes itself), each once, by the process that ended it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from stepline import errors


class StoreTally:
    """Counts kept by a store for this process (thread-safe).

    Args:
        clock: Seconds from a monotonic clock (outages are measured with it).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._errors = 0
        self._down_since: float | None = None
        self._outage = 0.0
        self._ended: Counter[tuple[str, str]] = Counter()

    def failed(self, error: errors.StoreError) -> None:
        """A transaction failed with `error`; an unavailable database starts an outage.

        A `Conflict` (a constraint doing its job: a duplicate event id, a busy singleton) is
        not an error of the store and is not counted.
        """
        if isinstance(error, errors.Conflict):
            return
        with self._lock:
            self._errors += 1
            if isinstance(error, errors.StoreUnavailable) and self._down_since is None:
                self._down_since = self._clock()

    def succeeded(self) -> None:
        """A transaction succeeded: an outage in progress ends now."""
        if self._down_since is None:  # the hot path: nothing more
            return
        with self._lock:
            if self._down_since is not None:
                self._outage += self._clock() - self._down_since
                self._down_since = None

    def ended(self, runs: Iterable[tuple[str, str]]) -> None:
        """Count runs this process ended by cancel or timeout, as (function id, status)."""
        with self._lock:
            self._ended.update(runs)

    @property
    def errors(self) -> int:
        """Transactions that failed (not counting conflicts)."""
        return self._errors

    @property
    def outage_seconds(self) -> float:
        """Seconds the database was unavailable to this process, the outage in progress included."""
        with self._lock:
            since = self._down_since
            return self._outage + (0.0 if since is None else self._clock() - since)

    def runs_ended(self) -> dict[tuple[str, str], int]:
        """Runs ended by this process's cancels and timeouts, by (function id, status)."""
        with self._lock:
            return dict(self._ended)

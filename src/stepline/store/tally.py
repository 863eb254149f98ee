"""What one process's store saw, kept in memory for its metrics.

Errors, outages, the runs it ended, and the write transactions and SQL statements it ran.

Nothing here is written to the database, and the hot path pays one uncontended lock per
transaction (`succeeded`). An outage is timed from the first `StoreUnavailable` to the next
transaction that succeeds. Runs ended by this process's cancels and timeouts are counted here
(a worker counts the runs it finishes itself), each once, by the process that ended it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from stepline import errors

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


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
        self._transactions = 0
        self._statements = 0

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

    def succeeded(self, statements: int = 0, *, wrote: bool = True) -> None:
        """A transaction of `statements` succeeded (a read if not `wrote`).

        An outage in progress ends now.
        """
        with self._lock:
            self._statements += statements
            self._transactions += wrote
            if self._down_since is not None:
                self._outage += self._clock() - self._down_since
                self._down_since = None

    def ran(self, statements: int) -> None:
        """`statements` ran outside the transactions counted by `succeeded`."""
        with self._lock:
            self._statements += statements

    def ended(self, runs: Iterable[tuple[str, str]]) -> None:
        """Count runs this process ended by cancel or timeout, as (function id, status)."""
        with self._lock:
            self._ended.update(runs)

    @property
    def errors(self) -> int:
        """Transactions that failed (not counting conflicts)."""
        return self._errors

    @property
    def transactions(self) -> int:
        """Write transactions committed."""
        return self._transactions

    @property
    def statements(self) -> int:
        """SQL statements run (reads included; BEGIN, COMMIT and ROLLBACK not counted)."""
        return self._statements

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


def count_statements(engine: Engine, tally: StoreTally) -> None:
    """Count in `tally` the statements SQLAlchemy runs on `engine` (the raw path counts its own)."""

    @event.listens_for(engine, "after_cursor_execute")
    def _counted(
        _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool
    ) -> None:
        if not statement.startswith(_CONTROL):
            tally.ran(len(params) if many else 1)

"""Group commit: units of work from many threads committed together, in shared transactions.

Each caller hands `GroupCommit.run` a unit — a function of the open transaction — and gets
its result back only once the transaction that ran it has committed. A caller that finds no
transaction under way leads one at once: it begins a transaction, runs
its own unit and every unit queued by then, in queue order, and commits. Callers that arrive
meanwhile queue; when a leader is done it wakes them, handing the lead to the first one still
waiting, which takes the queue as it then is. Alone, a caller pays no hand-off; under load,
one BEGIN, one COMMIT (one WAL sync) and one lock hand-off serve many units.

A unit that raises — a lease lost, a conflict, a constraint the database refused — fails
alone: the transaction is rolled back and run again without it. An error of the database
itself (`StoreUnavailable`: disk full, connection lost, a failed COMMIT) fails every unit of
that transaction, as each would have failed on its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from stepline import errors
from stepline.store._prepared import RawTransaction

T = TypeVar("T")
Work = Callable[[RawTransaction], T]


class _Unit(Generic[T]):
    """One caller's work, its outcome, and the lock its caller waits on."""

    __slots__ = ("_done", "error", "lead", "result", "work")

    def __init__(self, work: Work[T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.lead = False  # woken to lead, not because it is done
        self._done = threading.Lock()
        self._done.acquire()

    def wait(self) -> None:
        self._done.acquire()

    def wake(self) -> None:
        self._done.release()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class _UnitFailed(Exception):
    """Raised inside the transaction to roll it back: `unit` failed with `cause`."""

    def __init__(self, unit: _Unit[Any], cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.unit = unit
        self.cause = cause


class GroupCommit:
    """Commits units of work from many threads in shared transactions (module docstring).

    Args:
        transaction: Opens one write transaction (commits on exit, rolls back on error;
            driver errors leave as `StoreError`s).
        unit_error: Maps an exception a unit raised to the error its caller sees (driver
            errors as `StoreError`s); a `StoreUnavailable` fails the whole transaction.
        retryable: Whether a driver error means "run the same transaction again" (a
            deadlock between two transactions, one of them this one): it is, up to `tries`
            times in all, before its units fail.
        max_units: Units in one transaction at most.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[RawTransaction]],
        unit_error: Callable[[BaseException], BaseException],
        *,
        retryable: Callable[[BaseException], bool] = lambda error: False,
        tries: int = 3,
        max_units: int = 64,
    ) -> None:
        self._transaction = transaction
        self._unit_error = unit_error
        self._retryable = retryable
        self._tries = tries
        self._max_units = max_units
        self._mutex = threading.Lock()
        self._queue: deque[_Unit[Any]] = deque()
        # One transaction under way at a time: SQLite has one writer anyway, and on PostgreSQL
        # a second cost a quarter more CPU per step for the same W1 (and its batches could
        # deadlock with the first's).
        self._leading = False

    def run(self, work: Work[T]) -> T:
        """Run `work(tx)` in a write transaction; its result once that transaction committed."""
        unit = _Unit(work)
        with self._mutex:
            queued = self._leading
            if queued:
                self._queue.append(unit)
            else:
                self._leading = True
        if queued:
            unit.wait()
            if not unit.lead:
                return unit.outcome()
        self._lead(unit)
        return unit.outcome()

    def _lead(self, own: _Unit[Any]) -> None:
        batch = [own]
        try:
            self._commit(batch)
        finally:
            with self._mutex:
                successor = self._queue.popleft() if self._queue else None
                if successor is None:
                    self._leading = False
                else:
                    successor.lead = True
            if successor is not None:
                successor.wake()
            for unit in batch[1:]:
                unit.wake()

    def _join(self, batch: list[_Unit[Any]]) -> None:
        """Add the units queued by now to `batch`.

        Called once the transaction began: units that arrived while it waited for the
        database's write lock join it too.
        """
        with self._mutex:
            while self._queue and len(batch) < self._max_units:
                batch.append(self._queue.popleft())

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        """Run the units in one transaction; a unit that raises is dropped and the rest rerun.

        `batch` (the leader's own unit) gains the units queued by the time it begins.
        """
        pending = batch
        joined = False
        tries = self._tries
        while pending:
            tries -= 1
            try:
                with self._transaction() as tx:
                    if not joined:
                        self._join(batch)
                        joined = True
                    for unit in pending:
                        try:
                            unit.result = unit.work(tx)
                        except Exception as exc:
                            raise _UnitFailed(unit, exc) from exc
                return
            except _UnitFailed as failed:
                if tries and self._retryable(failed.cause):
                    continue  # the same units again, in a new transaction
                error = self._unit_error(failed.cause)
                if isinstance(error, errors.StoreUnavailable):
                    _fail(pending, error)
                    return
                failed.unit.error = error
                pending = [unit for unit in pending if unit is not failed.unit]
            except Exception as exc:  # the transaction itself failed (BEGIN, COMMIT)
                if tries and self._retryable(exc.__cause__ or exc):
                    continue
                _fail(pending, exc)
                return
            except BaseException:  # (an interrupt): no unit may return as if committed
                _fail(pending, errors.StoreUnavailable("the transaction was interrupted"))
                raise


def _fail(units: list[_Unit[Any]], error: BaseException) -> None:
    """Fail every unit with `error` (each caller raises an instance of its own)."""
    for unit in units:
        unit.result = None
        unit.error = _copy(error)


def _copy(error: BaseException) -> BaseException:
    """A fresh `StoreError` like `error` (same type, message and cause), else `error`."""
    if not isinstance(error, errors.StoreError):
        return error
    try:
        copy = type(error)(*error.args)
    except TypeError:
        return error
    copy.__cause__ = error.__cause__
    return copy

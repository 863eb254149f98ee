"""The worker: claims due runs with a lease, runs them on its slots, and keeps leases alive.

A lease check that finds the lease of a run in flight gone cancels the run's `async` replay
outright; a `def` replay cannot be stopped, but sees `ctx.cancelled` set, and its slot counts
as held by an abandoned step until the step returns (see `abandonment`). Leases are checked at
each heartbeat, and at once for the runs the store reports ended by a cancel or timeout (in
this process; on PostgreSQL in any process). A worker whose slots are all held that way gives
up: it hands back its runs, deregisters and sets `exhausted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from stepline import errors
from stepline.engine import tracing
from stepline.engine.abandonment import Abandonment
from stepline.engine.clock import Clock, Wakeup
from stepline.engine.ending import Ending
from stepline.engine.events import new_id
from stepline.engine.executor import Executor
from stepline.engine.metrics import Metrics
from stepline.store.base import ClaimedRun, RunDelta, RunRecord, Store, WorkerRecord

logger = logging.getLogger("stepline.worker")


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How a worker claims and holds runs.

    Attributes:
        slots: Runs executed at once (threads for `def`, tasks for `async def`).
        lease_seconds: How long a claim lasts without a heartbeat; a dead worker's runs are
            reclaimed by others after at most this long.
        poll_seconds: Longest idle sleep; new work in this process wakes the worker at once.
    """

    slots: int = 8
    lease_seconds: float = 10.0
    poll_seconds: float = 0.5

    @property
    def heartbeat_seconds(self) -> float:
        """How often leases are extended and the worker's liveness is recorded."""
        return self.lease_seconds / 3


MAX_BACKOFF_SECONDS = 5.0


class RunObserver(Protocol):
    """Hears of the runs this worker starts and ends (`stepline dev` prints a line for each).

    Called on the worker's threads, after the store committed; it must return quickly. Parallel
    branches (part of their parent's run) are left out.
    """

    def started(self, claimed: ClaimedRun) -> None:
        """A run was claimed for the first time (not a resume after a sleep, retry or crash)."""

    def ended(self, run: RunRecord) -> None:
        """A run executing here ended: COMPLETED, FAILED, or CANCELLED (with its end time)."""


class _DaemonPool:
    """Threads for `def` replays that cannot keep the process alive.

    `concurrent.futures.ThreadPoolExecutor` joins its threads at interpreter exit, so a step
    still running when the grace period ends would hold a stopping worker open until it
    returned; its run has been handed to another worker by then, and the step is executed
    again there (at-least-once), so the process may exit under it.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run `fn(*args)` on a free thread; its future (cancelled once shut down)."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                future.cancel()
                return future
            self._work.put((future, fn, args))
            if self._threads < self._size:  # started as needed, like concurrent.futures
                self._threads += 1
                name = f"{self._name}_{self._threads}"
                threading.Thread(target=self._serve, name=name, daemon=True).start()
        return future

    def shutdown(self) -> None:
        """Cancel what has not started; running calls go on (nothing waits for them)."""
        with self._lock:
            self._closed = True
            pending = []
            while True:
                try:
                    pending.append(self._work.get_nowait())
                except queue.Empty:
                    break
            for _ in range(self._threads):
                self._work.put(None)  # each idle thread exits
        for future, _, _ in pending:
            future.cancel()

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the future's owner, as concurrent.futures does
                future.set_exception(exc)
            else:
                future.set_result(result)


class Worker:
    """Claims runs of its functions and executes them until stopped.

    Args:
        store: Where runs are claimed and committed.
        executor: Replays claimed runs.
        clock: Where time comes from.
        settings: Slots and leases.
        on_exhausted: Called (on the worker's heartbeat thread) once the worker gave up
            because all its slots are held by abandoned steps.
        observer: Hears of the runs started and ended here.
        metrics: Counts the runs started here and the ends committed here.

    Attributes:
        exhausted: Set once the worker gave up that way (it has stopped and deregistered).
    """

    def __init__(
        self,
        store: Store,
        executor: Executor,
        clock: Clock,
        settings: WorkerSettings,
        *,
        on_exhausted: Callable[[], None] | None = None,
        observer: RunObserver | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self._store = store
        self._executor = executor
        self._clock = clock
        self._settings = settings
        self._function_ids = sorted(executor.functions)  # SDK apps' too, from the first claim
        self._wakeup = Wakeup()
        self._stopping = threading.Event()  # claim nothing more
        self._drained = threading.Event()  # the grace period is over: stop heartbeating
        self._inflight: dict[str, ClaimedRun] = {}  # run id → its claim, while executing
        self._renewed: dict[str, ClaimedRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}  # run id → its `async` replay
        self._lost: dict[str, threading.Event] = {}  # run id → set once its lease is gone
        self._ending: set[str] = set()  # runs in flight reported ended: check their leases now
        self._check = threading.Event()  # wakes the heartbeat thread early
        self._abandonment = Abandonment()
        self._lock = threading.Lock()
        self._stopped = False
        self._on_exhausted = on_exhausted
        self._observer = observer
        self._metrics = metrics
        self.exhausted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = _DaemonPool(settings.slots, "stepline-run")
        self._loop = asyncio.new_event_loop()
        store.add_wakeup(self._wakeup.signal)
        store.add_end_listener(self._runs_ended)
        clock.on_advance(self._wakeup.signal)

    @property
    def inflight(self) -> int:
        """Runs being executed right now."""
        with self._lock:
            return len(self._inflight)

    @property
    def abandoned(self) -> int:
        """Slots held by abandoned steps (their runs ended or moved on; counted in `inflight`)."""
        with self._lock:
            return self._abandonment.abandoned

    def start(self) -> None:
        """Register and start claiming (returns at once; work happens on background threads)."""
        tracing.preload()
        now = self._clock.now()
        self._store.register_worker(
            WorkerRecord(
                id=self.id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                slots=self._settings.slots,
                inflight=0,
                functions=tuple(self._function_ids),
                started_at=now,
                heartbeat_at=now,
                heartbeat_seconds=self._settings.heartbeat_seconds,
            )
        )
        self._reported = time.monotonic()
        for target, name in (
            (self._claim_loop, "stepline-claim"),
            (self._heartbeat_loop, "stepline-heartbeat"),
            (self._loop.run_forever, "stepline-async"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop gracefully and deregister.

        Claims nothing more, lets running steps finish within the grace period (a replay
        starts no further step: it hands its run back to the queue), and gives the runs still
        executing after that back to the queue for other workers. Stopping twice is harmless.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        self._check.set()
        self._executor.draining.set()
        self._wakeup.signal()
        self._pool.shutdown()
        deadline = time.monotonic() + grace_seconds
        pause = threading.Event()
        while self.inflight and time.monotonic() < deadline:
            pause.wait(0.02)
        with self._lock:
            unfinished = list(self._inflight)
        # Until here the heartbeat kept renewing the leases of the steps still finishing: a step
        # longer than the lease must not be taken over (and executed again) during the grace.
        self._drained.set()
        self._check.set()
        try:
            if unfinished:
                released = self._store.release_runs(self.id, unfinished, self._clock.now())
                logger.info("released %d unfinished run(s) to other workers", released)
            self._store.deregister_worker(self.id)
        except errors.StoreError as exc:
            logger.warning("could not release runs or deregister (leases will expire): %s", exc)
        self._close_connections()
        self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=1)
        if not self._loop.is_running():
            self._loop.close()

    def _close_connections(self) -> None:
        """Close the HTTP driver's connections to SDK apps (they belong to this loop)."""
        http = self._executor.http
        if http is None or not self._loop.is_running():
            return
        closing = asyncio.run_coroutine_threadsafe(http.aclose(), self._loop)
        try:
            closing.result(timeout=2)
        except Exception as exc:  # a stuck close must not keep the worker from stopping
            logger.warning("could not close connections to SDK apps: %r", exc)

    def notify(self) -> None:
        """Tell the worker that work may be available."""
        self._wakeup.signal()

    def _runs_ended(self, run_ids: list[str]) -> None:
        """The store ended these runs (cancel, timeout): check at once those executing here."""
        with self._lock:
            found = [run_id for run_id in run_ids if run_id in self._inflight]
            self._ending.update(found)
        if found:
            self._check.set()

    def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                claimed = self._claim()
                self._report()
                failures = 0
            except errors.StoreError as exc:
                failures += 1
                backoff = min(MAX_BACKOFF_SECONDS, self._settings.poll_seconds * 2**failures)
                logger.warning("store unavailable (retrying in %.1fs): %s", backoff, exc)
                self._wakeup.wait(backoff)
                continue
            except Exception:
                logger.exception("claiming crashed, retrying")
                claimed = 0
            if claimed <= 0:
                self._wakeup.wait(self._idle_seconds())

    def _report(self) -> None:
        """Record liveness from the claim loop itself: a stale heartbeat means "not claiming"."""
        if time.monotonic() - self._reported < self._settings.heartbeat_seconds:
            return
        with self._lock:
            inflight, abandoned = len(self._inflight), self._abandonment.abandoned
        self._store.heartbeat_worker(self.id, self._clock.now(), inflight, abandoned=abandoned)
        self._reported = time.monotonic()

    def _claim(self) -> int:
        self._function_ids = self._executor.function_ids()  # SDK apps sync at any time
        free = self._settings.slots - self.inflight
        if free <= 0 or not self._function_ids:
            return 0
        now = self._clock.now()
        with self._lock:
            executing = list(self._inflight)
        runs = self._store.claim_runs(
            self.id, free, now, self._settings.lease_seconds, self._function_ids, executing
        )
        for claimed in runs:
            if _first_start(claimed, now):
                if self._metrics is not None:
                    self._metrics.run_started(claimed.run.function_id)
                if self._observer is not None:
                    self._observer.started(claimed)
            self._dispatch(claimed)
        return len(runs)

    def _idle_seconds(self) -> float:
        wait = self._settings.poll_seconds
        if self.inflight >= self._settings.slots or not self._function_ids:
            return wait
        try:
            # Only this worker's functions: work due for others must not make it poll.
            due = self._store.next_due_at(self._function_ids)
        except errors.StoreError:
            return wait
        if due is not None:
            wait = min(wait, (due - self._clock.now()).total_seconds())
        return max(wait, 0.001)

    def _dispatch(self, claimed: ClaimedRun) -> None:
        run_id = claimed.run.id
        with self._lock:
            if run_id in self._inflight:
                # Its lease lapsed before a heartbeat and this claim renewed it. A second
                # replay here would share the lease, so both could commit; `_finished` hands
                # the lease back instead, if the current replay has not let go of the run.
                self._renewed[run_id] = claimed
                return
            self._inflight[run_id] = claimed
            lost = self._lost[run_id] = threading.Event()
        future: Future[Ending | None]
        fn = self._executor.functions.get(claimed.run.function_id)
        if fn is None or fn.is_async:  # an SDK app's function runs on the loop as well
            coroutine = self._execute_async(claimed, lost)
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        else:
            future = self._pool.submit(self._executor.execute, claimed, lost)
        future.add_done_callback(lambda f: self._finished(run_id, f))

    async def _execute_async(self, claimed: ClaimedRun, lost: threading.Event) -> Ending | None:
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._tasks[claimed.run.id] = task
        return await self._executor.execute_async(claimed, lost)

    def _finished(self, run_id: str, future: Future[Ending | None]) -> None:
        with self._lock:
            claimed = self._inflight.pop(run_id, None)
            renewed = self._renewed.pop(run_id, None)
            self._tasks.pop(run_id, None)
            self._lost.pop(run_id, None)
            lost = self._abandonment.forget(run_id)
        ending: Ending | None = None
        if future.cancelled():
            if not lost:
                # Never started (the pool shut down first): give it back now, not at expiry.
                renewed = renewed or claimed
        elif (exc := future.exception()) is not None:
            logger.error("run %s: replay crashed: %r", run_id, exc, exc_info=exc)
        else:
            ending = future.result()
        if renewed is not None:
            self._release(renewed)
        self._wakeup.signal()
        if claimed is not None and (ending is not None or (lost and future.cancelled())):
            self._tell_end(claimed, ending)

    def _tell_end(self, claimed: ClaimedRun, ending: Ending | None) -> None:
        """Tell the observer (and metrics) how a run ended here; say why a lost run left.

        Metrics count only the ends committed here: a run cancelled or timed out under its
        replay was counted by the process that ended it. Learning why takes one read.
        """
        run = claimed.run
        branch = run.trigger_kind == "parallel"
        shown = self._observer is not None and not branch
        if ending is not None and ending.status is not None:
            at = self._clock.now()
            if self._metrics is not None and not branch:
                took = None if run.started_at is None else (at - run.started_at).total_seconds()
                self._metrics.run_ended(run.function_id, ending.status, took)
            if shown and self._observer is not None:
                status, error = ending.status, ending.error
                self._observer.ended(replace(run, status=status, error=error, ended_at=at))
            return
        try:
            now = self._store.get_run(run.id)
        except errors.SteplineError as exc:
            logger.info("run %s: left to its new owner (%s)", run.id, exc)
            return
        if not now.ended:
            logger.info("run %s: lease lost; another worker took it over", run.id)
            return
        logger.info("run %s: %s; its replay stopped", run.id, _why_ended(now))
        if shown and self._observer is not None:
            self._observer.ended(now)

    def _release(self, claimed: ClaimedRun) -> None:
        """Hand back a claim made while the run was executing here; it is claimed afresh."""
        now = self._clock.now()
        try:
            self._store.park_run(claimed.lease, now, RunDelta(), now, detail=None)
        except errors.LeaseLost:
            pass  # the replay ended or parked the run after that claim: nothing is held
        except errors.StoreError as exc:
            logger.warning("run %s: could not release its lease: %s", claimed.run.id, exc)

    def _heartbeat_loop(self) -> None:
        due = time.monotonic() + self._settings.heartbeat_seconds
        while True:
            self._check.wait(max(0.0, due - time.monotonic()))
            self._check.clear()
            if self._drained.is_set():
                return
            if time.monotonic() < due:  # woken early: runs in flight here were ended
                try:
                    self._check_ended()
                except errors.StoreError as exc:
                    logger.warning("lease check failed (the heartbeat checks again): %s", exc)
                continue
            try:
                self._heartbeat()
            except errors.StoreError as exc:
                logger.warning("heartbeat failed: %s", exc)
                continue
            finally:
                due = time.monotonic() + self._settings.heartbeat_seconds
            if self.abandoned >= self._settings.slots:
                self._give_up()
                return

    def _heartbeat(self) -> None:
        """Extend the leases of the runs in flight; note the lost ones, cancel lost tasks."""
        with self._lock:
            held = dict(self._inflight)
            self._ending.clear()  # checked with the others
        self._check_leases(held, heartbeat=True)

    def _check_ended(self) -> None:
        """Check the leases of the runs reported ended (extending them if still held)."""
        with self._lock:
            held = {
                run_id: self._inflight[run_id]
                for run_id in self._ending
                if run_id in self._inflight
            }
            self._ending.clear()
        if held:
            self._check_leases(held, heartbeat=False)

    def _check_leases(self, held: dict[str, ClaimedRun], *, heartbeat: bool) -> None:
        """Extend the leases of `held`; flag the lost runs' replays and cancel their tasks.

        A heartbeat (which checks every run in flight) cancels every lost task again, until
        it has ended; a check between heartbeats acts on the runs it found lost.
        """
        gone: set[str] = set()
        if held:
            until = self._clock.now() + timedelta(seconds=self._settings.lease_seconds)
            steps = self._executor.steps_in_flight(list(held)) if heartbeat else None
            gone = self._store.extend_leases(self.id, list(held), until, steps)
        with self._lock:
            before = self._abandonment.abandoned_runs
            fresh = self._abandonment.update(held, gone, self._inflight, heartbeat=heartbeat)
            stuck = self._abandonment.abandoned_runs - before
            lost = self._abandonment.lost if heartbeat else fresh
            for run_id in lost:  # the replay starts no further step; `ctx.cancelled` is set
                self._lost[run_id].set()
            tasks = [self._tasks[run_id] for run_id in lost if run_id in self._tasks]
        for run_id in fresh:  # said once the replay stopped, with the reason (`_tell_end`)
            logger.debug("run %s: lease lost (cancelled, timed out or reclaimed)", run_id)
        for run_id in stuck:
            logger.warning(
                "run %s: lease lost (cancelled, timed out or reclaimed) but its step is still "
                "executing; its slot stays held until the step returns",
                run_id,
            )
        for task in tasks:  # again at each heartbeat, until the task has ended
            with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped
                self._loop.call_soon_threadsafe(task.cancel)

    def _give_up(self) -> None:
        """All slots are held by abandoned steps: hand back the runs, deregister, report it."""
        logger.error(
            "all %d slot(s) are held by abandoned steps (runs cancelled, timed out or taken "
            "over while a step was still executing); stopping this worker",
            self._settings.slots,
        )
        self.stop(grace_seconds=0)
        self.exhausted.set()
        if self._on_exhausted is not None:
            self._on_exhausted()


def _first_start(claimed: ClaimedRun, claimed_at: datetime) -> bool:
    """The claim at `claimed_at` started the run (its first; parallel branches left out)."""
    started = claimed.run.started_at
    if started is None or claimed.run.trigger_kind == "parallel":
        return False
    return abs((started - claimed_at).total_seconds()) < 0.001


def _why_ended(run: RunRecord) -> str:
    """How a run ended from outside: "cancelled by request", "failed (timed out after 5m)"."""
    status = run.status.lower()
    reason = run.reason or _error_message(run.error)
    if not reason:
        return status
    return reason if reason.lower().startswith(status) else f"{status} ({reason})"


def _error_message(error: str | None) -> str | None:
    if not error:
        return None
    try:
        message = json.loads(error).get("message")
    except (ValueError, AttributeError):
        return error
    return str(message) if message else None

"""The worker: claims due runs with a lease, runs them on its slots, and keeps leases alive."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from stepline import errors
from stepline.engine.clock import Clock, Wakeup
from stepline.engine.events import new_id
from stepline.engine.executor import Executor
from stepline.store.base import ClaimedRun, RunDelta, Store

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


class Worker:
    """Claims runs of its functions and executes them until stopped."""

    def __init__(
        self, store: Store, executor: Executor, clock: Clock, settings: WorkerSettings
    ) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self._store = store
        self._executor = executor
        self._clock = clock
        self._settings = settings
        self._function_ids = sorted(executor.functions)
        self._wakeup = Wakeup()
        self._stopping = threading.Event()
        self._inflight: set[str] = set()
        self._renewed: dict[str, ClaimedRun] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(settings.slots, thread_name_prefix="stepline-run")
        self._loop = asyncio.new_event_loop()
        store.add_wakeup(self._wakeup.signal)
        clock.on_advance(self._wakeup.signal)

    @property
    def inflight(self) -> int:
        """Runs being executed right now."""
        with self._lock:
            return len(self._inflight)

    def start(self) -> None:
        """Start claiming (returns at once; work happens on background threads)."""
        for target, name in (
            (self._claim_loop, "stepline-claim"),
            (self._heartbeat_loop, "stepline-heartbeat"),
            (self._loop.run_forever, "stepline-async"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming, let running replays finish within the grace period, then return."""
        self._stopping.set()
        self._wakeup.signal()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = threading.Event()
        waited = 0.0
        while self.inflight and waited < grace_seconds:
            deadline.wait(0.05)
            waited += 0.05
        self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=1)
        if not self._loop.is_running():
            self._loop.close()

    def notify(self) -> None:
        """Tell the worker that work may be available."""
        self._wakeup.signal()

    def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self._claim()
            except errors.StoreError as exc:
                logger.warning("claiming failed, retrying: %s", exc)
                claimed = -1
            except Exception:
                logger.exception("claiming crashed, retrying")
                claimed = -1
            if claimed <= 0:
                self._wakeup.wait(self._idle_seconds())

    def _claim(self) -> int:
        free = self._settings.slots - self.inflight
        if free <= 0 or not self._function_ids:
            return 0
        runs = self._store.claim_runs(
            self.id,
            free,
            self._clock.now(),
            self._settings.lease_seconds,
            self._function_ids,
        )
        for claimed in runs:
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
            self._inflight.add(run_id)
        future: Future[None]
        if self._executor.functions[claimed.run.function_id].is_async:
            future = asyncio.run_coroutine_threadsafe(
                self._executor.execute_async(claimed), self._loop
            )
        else:
            future = self._pool.submit(self._executor.execute, claimed)
        future.add_done_callback(lambda f: self._finished(run_id, f))

    def _finished(self, run_id: str, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(run_id)
            renewed = self._renewed.pop(run_id, None)
        if not future.cancelled() and (exc := future.exception()) is not None:
            logger.error("run %s: replay crashed: %r", run_id, exc, exc_info=exc)
        if renewed is not None:
            self._release(renewed)
        self._wakeup.signal()

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
        interval = self._settings.lease_seconds / 3
        while not self._stopping.wait(interval):
            with self._lock:
                held = list(self._inflight)
            if not held:
                continue
            until = self._clock.now() + timedelta(seconds=self._settings.lease_seconds)
            try:
                lost = self._store.extend_leases(self.id, held, until)
            except errors.StoreError as exc:
                logger.warning("heartbeat failed: %s", exc)
                continue
            for run_id in lost:
                logger.info("run %s: lease lost (cancelled or reclaimed)", run_id)

"""Helpers for engine tests: poll store state in real time, move the fake clock on purpose."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.store.base import RunRecord

T = TypeVar("T")
DEADLINE_SECONDS = 10.0
PARKED = ("RETRYING", "SLEEPING", "WAITING")


def eventually(
    probe: Callable[[], T | None], *, what: str, timeout_seconds: float = DEADLINE_SECONDS
) -> T:
    """Poll `probe` (real time) until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_seconds
    pause = threading.Event()
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_seconds:g}s waiting for {what}")
        pause.wait(0.01)


def settle(engine: Engine, seconds: float = 0.3) -> None:
    """Give the engine's loops a moment of real time, then wait for its slots to drain."""
    threading.Event().wait(seconds)
    eventually(lambda: engine.worker.inflight == 0, what="the worker to go idle")


def only_run(engine: Engine, event_id: str) -> RunRecord:
    """The single run an event started (its parallel branches, which share the event, aside).

    A fast worker may have planned the run's branches by the time the event's runs are read.
    """
    runs = [r for r in engine.operations.runs_for_event(event_id) if r.trigger_kind != "parallel"]
    assert len(runs) == 1, runs
    return runs[0]


def start(engine: Engine, name: str, data: dict[str, object] | None = None) -> str:
    """Send one event and return the id of the one run it started."""
    [event_id] = engine.send({"name": name, "data": data or {}})
    return only_run(engine, event_id).id


def parked(engine: Engine, run_id: str, detail: str | None = None) -> RunRecord:
    """Wait until the run is parked (RUNNING with a detail such as SLEEPING) and idle."""

    def probe() -> RunRecord | None:
        run = engine.store.get_run(run_id)
        if run.ended:
            raise AssertionError(f"run {run_id} ended ({run.status}: {run.error}) instead")
        is_parked = run.status == "RUNNING" and run.detail in PARKED
        if is_parked and (detail is None or run.detail == detail) and not engine.worker.inflight:
            return run
        return None

    return eventually(probe, what=f"run {run_id} to park ({detail or 'any'})")


def drive(engine: Engine, clock: FakeClock, run_id: str, *, max_wakes: int = 50) -> RunRecord:
    """Advance the fake clock to each wake-up of a parked run until the run ends."""
    for _ in range(max_wakes):
        run, due = eventually(
            lambda: _ended_or_waiting(engine, clock, run_id), what=f"run {run_id} to move on"
        )
        if run.ended:
            return run
        assert due is not None
        clock.set(due)  # the wake-up seen with the parked run, not read again (a race)
    raise AssertionError(f"run {run_id} did not end after {max_wakes} wake-ups")


def _ended_or_waiting(
    engine: Engine, clock: FakeClock, run_id: str
) -> tuple[RunRecord, datetime | None] | None:
    run = engine.store.get_run(run_id)
    if run.ended:
        return run, None
    due = engine.store.next_due_at()
    idle = run.detail in PARKED and engine.worker.inflight == 0
    if idle and due is not None and due > clock.now():
        return run, due
    return None


def still(engine: Engine, run_id: str, detail: str, seconds: float = 0.3) -> RunRecord:
    """Assert the run stays parked with `detail` over a short real-time interval."""
    settle(engine, seconds)
    run = engine.store.get_run(run_id)
    assert (run.status, run.detail) == ("RUNNING", detail), run
    return run


def after(seconds: float) -> timedelta:
    """A timedelta of `seconds`, for readable clock moves."""
    return timedelta(seconds=seconds)

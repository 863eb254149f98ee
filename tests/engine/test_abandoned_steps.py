"""Steps that outlive their run: a `def` step still executing after its run was cancelled holds
its slot as an *abandoned* step, which the worker reports (and counts against its health) while
its other slots keep working; an in-process engine whose slots are all held that way starts a
fresh worker; an `async` step is cancelled outright and frees its slot at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import stepline
from stepline.engine import views
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.worker import Worker, WorkerSettings
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import Store
from tests.conftest import FAST_SETTINGS
from tests.engine.support import eventually, start

# Heartbeats every 0.2 s of real time; leases never expire, since the fake clock stands still.
FAST_HEARTBEAT = WorkerSettings(slots=2, lease_seconds=0.6, poll_seconds=0.05)


class Gates:
    """What the test app's steps wait on; `release` is set when the test ends, whatever happens.

    Then the test's workers are drained, so no stuck step returns into a closed store.
    """

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.async_cancelled = threading.Event()
        self.cleaned = threading.Event()


@pytest.fixture
def gates() -> Iterator[Gates]:
    found = Gates()
    yield found
    found.release.set()
    eventually(
        lambda: all(w.inflight == 0 for w in found.workers), what="the released steps to return"
    )


def stuck_app(gates: Gates) -> stepline.App:
    app = stepline.App("abandoned")

    def block() -> str:
        gates.entered.release()
        gates.release.wait()
        return "too late"

    async def block_async() -> str:
        gates.entered.release()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            gates.async_cancelled.set()
            raise
        return "never"

    @app.function(id="stuck", triggers=[stepline.event("abandoned/stuck")])
    def stuck(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("block", block)

    @app.function(id="stuck-async", triggers=[stepline.event("abandoned/stuck-async")])
    async def stuck_async(ctx: stepline.Context[AsyncStep]) -> str:
        try:
            return await ctx.step.run("block", block_async)
        finally:  # reached with the cancellation: the run has ended, so no step may start
            await ctx.step.run("cleanup", gates.cleaned.set)

    @app.function(id="stuck-timeout", triggers=[stepline.event("abandoned/timeout")], timeout="3s")
    def stuck_timeout(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("block", block)

    @app.function(id="quick", triggers=[stepline.event("abandoned/quick")])
    def quick(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("hello", lambda: "hi")

    return app


def engine_with(make_engine: Callable[..., Engine], gates: Gates, slots: int) -> Engine:
    settings = replace(FAST_SETTINGS, worker=replace(FAST_HEARTBEAT, slots=slots))
    engine = make_engine(stuck_app(gates), settings=settings)
    gates.workers.append(engine.worker)
    return engine


def worker_row(engine: Engine, worker_id: str) -> dict[str, Any] | None:
    """The worker as `GET /v1/workers` shows it (None until registered)."""
    now = engine.clock.now()  # heartbeats are stamped with the fake clock
    found = [views.worker_view(w, now) for w in engine.store.list_workers() if w.id == worker_id]
    return found[0] if found else None


def entered(gates: Gates) -> None:
    assert gates.entered.acquire(timeout=10), "a step did not start"


def test_a_cancelled_stuck_step_is_reported_and_the_other_slots_keep_working(
    make_engine: Callable[..., Engine], store: Store, gates: Gates
) -> None:
    engine = engine_with(make_engine, gates, slots=2)
    worker_id = engine.worker.id
    stuck = start(engine, "abandoned/stuck")
    entered(gates)

    engine.cancel(stuck)

    shown = eventually(
        lambda: (row := worker_row(engine, worker_id)) and row["abandoned"] == 1 and row,
        what="the worker to report 1 abandoned slot",
    )
    assert shown["alive"] is True and shown["healthy"] is False, shown
    assert shown["inflight"] == 1 and engine.worker.abandoned == 1
    for _ in range(3):  # the free slot still runs other runs, one after the other
        quick = start(engine, "abandoned/quick")
        assert engine.wait_for_run(quick, 10).status == "COMPLETED"
    assert engine.worker.id == worker_id and not engine.worker.exhausted.is_set()

    gates.release.set()  # the step returns at last: its slot is free, its result is dropped
    healthy = eventually(
        lambda: (row := worker_row(engine, worker_id)) and row["abandoned"] == 0 and row,
        what="the worker to report no abandoned slot",
    )
    assert healthy["healthy"] is True
    assert engine.get_run(stuck).run.status == "CANCELLED"
    assert [step.id for step in engine.get_run(stuck).steps] == []


def test_a_run_timing_out_in_a_stuck_step_leaves_an_abandoned_slot(
    make_engine: Callable[..., Engine], clock: FakeClock, gates: Gates
) -> None:
    engine = engine_with(make_engine, gates, slots=2)
    stuck = start(engine, "abandoned/timeout")
    entered(gates)

    clock.advance(3)

    assert engine.wait_for_run(stuck, 10).status == "FAILED"
    eventually(
        lambda: (row := worker_row(engine, engine.worker.id)) and row["abandoned"] == 1,
        what="the worker to report 1 abandoned slot",
    )
    quick = start(engine, "abandoned/quick")
    assert engine.wait_for_run(quick, 10).status == "COMPLETED"


def test_an_engine_whose_slots_are_all_abandoned_starts_a_fresh_worker(
    make_engine: Callable[..., Engine], store: Store, gates: Gates
) -> None:
    engine = engine_with(make_engine, gates, slots=1)
    first = engine.worker
    stuck = start(engine, "abandoned/stuck")
    entered(gates)
    waiting = start(engine, "abandoned/quick")  # no free slot: it stays queued

    engine.cancel(stuck)

    assert engine.wait_for_run(waiting, 15).status == "COMPLETED"
    assert first.exhausted.is_set() and engine.worker is not first
    assert [w.id for w in store.list_workers()] == [engine.worker.id]


def test_an_async_step_is_cancelled_outright_and_frees_its_slot(
    make_engine: Callable[..., Engine], store: Store, gates: Gates
) -> None:
    engine = engine_with(make_engine, gates, slots=1)
    stuck = start(engine, "abandoned/stuck-async")
    entered(gates)

    engine.cancel(stuck)

    assert gates.async_cancelled.wait(10), "the async step was not cancelled"
    eventually(lambda: engine.worker.inflight == 0, what="the slot to be free")
    quick = start(engine, "abandoned/quick")
    assert engine.wait_for_run(quick, 10).status == "COMPLETED"
    assert engine.worker.abandoned == 0
    row = worker_row(engine, engine.worker.id)
    assert row is not None and row["abandoned"] == 0 and row["healthy"] is True
    detail = engine.get_run(stuck)
    assert detail.run.status == "CANCELLED" and detail.steps == []
    assert not gates.cleaned.is_set(), "a step started after the run was cancelled"

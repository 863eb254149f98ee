"""`timeouts=Timeouts(start=...)`: a run no worker starts within `start` (its concurrency limit
held by another run, or the worker's only slot busy) is CANCELLED at the scheduler's next pass
after the deadline, saying why. A run that started in time is not affected by it; its
`finish` timeout still applies."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.worker import WorkerSettings
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import CANCELLED_EVENT
from tests.conftest import FAST_SETTINGS
from tests.engine.support import after, eventually, parked, settle, start, still


def settings(slots: int) -> EngineSettings:
    """No scheduler thread (the test makes each pass), and leases that outlast clock moves."""
    worker = WorkerSettings(slots=slots, lease_seconds=3600.0, poll_seconds=0.05)
    return dataclasses.replace(FAST_SETTINGS, worker=worker, scheduler=False)


@dataclass
class Gate:
    """Steps that block until the test opens the gate."""

    calls: Counter[str] = field(default_factory=Counter)
    entered: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def block(self, who: str) -> str:
        self.calls[who] += 1
        self.entered.set()
        self.opened.wait(10)
        return who


def sync_app(gate: Gate) -> stepline.App:
    app = stepline.App("flow")

    @app.function(
        id="report",
        triggers=[stepline.event("report/requested")],
        concurrency=1,
        timeouts=stepline.Timeouts(start="1m"),
    )
    def report(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("build", gate.block, "report")

    @app.function(id="hog", triggers=[stepline.event("hog/requested")])
    def hog(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("hold", gate.block, "hog")

    @app.function(
        id="bounded",
        triggers=[stepline.event("bounded/requested")],
        timeouts=stepline.Timeouts(start="1m", finish="10m"),
    )
    def bounded(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")
        gate.calls["after"] += 1

    return app


def async_app(gate: Gate) -> stepline.App:
    app = stepline.App("flow")

    @app.function(
        id="report",
        triggers=[stepline.event("report/requested")],
        concurrency=1,
        timeouts=stepline.Timeouts(start="1m"),
    )
    async def report(ctx: stepline.Context[AsyncStep]) -> str:
        return await ctx.step.run("build", asyncio.to_thread, gate.block, "report")

    @app.function(id="hog", triggers=[stepline.event("hog/requested")])
    async def hog(ctx: stepline.Context[AsyncStep]) -> str:
        return await ctx.step.run("hold", asyncio.to_thread, gate.block, "hog")

    @app.function(
        id="bounded",
        triggers=[stepline.event("bounded/requested")],
        timeouts=stepline.Timeouts(start="1m", finish="10m"),
    )
    async def bounded(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1h")
        gate.calls["after"] += 1

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
# What keeps the report from starting: another report holding its concurrency limit of 1,
# or another function's run holding the worker's only slot.
HOLDERS = pytest.mark.parametrize(
    ("holder", "slots"),
    [("report/requested", 8), ("hog/requested", 1)],
    ids=["concurrency-limit", "only-slot"],
)


@BUILDERS
@HOLDERS
def test_run_not_started_within_its_start_timeout_is_cancelled_by_the_scheduler(
    build: Callable[[Gate], stepline.App],
    holder: str,
    slots: int,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    gate = Gate()
    engine = make_engine(build(gate), settings=settings(slots))
    holding = start(engine, holder)
    eventually(gate.entered.is_set, what="the first run to take the slot")
    queued = start(engine, "report/requested")
    clock.advance(after(59))
    engine.scheduler.tick()
    assert engine.store.get_run(queued).status == "QUEUED", "cancelled before its deadline"
    clock.advance(after(1))

    engine.scheduler.tick()

    run = engine.store.get_run(queued)
    assert (run.status, run.started_at, run.cancelled_by) == ("CANCELLED", None, None)
    assert run.reason == "did not start within 60s (timeouts.start)"
    assert run.ended_at == clock.now()
    [announced] = engine.operations.events_page(CANCELLED_EVENT, 10, None)[0]
    assert (announced.id, json.loads(announced.data)["reason"]) == (queued, run.reason)
    gate.opened.set()
    assert engine.wait_for_run(holding, 10).status == "COMPLETED", "the run in time is unaffected"
    settle(engine)
    assert gate.calls == Counter({holder.split("/")[0]: 1}), "the cancelled run never started"
    assert engine.store.get_run(queued).status == "CANCELLED"


@BUILDERS
def test_run_started_in_time_is_not_cancelled_and_its_finish_timeout_still_applies(
    build: Callable[[Gate], stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    gate = Gate()
    engine = make_engine(build(gate), settings=settings(8))
    run_id = start(engine, "bounded/requested")
    parked(engine, run_id, "SLEEPING")
    clock.advance(after(120))

    engine.scheduler.tick()

    still(engine, run_id, "SLEEPING")
    clock.advance(after(599 - 120))
    engine.scheduler.tick()
    assert engine.store.get_run(run_id).status == "RUNNING"
    clock.advance(after(1))
    engine.scheduler.tick()
    run = engine.store.get_run(run_id)
    assert (run.status, run.reason) == ("FAILED", None)
    error = json.loads(run.error or "")
    assert (error["name"], error["message"]) == ("RunTimeout", "run exceeded its timeout of 600s")
    assert gate.calls["after"] == 0


@BUILDERS
def test_run_past_its_start_deadline_is_not_started_when_a_slot_frees_before_the_pass(
    build: Callable[[Gate], stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    gate = Gate()
    engine = make_engine(build(gate), settings=settings(8))
    holding = start(engine, "report/requested")
    eventually(gate.entered.is_set, what="the first run to take the slot")
    queued = start(engine, "report/requested")
    clock.advance(after(61))

    gate.opened.set()

    assert engine.wait_for_run(holding, 10).status == "COMPLETED"
    settle(engine)
    assert engine.store.get_run(queued).started_at is None, "started past its deadline"
    engine.scheduler.tick()
    assert engine.store.get_run(queued).status == "CANCELLED"

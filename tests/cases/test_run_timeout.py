"""A function's `timeout` bounds a run from its start: once the clock passes it the run FAILS
with a "RunTimeout" error, even while it sleeps, and nothing after that point executes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, parked, settle, start

EVENT = "case/slow"
IN_STEP = "case/slow-step"


@dataclass
class Gate:
    """A step that blocks until the test opens the gate."""

    calls: Counter[str] = field(default_factory=Counter)
    entered: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> None:
        self.calls["long"] += 1
        self.entered.set()
        self.opened.wait(10)


def sync_app(calls: Counter[str], gate: Gate) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="slow-step", triggers=[stepline.event(IN_STEP)], timeout="3s")
    def slow_step(ctx: stepline.Context[Step]) -> None:
        try:
            ctx.step.run("long", gate.wait)
        finally:
            ctx.step.run("cleanup", calls.update, ["cleanup"])

    @app.function(id="slow", triggers=[stepline.event(EVENT)], timeout="10s")
    def fn(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1m")
        calls["after"] += 1

    return app


def async_app(calls: Counter[str], gate: Gate) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="slow-step", triggers=[stepline.event(IN_STEP)], timeout="3s")
    async def slow_step(ctx: stepline.Context[AsyncStep]) -> None:
        try:
            await ctx.step.run("long", asyncio.to_thread, gate.wait)
        finally:
            await ctx.step.run("cleanup", calls.update, ["cleanup"])

    @app.function(id="slow", triggers=[stepline.event(EVENT)], timeout="10s")
    async def fn(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1m")
        calls["after"] += 1

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_run_past_its_timeout_fails_with_run_timeout(
    build: Callable[[Counter[str], Gate], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls, Gate()))
    run_id = start(engine, EVENT)
    started = parked(engine, run_id, "SLEEPING")
    assert started.started_at is not None
    assert started.timeout_at == started.started_at + timedelta(seconds=10)

    clock.advance(9)
    settle(engine)
    assert engine.store.get_run(run_id).status == "RUNNING"
    clock.advance(1)

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "FAILED"
    error = json.loads(run.error or "")
    assert error["name"] == "RunTimeout"
    assert "10s" in error["message"]
    clock.advance(60)
    settle(engine)
    assert calls["after"] == 0
    assert engine.store.get_run(run_id).status == "FAILED"


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_run_timing_out_inside_a_step_fails_and_starts_no_further_step(
    build: Callable[[Counter[str], Gate], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    gate = Gate()
    engine = make_engine(build(calls, gate))
    run_id = start(engine, IN_STEP)
    eventually(gate.entered.is_set, what="the long step to start")

    clock.advance(3)  # past the timeout, within the lease

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "FAILED"
    assert json.loads(run.error or "")["name"] == "RunTimeout"
    gate.opened.set()
    settle(engine)
    assert calls["cleanup"] == 0
    assert gate.calls["long"] == 1
    assert engine.get_run(run_id).steps == []

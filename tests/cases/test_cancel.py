"""Cancelling a run ends it at once, whether it is inside a long step, sleeping or waiting for
an event; no new step starts afterwards, even when the sleep ends or the event arrives."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, parked, settle, start


@dataclass
class Probe:
    """What the functions report to the test."""

    calls: Counter[str] = field(default_factory=Counter)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def long_step(self) -> str:
        self.calls["long"] += 1
        self.entered.set()
        self.release.wait(10)
        return "done"

    def next_step(self) -> None:
        self.calls["next"] += 1


def sync_app(probe: Probe) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="long", triggers=[stepline.event("case/long")])
    def long(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("long", probe.long_step)
        ctx.step.run("next", probe.next_step)

    @app.function(id="careful", triggers=[stepline.event("case/careful")])
    def careful(ctx: stepline.Context[Step]) -> None:
        for name in ("long", "next", "next-again"):
            try:
                ctx.step.run(name, probe.long_step if name == "long" else probe.next_step)
            except Exception as exc:  # carry on past one failure, as batch scripts do
                probe.calls[f"caught {type(exc).__name__}"] += 1

    @app.function(id="sleeper", triggers=[stepline.event("case/sleeper")])
    def sleeper(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")
        ctx.step.run("next", probe.next_step)

    @app.function(id="waiter", triggers=[stepline.event("case/waiter")])
    def waiter(ctx: stepline.Context[Step]) -> None:
        ctx.step.wait_for_event("approval", event="case/approved", timeout="1h")
        ctx.step.run("next", probe.next_step)

    return app


def async_app(probe: Probe) -> stepline.App:
    app = stepline.App("cases")

    async def long_step() -> str:
        return await asyncio.to_thread(probe.long_step)

    @app.function(id="long", triggers=[stepline.event("case/long")])
    async def long(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("long", long_step)
        await ctx.step.run("next", probe.next_step)

    @app.function(id="careful", triggers=[stepline.event("case/careful")])
    async def careful(ctx: stepline.Context[AsyncStep]) -> None:
        for name in ("long", "next", "next-again"):
            try:
                if name == "long":
                    await ctx.step.run(name, long_step)
                else:
                    await ctx.step.run(name, probe.next_step)
            except Exception as exc:  # carry on past one failure, as batch scripts do
                probe.calls[f"caught {type(exc).__name__}"] += 1

    @app.function(id="sleeper", triggers=[stepline.event("case/sleeper")])
    async def sleeper(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1h")
        await ctx.step.run("next", probe.next_step)

    @app.function(id="waiter", triggers=[stepline.event("case/waiter")])
    async def waiter(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.wait_for_event("approval", event="case/approved", timeout="1h")
        await ctx.step.run("next", probe.next_step)

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_cancel_during_a_long_step_ends_the_run_and_starts_no_further_step(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe))
    run_id = start(engine, "case/long")
    eventually(probe.entered.is_set, what="the long step to start")

    cancelled = engine.cancel(run_id)

    assert cancelled.status == "CANCELLED"
    assert cancelled.ended_at is not None
    probe.release.set()
    settle(engine)
    assert probe.calls == Counter(long=1)
    assert engine.store.get_run(run_id).status == "CANCELLED"
    assert engine.get_run(run_id).steps == [], "the in-flight step's result is not committed"


@BUILDERS
def test_cancel_is_not_swallowed_by_user_code_that_catches_every_exception(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe))
    run_id = start(engine, "case/careful")
    eventually(probe.entered.is_set, what="the long step to start")

    engine.cancel(run_id)
    probe.release.set()

    settle(engine)
    assert probe.calls == Counter(long=1), "no step may start after the run was cancelled"
    assert engine.store.get_run(run_id).status == "CANCELLED"


@BUILDERS
def test_cancel_a_sleeping_run_ends_it_and_the_wake_up_does_nothing(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe()
    engine = make_engine(build(probe))
    run_id = start(engine, "case/sleeper")
    parked(engine, run_id, "SLEEPING")

    assert engine.cancel(run_id).status == "CANCELLED"

    clock.advance(7200)
    settle(engine)
    run = engine.store.get_run(run_id)
    assert (run.status, run.detail) == ("CANCELLED", None)
    assert probe.calls["next"] == 0
    assert engine.store.next_due_at() is None, "nothing of the run is left in the queue"


@BUILDERS
def test_cancel_a_waiting_run_ends_it_and_the_event_resumes_nothing(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe))
    run_id = start(engine, "case/waiter")
    parked(engine, run_id, "WAITING")

    assert engine.cancel(run_id).status == "CANCELLED"

    engine.send({"name": "case/approved", "data": {}})
    settle(engine)
    assert engine.store.get_run(run_id).status == "CANCELLED"
    assert probe.calls["next"] == 0
    [step] = engine.get_run(run_id).steps
    assert step.status == "waiting", "the cancelled wait is not resolved by a later event"

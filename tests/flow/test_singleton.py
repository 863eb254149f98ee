"""`singleton` keeps one active run per key. In "skip" mode a trigger while the key's run is
active is kept as a SKIPPED run naming that run, and "Run now" is refused with `Conflict`
carrying its id; in "cancel" mode the new trigger cancels the active run and runs instead.
Once the active run has ended the key runs again. Same for `def` and `async def`."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.options import SingletonMode
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, only_run, parked, settle
from tests.flow.support import completed, skipped

EVENT = "flow/sync"


def sync_app(mode: SingletonMode) -> stepline.App:
    app = stepline.App("flow")

    @app.function(
        id="sync",
        triggers=[stepline.event(EVENT)],
        singleton=stepline.Singleton(key="event.data.script", mode=mode),
    )
    def sync(ctx: stepline.Context[Step]) -> object:
        ctx.step.sleep("nap", "1h")
        return ctx.event["data"]["n"]

    return app


def async_app(mode: SingletonMode) -> stepline.App:
    app = stepline.App("flow")

    @app.function(
        id="sync",
        triggers=[stepline.event(EVENT)],
        singleton=stepline.Singleton(key="event.data.script", mode=mode),
    )
    async def sync(ctx: stepline.Context[AsyncStep]) -> object:
        await ctx.step.sleep("nap", "1h")
        return ctx.event["data"]["n"]

    return app


@dataclass
class Probe:
    """A step that holds until released, and a count of the steps after it."""

    calls: Counter[str] = field(default_factory=Counter)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def hold(self) -> None:
        self.entered.set()
        self.release.wait(10)

    def after(self) -> None:
        self.calls["after"] += 1


def sync_busy_app(probe: Probe) -> stepline.App:
    app = stepline.App("flow")

    @app.function(
        id="sync", triggers=[stepline.event(EVENT)], singleton=stepline.Singleton(mode="cancel")
    )
    def sync(ctx: stepline.Context[Step]) -> object:
        if ctx.event["data"]["n"] == 1:
            ctx.step.run("hold", probe.hold)
        ctx.step.run("after", probe.after)
        return ctx.event["data"]["n"]

    return app


def async_busy_app(probe: Probe) -> stepline.App:
    app = stepline.App("flow")

    async def hold() -> None:
        await asyncio.to_thread(probe.hold)

    @app.function(
        id="sync", triggers=[stepline.event(EVENT)], singleton=stepline.Singleton(mode="cancel")
    )
    async def sync(ctx: stepline.AsyncContext) -> object:
        if ctx.event["data"]["n"] == 1:
            await ctx.step.run("hold", hold)
        await ctx.step.run("after", probe.after)
        return ctx.event["data"]["n"]

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
BUSY_BUILDERS = pytest.mark.parametrize(
    "build", [sync_busy_app, async_busy_app], ids=["def", "async"]
)


def trigger(engine: Engine, script: str, n: int) -> str:
    """Send one event for `script`; the id of the run it led to (started or skipped)."""
    [event_id] = engine.send({"name": EVENT, "data": {"script": script, "n": n}})
    return only_run(engine, event_id).id


@BUILDERS
def test_skip_a_trigger_while_the_keys_run_is_active(
    build: Callable[[SingletonMode], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build("skip"))
    active = trigger(engine, "a", 1)
    parked(engine, active, "SLEEPING")

    refused = engine.store.get_run(trigger(engine, "a", 2))
    other = trigger(engine, "b", 3)

    skipped(refused, "SINGLETON")
    assert refused.reason == f"singleton: run {active} is still active"
    parked(engine, other, "SLEEPING")
    clock.advance(3600)
    completed(engine, active)
    again = trigger(engine, "a", 4)
    parked(engine, again, "SLEEPING")
    clock.advance(3600)
    assert completed(engine, again).output == "4", "the key runs again once its run ended"


@BUILDERS
def test_run_now_while_the_keys_run_is_active_is_refused_naming_that_run(
    build: Callable[[SingletonMode], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build("skip"))
    active = trigger(engine, "a", 1)
    parked(engine, active, "SLEEPING")

    with pytest.raises(errors.Conflict, match=f"singleton: run {active} is still active") as err:
        engine.invoke("sync", {"script": "a", "n": 2})

    assert err.value.run_id == active
    assert [r.id for r in engine.list_runs()] == [active]


@BUILDERS
def test_cancel_mode_cancels_the_active_run_and_runs_the_new_one(
    build: Callable[[SingletonMode], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build("cancel"))
    first = trigger(engine, "a", 1)
    parked(engine, first, "SLEEPING")

    second = trigger(engine, "a", 2)

    cancelled = engine.store.get_run(first)
    assert cancelled.status == "CANCELLED"
    assert cancelled.reason == f"cancelled by singleton: replaced by run {second}"
    parked(engine, second, "SLEEPING")
    clock.advance(3600)
    assert completed(engine, second).output == "2"
    assert engine.store.get_run(first).status == "CANCELLED", "its wake-up did nothing"


@BUILDERS
def test_run_now_in_cancel_mode_replaces_the_active_run(
    build: Callable[[SingletonMode], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build("cancel"))
    first = trigger(engine, "a", 1)
    parked(engine, first, "SLEEPING")

    second = engine.invoke("sync", {"script": "a", "n": 2})

    assert engine.store.get_run(first).status == "CANCELLED"
    parked(engine, second, "SLEEPING")
    clock.advance(3600)
    assert completed(engine, second).output == "2"


@BUSY_BUILDERS
def test_cancel_mode_replaces_a_run_inside_a_step_which_then_starts_no_further_step(
    build: Callable[[Probe], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe))
    first = trigger(engine, "a", 1)
    eventually(probe.entered.is_set, what="the first run's step to start")

    second = trigger(engine, "a", 2)

    assert engine.store.get_run(first).status == "CANCELLED"
    assert completed(engine, second).output == "2"
    probe.release.set()
    settle(engine)
    assert probe.calls == Counter(after=1), "only the second run got past its first step"
    assert engine.store.get_run(first).status == "CANCELLED"

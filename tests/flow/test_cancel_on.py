"""`cancel_on`: an event matching a run's listener (by `match` field or `if_` condition) ends
the run CANCELLED, naming the event, wherever the run is: sleeping, waiting for an event,
backing off before a retry, inside a step (the next step never starts) or still queued.
An event for another run, one sent before the run existed, or one arriving after the
listener's `timeout` cancels nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import RunRecord, Store
from tests.conftest import FAST_SETTINGS
from tests.engine.support import after, drive, eventually, parked, settle, start, still

CANCELLED = "sync/cancelled"
LISTENERS = {
    "match": stepline.CancelOn(CANCELLED, match="data.sync_id"),
    "if": stepline.CancelOn(CANCELLED, if_="event.data.sync_id == async.data.sync_id"),
}


@dataclass
class Probe:
    """What the functions report to the test; `block` holds a step until `release` is set."""

    calls: Counter[str] = field(default_factory=Counter)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def note(self, name: str) -> None:
        self.calls[name] += 1

    def block(self) -> None:
        self.calls["long"] += 1
        self.entered.set()
        self.release.wait(10)

    def fail(self) -> None:
        self.calls["flaky"] += 1
        raise RuntimeError("vendor unavailable")


Builder = Callable[[Probe, stepline.CancelOn], stepline.App]


def sync_app(probe: Probe, listener: stepline.CancelOn) -> stepline.App:
    app = stepline.App("flow")
    brief = dataclasses.replace(listener, timeout="1m")
    restart = dataclasses.replace(listener, event="sync/restart")

    @app.function(id="sleeper", triggers=[stepline.event("sync/sleep")], cancel_on=listener)
    def sleeper(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")
        ctx.step.run("after", probe.note, "after")

    @app.function(id="waiter", triggers=[stepline.event("sync/wait")], cancel_on=[listener])
    def waiter(ctx: stepline.Context[Step]) -> None:
        ctx.step.wait_for_event("approval", event="sync/approved", timeout="1h")
        ctx.step.run("after", probe.note, "after")

    @app.function(
        id="blocker", triggers=[stepline.event("sync/block")], cancel_on=listener, concurrency=1
    )
    def blocker(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("long", probe.block)
        ctx.step.run("after", probe.note, "after")

    @app.function(id="flaky", triggers=[stepline.event("sync/flaky")], cancel_on=listener)
    def flaky(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("flaky", probe.fail)
        ctx.step.run("after", probe.note, "after")

    @app.function(id="brief", triggers=[stepline.event("sync/brief")], cancel_on=brief)
    def brief_listener(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")
        ctx.step.run("after", probe.note, "after")

    @app.function(id="restarter", triggers=[stepline.event("sync/restart")], cancel_on=restart)
    def restarter(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")
        ctx.step.run("after", probe.note, "after")

    return app


def async_app(probe: Probe, listener: stepline.CancelOn) -> stepline.App:
    app = stepline.App("flow")
    brief = dataclasses.replace(listener, timeout="1m")
    restart = dataclasses.replace(listener, event="sync/restart")

    async def block() -> None:
        await asyncio.to_thread(probe.block)

    @app.function(id="sleeper", triggers=[stepline.event("sync/sleep")], cancel_on=listener)
    async def sleeper(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1h")
        await ctx.step.run("after", probe.note, "after")

    @app.function(id="waiter", triggers=[stepline.event("sync/wait")], cancel_on=[listener])
    async def waiter(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.wait_for_event("approval", event="sync/approved", timeout="1h")
        await ctx.step.run("after", probe.note, "after")

    @app.function(
        id="blocker", triggers=[stepline.event("sync/block")], cancel_on=listener, concurrency=1
    )
    async def blocker(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("long", block)
        await ctx.step.run("after", probe.note, "after")

    @app.function(id="flaky", triggers=[stepline.event("sync/flaky")], cancel_on=listener)
    async def flaky(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("flaky", probe.fail)
        await ctx.step.run("after", probe.note, "after")

    @app.function(id="brief", triggers=[stepline.event("sync/brief")], cancel_on=brief)
    async def brief_listener(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1h")
        await ctx.step.run("after", probe.note, "after")

    @app.function(id="restarter", triggers=[stepline.event("sync/restart")], cancel_on=restart)
    async def restarter(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep("nap", "1h")
        await ctx.step.run("after", probe.note, "after")

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
BOTH_LISTENERS = pytest.mark.parametrize("listener", LISTENERS.values(), ids=LISTENERS.keys())


def cancel(engine: Engine, sync_id: str) -> str:
    """Send the cancelling event for `sync_id`; returns its internal id."""
    [event_id] = engine.send({"name": CANCELLED, "data": {"sync_id": sync_id}})
    return event_id


def assert_cancelled_by(
    engine: Engine, run_id: str, event_id: str, *, name: str = CANCELLED
) -> RunRecord:
    run = engine.store.get_run(run_id)
    assert (run.status, run.detail, run.cancelled_by) == ("CANCELLED", None, event_id), run
    assert run.reason == f"cancelled by event {name!r} ({event_id})"
    assert run.ended_at is not None
    return run


@BUILDERS
@BOTH_LISTENERS
def test_matching_event_cancels_a_sleeping_run_and_the_wake_up_does_nothing(
    build: Builder,
    listener: stepline.CancelOn,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, listener))
    run_id = start(engine, "sync/sleep", {"sync_id": "s1"})
    parked(engine, run_id, "SLEEPING")

    event_id = cancel(engine, "s1")

    assert_cancelled_by(engine, run_id, event_id)
    clock.advance(after(7200))
    settle(engine)
    assert_cancelled_by(engine, run_id, event_id)
    assert probe.calls["after"] == 0
    assert engine.store.next_due_at() is None, "nothing of the run is left in the queue"


@BUILDERS
@BOTH_LISTENERS
def test_matching_event_cancels_a_run_waiting_for_an_event(
    build: Builder, listener: stepline.CancelOn, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, listener))
    run_id = start(engine, "sync/wait", {"sync_id": "s1"})
    parked(engine, run_id, "WAITING")

    event_id = cancel(engine, "s1")

    assert_cancelled_by(engine, run_id, event_id)
    engine.send({"name": "sync/approved", "data": {"sync_id": "s1"}})
    settle(engine)
    assert_cancelled_by(engine, run_id, event_id)
    assert probe.calls["after"] == 0
    [step] = engine.get_run(run_id).steps
    assert step.status == "waiting", "the cancelled wait is not resolved by a later event"


@BUILDERS
def test_matching_event_cancels_a_run_backing_off_before_a_retry(
    build: Builder, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, LISTENERS["match"]))
    run_id = start(engine, "sync/flaky", {"sync_id": "s1"})
    parked(engine, run_id, "RETRYING")

    event_id = cancel(engine, "s1")

    assert_cancelled_by(engine, run_id, event_id)
    clock.advance(after(60))
    settle(engine)
    assert probe.calls == Counter(flaky=1), "no retry after the cancel"
    assert_cancelled_by(engine, run_id, event_id)


@BUILDERS
def test_matching_event_during_a_step_ends_the_run_and_its_next_step_never_starts(
    build: Builder, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, LISTENERS["match"]))
    run_id = start(engine, "sync/block", {"sync_id": "s1"})
    eventually(probe.entered.is_set, what="the long step to start")

    event_id = cancel(engine, "s1")

    assert_cancelled_by(engine, run_id, event_id)
    probe.release.set()
    settle(engine)
    assert probe.calls == Counter(long=1), "no step starts after the cancel"
    assert_cancelled_by(engine, run_id, event_id)
    assert engine.get_run(run_id).steps == [], "the in-flight step's result is not committed"


@BUILDERS
def test_matching_event_cancels_a_queued_run_no_worker_has_started(
    build: Builder, store: Store, clock: FakeClock, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    app = build(probe, LISTENERS["match"])
    idle = Engine(app, db=store, upgrade=False, clock=clock, settings=FAST_SETTINGS)
    idle.register()  # the functions are known, but no worker serves them yet
    idle.worker.stop(grace_seconds=0)  # never started: this only frees what it holds
    run_id = start(idle, "sync/block", {"sync_id": "s1"})
    assert idle.store.get_run(run_id).status == "QUEUED"

    event_id = cancel(idle, "s1")

    assert_cancelled_by(idle, run_id, event_id)
    engine = make_engine(app)
    settle(engine)
    assert probe.calls == Counter(), "a worker arriving later does not start the cancelled run"
    assert_cancelled_by(engine, run_id, event_id)


@BUILDERS
def test_matching_event_cancels_a_run_queued_behind_its_concurrency_limit(
    build: Builder, make_engine: Callable[..., Engine]
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, LISTENERS["match"]))
    holder = start(engine, "sync/block", {"sync_id": "a"})
    eventually(probe.entered.is_set, what="the first run to hold the only slot")
    queued = start(engine, "sync/block", {"sync_id": "b"})
    assert engine.store.get_run(queued).status == "QUEUED"

    event_id = cancel(engine, "b")

    assert_cancelled_by(engine, queued, event_id)
    assert engine.store.get_run(holder).status == "RUNNING", "only the matching run is cancelled"
    probe.release.set()
    assert engine.wait_for_run(holder, 10).status == "COMPLETED"
    settle(engine)
    assert probe.calls == Counter(long=1, after=1), "the cancelled run never started"


@BUILDERS
@BOTH_LISTENERS
def test_event_for_another_run_cancels_nothing(
    build: Builder,
    listener: stepline.CancelOn,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, listener))
    run_id = start(engine, "sync/sleep", {"sync_id": "s1"})
    parked(engine, run_id, "SLEEPING")

    cancel(engine, "s2")

    run = still(engine, run_id, "SLEEPING")
    assert run.cancelled_by is None
    assert drive(engine, clock, run_id).status == "COMPLETED"
    assert probe.calls["after"] == 1


@BUILDERS
def test_event_sent_before_the_run_was_created_does_not_cancel_it(
    build: Builder, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, LISTENERS["match"]))
    cancel(engine, "s1")
    [_, trigger] = engine.send(
        [
            {"name": CANCELLED, "data": {"sync_id": "s1"}},
            {"name": "sync/sleep", "data": {"sync_id": "s1"}},
        ]
    )
    run_id = engine.operations.runs_for_event(trigger)[0].id

    run = parked(engine, run_id, "SLEEPING")

    assert run.cancelled_by is None
    still(engine, run_id, "SLEEPING")
    assert drive(engine, clock, run_id).status == "COMPLETED"
    assert probe.calls["after"] == 1


@BUILDERS
def test_event_after_the_trigger_in_the_same_send_cancels_the_run(
    build: Builder, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build(Probe(), LISTENERS["match"]))

    [trigger, event_id] = engine.send(
        [
            {"name": "sync/sleep", "data": {"sync_id": "s1"}},
            {"name": CANCELLED, "data": {"sync_id": "s1"}},
        ]
    )

    [run] = engine.operations.runs_for_event(trigger)
    assert_cancelled_by(engine, run.id, event_id)


@BUILDERS
@BOTH_LISTENERS
def test_a_function_cancelled_by_its_own_trigger_is_replaced_by_the_newer_run(
    build: Builder,
    listener: stepline.CancelOn,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, listener))
    first = start(engine, "sync/restart", {"sync_id": "s1"})
    parked(engine, first, "SLEEPING")

    [event_id] = engine.send({"name": "sync/restart", "data": {"sync_id": "s1"}})

    assert_cancelled_by(engine, first, event_id, name="sync/restart")
    [second] = engine.operations.runs_for_event(event_id)
    assert second.id != first
    parked(engine, second.id, "SLEEPING")
    assert drive(engine, clock, second.id).status == "COMPLETED", "not cancelled by its own event"
    assert probe.calls["after"] == 1


@BUILDERS
@pytest.mark.parametrize(
    ("listened", "cancels"), [(59, True), (61, False)], ids=["within-timeout", "after-timeout"]
)
def test_listener_stops_listening_once_its_timeout_has_passed(
    build: Builder,
    listened: float,
    cancels: bool,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    probe = Probe()
    engine = make_engine(build(probe, LISTENERS["match"]))
    run_id = start(engine, "sync/brief", {"sync_id": "s1"})
    parked(engine, run_id, "SLEEPING")
    clock.advance(after(listened))

    event_id = cancel(engine, "s1")

    if cancels:
        assert_cancelled_by(engine, run_id, event_id)
        return
    assert still(engine, run_id, "SLEEPING").cancelled_by is None
    assert drive(engine, clock, run_id).status == "COMPLETED"
    assert probe.calls["after"] == 1

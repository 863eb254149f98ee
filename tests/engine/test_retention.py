"""Retention: the scheduler prunes ended runs past their retention, with their steps, attempts,
logs and the events only they refer to; a function's own `retention=` beats the default; runs
started by a run go with it, never before it; live runs and what they refer to stay."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.retention import RetentionSettings
from stepline.sdk.step import Step
from stepline.store.base import Store
from tests.conftest import FAST_SETTINGS
from tests.engine.support import eventually, parked, start
from tests.flow.support import completed

DAY = timedelta(days=1)
# The scheduler is driven by the test (`tick`), so each pass happens when the test says.
SETTINGS = replace(FAST_SETTINGS, scheduler=False)


def retention_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("retention")

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ConnectionError("vendor timeout")
        return "fetched"

    @app.function(id="work", triggers=[stepline.event("ret/work"), stepline.event("ret/both")])
    def work(ctx: stepline.Context[Step]) -> str:
        ctx.log.info("working")
        return ctx.step.run("fetch", flaky)

    @app.function(id="short", triggers=[stepline.event("ret/short")], retention="1d")
    def short(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("one", lambda: "done")

    @app.function(
        id="keep",
        triggers=[stepline.event("ret/keep"), stepline.event("ret/both")],
        retention="forever",
    )
    def keep(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("one", lambda: "kept")

    @app.function(id="waiter", triggers=[stepline.event("ret/wait")])
    def waiter(ctx: stepline.Context[Step]) -> object:
        return ctx.step.wait_for_event("reply", event="ret/reply", timeout="90d")

    @app.function(id="child", retention="1d")
    def child(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("one", lambda: "child")

    @app.function(id="parent", triggers=[stepline.event("ret/parent")])
    def parent(ctx: stepline.Context[Step]) -> object:
        return ctx.step.invoke("call", function="child", data={})

    @app.function(id="fan", triggers=[stepline.event("ret/fan")])
    def fan(ctx: stepline.Context[Step]) -> object:
        return ctx.step.parallel(
            "both",
            [lambda: ctx.step.run("a", lambda: 1), lambda: ctx.step.run("b", lambda: 2)],
        )

    return app


def gone(store: Store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except errors.NotFound:
        return True
    return False


def event_gone(store: Store, event_id: str | None) -> bool:
    assert event_id is not None
    try:
        store.get_event(event_id)
    except errors.NotFound:
        return True
    return False


def test_ended_runs_go_after_their_retention_with_what_only_they_refer_to(
    make_engine: Callable[..., Engine],
    clock: FakeClock,
    store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(retention_app(calls), settings=SETTINGS)
    engine.scheduler.tick()  # the first pass: nothing is old yet
    work = start(engine, "ret/work")
    parked(engine, work, "RETRYING")
    clock.advance(timedelta(seconds=2))
    completed(engine, work)
    short = start(engine, "ret/short")
    keep = start(engine, "ret/keep")
    [both_event] = engine.send({"name": "ret/both", "data": {}})
    both = {r.function_id: r.id for r in engine.operations.runs_for_event(both_event)}
    parent = start(engine, "ret/parent")
    fan = start(engine, "ret/fan")
    for run_id in (short, keep, both["work"], both["keep"], parent, fan):
        completed(engine, run_id)
    [child] = [r.id for r in engine.list_runs() if r.function_id == "child"]
    branches = [r.id for r in engine.list_runs() if r.trigger_kind == "parallel"]
    assert len(branches) == 2
    waiting = start(engine, "ret/wait")
    parked(engine, waiting, "WAITING")
    [nobody] = engine.send({"name": "ret/nobody", "data": {}})
    events = {run_id: store.get_run(run_id).event_id for run_id in (work, short, keep, waiting)}
    assert store.get_attempts(work) and store.get_logs(work) and store.get_steps(work)

    clock.advance(2 * DAY)
    engine.scheduler.tick()

    assert gone(store, short) and event_gone(store, events[short]), "its own 1d beats 30d"
    assert store.get_steps(short) == []
    assert not gone(store, child), "a run started by a run goes with it, never before"
    assert not any(gone(store, branch) for branch in branches)
    assert not gone(store, work) and not gone(store, parent)

    clock.advance(29 * DAY)
    with caplog.at_level(logging.INFO, logger="stepline.retention"):
        engine.scheduler.tick()

    for run_id in (work, both["work"], parent, child, fan, *branches):
        assert gone(store, run_id), run_id
    assert store.get_steps(work) == []
    assert store.get_attempts(work) == []
    assert store.get_logs(work) == []
    assert event_gone(store, events[work])
    assert event_gone(store, nobody), "an old event no run refers to goes too"
    # Kept: a "forever" function's runs and their events, an event a kept run shares with a
    # pruned one, and a live (waiting) run with its event.
    assert not gone(store, keep) and not event_gone(store, events[keep])
    assert not gone(store, both["keep"]) and not event_gone(store, both_event)
    assert not gone(store, waiting) and not event_gone(store, events[waiting])
    assert store.get_run(waiting).detail == "WAITING"
    assert "retention: removed 7 runs" in caplog.text


def test_a_run_whose_started_run_is_still_active_is_kept_until_that_one_ends(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    app = stepline.App("retention")

    @app.function(id="sleeper")
    def sleeper(ctx: stepline.Context[Step]) -> str:
        ctx.step.sleep("nap", "40d")
        return "awake"

    @app.function(id="impatient", triggers=[stepline.event("ret/go")], retries=0)
    def impatient(ctx: stepline.Context[Step]) -> object:
        return ctx.step.invoke("call", function="sleeper", data={}, timeout="1m")

    engine = make_engine(app, settings=SETTINGS)
    parent = start(engine, "ret/go")
    parked_parent = eventually(
        lambda: (
            [r for r in engine.list_runs() if r.function_id == "sleeper"]
            and store.get_run(parent).detail == "INVOKING"
        ),
        what="the parent to park on its invoke",
    )
    assert parked_parent
    [child] = [r.id for r in engine.list_runs() if r.function_id == "sleeper"]
    parked(engine, child, "SLEEPING")
    clock.advance(timedelta(minutes=1, seconds=1))
    assert engine.wait_for_run(parent, 10).status == "FAILED"  # the invoke timed out

    clock.advance(31 * DAY)
    engine.scheduler.tick()
    assert not gone(store, parent) and not gone(store, child)

    clock.advance(9 * DAY)  # past the child's 40-day sleep
    completed(engine, child)
    clock.advance(timedelta(minutes=10))
    engine.scheduler.tick()
    assert gone(store, parent) and gone(store, child)


def test_a_default_of_forever_keeps_runs_and_events_but_not_a_function_s_own(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    settings = replace(SETTINGS, retention=RetentionSettings(default=None))
    engine = make_engine(retention_app(Counter()), settings=settings)
    engine.scheduler.tick()
    short = start(engine, "ret/short")
    completed(engine, short)
    plain = start(engine, "ret/work")
    parked(engine, plain, "RETRYING")
    clock.advance(timedelta(seconds=2))
    completed(engine, plain)
    [nobody] = engine.send({"name": "ret/nobody", "data": {}})

    clock.advance(400 * DAY)
    engine.scheduler.tick()

    assert gone(store, short)
    assert not gone(store, plain)
    assert not event_gone(store, nobody)


def test_an_event_id_keeps_its_24_hour_deduplication_after_its_run_is_pruned(
    make_engine: Callable[..., Engine], clock: FakeClock, store: Store
) -> None:
    app = stepline.App("retention")

    @app.function(id="brief", triggers=[stepline.event("ret/brief")], retention="1m")
    def brief(ctx: stepline.Context[Step]) -> str:
        return "ok"

    engine = make_engine(app, settings=SETTINGS)
    engine.scheduler.tick()
    [first] = engine.send({"name": "ret/brief", "id": "order-1", "data": {}})
    [run] = engine.operations.runs_for_event(first)
    completed(engine, run.id)

    clock.advance(timedelta(hours=1))
    engine.scheduler.tick()

    assert gone(store, run.id)
    assert engine.send({"name": "ret/brief", "id": "order-1", "data": {}}) == [first]
    assert len(engine.list_runs()) == 0, "the held id starts nothing new"

"""`ctx.trigger` tells how a run started (event, cron, manual, invoke, replay; a parallel branch
reports its run's), and `ctx.event` is a read-only `stepline.Event` with attributes that still
reads like the mapping it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import RunFilter
from tests.engine.support import eventually, start

EVENT = "case/report.requested"


def seen(ctx: stepline.Context[Any]) -> dict[str, Any]:
    """What the function saw of its trigger and event, as JSON."""
    trigger, event = ctx.trigger, ctx.event
    return {
        "kind": trigger.kind,
        "by": trigger.by,
        "scheduled_at": trigger.scheduled_at.isoformat() if trigger.scheduled_at else None,
        "name": event.name,
        "id": event.id,
        "data": event.data,
        "ts": event.ts,
        "mapping_agrees": (
            event["data"] == event.get("data") == event.data
            and dict(event)
            == {
                "id": event.id,
                "name": event.name,
                "data": event.data,
                "user": event.user,
                "ts": event.ts,
            }
            and ctx.events[0] is event
        ),
    }


def sync_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="report", triggers=[stepline.event(EVENT)])
    def report(ctx: stepline.Context[Step]) -> Any:
        return seen(ctx)

    @app.function(id="parent", triggers=[stepline.event("case/parent")])
    def parent(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.invoke("child", function="report", data={"n": 2})

    @app.function(id="fan-out")
    def fan_out(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.parallel("branches", [lambda: seen(ctx), lambda: seen(ctx)])

    return app


def async_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="report", triggers=[stepline.event(EVENT)])
    async def report(ctx: stepline.Context[AsyncStep]) -> Any:
        return seen(ctx)

    @app.function(id="parent", triggers=[stepline.event("case/parent")])
    async def parent(ctx: stepline.Context[AsyncStep]) -> Any:
        return await ctx.step.invoke("child", function="report", data={"n": 2})

    async def branch(ctx: stepline.Context[AsyncStep]) -> Any:
        return seen(ctx)

    @app.function(id="fan-out")
    async def fan_out(ctx: stepline.Context[AsyncStep]) -> Any:
        return await ctx.step.parallel("branches", [lambda: branch(ctx), lambda: branch(ctx)])

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


def output(engine: Engine, run_id: str) -> Any:
    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", run.error
    assert run.output is not None
    return json.loads(run.output)


@BUILDERS
def test_an_event_run_sees_kind_event_and_its_event_as_attributes(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    [event_id] = engine.send(
        {"name": EVENT, "data": {"n": 1}, "id": "order-17", "ts": 1_780_000_000_123}
    )
    [run] = engine.operations.runs_for_event(event_id)

    got = output(engine, run.id)

    assert (got["kind"], got["by"], got["scheduled_at"]) == ("event", None, None)
    assert (got["name"], got["id"], got["data"], got["ts"]) == (
        EVENT,
        "order-17",
        {"n": 1},
        1_780_000_000_123,
    )
    assert got["mapping_agrees"] is True


@BUILDERS
def test_run_now_is_manual_and_names_who_started_it(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())

    got = output(engine, engine.operations.invoke("report", {"n": 3}, by="dashboard"))

    assert (got["kind"], got["by"], got["data"]) == ("manual", "dashboard", {"n": 3})
    assert got["name"] == "stepline/function.invoked"


@BUILDERS
def test_an_invoked_child_sees_its_parent_run(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    parent_id = start(engine, "case/parent")

    got = output(engine, parent_id)

    assert (got["kind"], got["by"], got["data"]) == ("invoke", parent_id, {"n": 2})


@BUILDERS
def test_a_replay_sees_kind_replay_by_the_original_run(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    original = start(engine, EVENT, {"n": 4})
    first = output(engine, original)

    got = output(engine, engine.replay(original))

    assert (got["kind"], got["by"], got["data"]) == ("replay", original, {"n": 4})
    assert got["id"] == first["id"], "a replay sees the original event"


@BUILDERS
def test_parallel_branches_report_the_trigger_of_their_run(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())

    branches = output(engine, engine.operations.invoke("fan-out", {"n": 5}, by="api"))

    assert [(b["kind"], b["by"], b["data"]) for b in branches] == [("manual", "api", {"n": 5})] * 2


def cron_app(is_async: bool) -> stepline.App:
    app = stepline.App("crons")
    if is_async:

        @app.function(id="nightly", triggers=[stepline.cron("30 2 * * *", tz="Europe/Berlin")])
        async def nightly_async(ctx: stepline.Context[AsyncStep]) -> Any:
            return seen(ctx)

    else:

        @app.function(id="nightly", triggers=[stepline.cron("30 2 * * *", tz="Europe/Berlin")])
        def nightly(ctx: stepline.Context[Step]) -> Any:
            return seen(ctx)

    return app


@pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])
def test_a_cron_run_sees_its_schedule_and_tick(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    clock.set(datetime(2026, 6, 1, 12, tzinfo=UTC))
    engine = make_engine(cron_app(is_async))
    tick = datetime(2026, 6, 2, 0, 30, tzinfo=UTC)  # 02:30 in Berlin (summer time)
    eventually(
        lambda: engine.store.cron_last_tick("nightly", "TZ=Europe/Berlin 30 2 * * *"),
        what="the scheduler to see the schedule",
    )
    clock.set(tick + timedelta(seconds=20))  # the scheduler comes by a little late

    run = eventually(
        lambda: engine.list_runs(RunFilter(function_id="nightly")), what="the tick's run"
    )[0]
    got = output(engine, run.id)

    assert (got["kind"], got["by"]) == ("cron", "TZ=Europe/Berlin 30 2 * * *")
    assert datetime.fromisoformat(got["scheduled_at"]) == tick
    assert got["scheduled_at"].endswith("+02:00"), "in the schedule's time zone"
    assert got["name"] == "stepline/scheduled.timer"

"""`step.send_event` sends exactly once across replays: when a later step fails and the run is
replayed, the event is still stored once, with the same id, and the function it triggers runs
once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, only_run, settle, start

EVENT = "case/signup"
CHILD = "case/welcome.requested"


def fails_once(calls: Counter[str]) -> None:
    calls["after"] += 1
    if calls["after"] == 1:
        raise RuntimeError("crm down")


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="signup", triggers=[stepline.event(EVENT)])
    def signup(ctx: stepline.Context[Step]) -> list[str]:
        ids = ctx.step.send_event("welcome", {"name": CHILD, "data": {"user": 7}})
        ctx.step.run("update-crm", fails_once, calls)
        return ids

    @app.function(id="welcome", triggers=[stepline.event(CHILD)])
    def welcome(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("send-mail", calls.update, ["welcome"])

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="signup", triggers=[stepline.event(EVENT)])
    async def signup(ctx: stepline.Context[AsyncStep]) -> list[str]:
        ids = await ctx.step.send_event("welcome", {"name": CHILD, "data": {"user": 7}})
        await ctx.step.run("update-crm", fails_once, calls)
        return ids

    @app.function(id="welcome", triggers=[stepline.event(CHILD)])
    async def welcome(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("send-mail", calls.update, ["welcome"])

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_send_event_sends_exactly_once_across_replays(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert calls["after"] == 2, "the run was replayed after the failing step"
    [sent] = engine.store.list_events(CHILD, 10, None)
    assert json.loads(run.output or "") == [sent.internal_id]
    assert json.loads(sent.data) == {"user": 7}
    child = engine.wait_for_run(only_run(engine, sent.internal_id).id, 10)
    assert child.status == "COMPLETED", child.error
    settle(engine)
    assert calls["welcome"] == 1
    assert len(engine.list_runs()) == 2

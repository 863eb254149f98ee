"""Replaying a run starts a new run of the same function for the same events: trigger "replay",
linked to the original, executed from scratch to completion."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import start

EVENT = "case/report"


def build_report(calls: Counter[str], n: int) -> int:
    calls["build"] += 1
    return n


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="report", triggers=[stepline.event(EVENT)])
    def report(ctx: stepline.Context[Step]) -> int:
        return ctx.step.run("build", build_report, calls, ctx.event["data"]["n"])

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="report", triggers=[stepline.event(EVENT)])
    async def report(ctx: stepline.Context[AsyncStep]) -> int:
        return await ctx.step.run("build", build_report, calls, ctx.event["data"]["n"])

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_replay_creates_a_linked_run_with_the_same_events_that_completes(
    build: Callable[[Counter[str]], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    original = engine.wait_for_run(start(engine, EVENT, {"n": 5}), 10)
    assert original.status == "COMPLETED", original.error

    replay_id = engine.replay(original.id)

    assert replay_id != original.id
    replayed = engine.wait_for_run(replay_id, 10)
    assert replayed.status == "COMPLETED", replayed.error
    assert replayed.output == "5"
    assert (replayed.trigger_kind, replayed.replay_of) == ("replay", original.id)
    assert replayed.event_ids == original.event_ids
    assert replayed.event_id == original.event_id
    assert calls["build"] == 2, "a replay executes its steps afresh"

"""When a step's attempts run out, `StepError` is raised where the function called it; user code
may catch it and carry on, and every later replay raises the same error there again."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, start

EVENT = "case/fallback"


def primary(calls: Counter[str]) -> str:
    calls["primary"] += 1
    raise KeyError("region-7")


def fallback(calls: Counter[str]) -> str:
    calls["fallback"] += 1
    return "cached"


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="fallback", triggers=[stepline.event(EVENT)], retries=1)
    def fn(ctx: stepline.Context[Step]) -> dict[str, Any]:
        caught: dict[str, str] | None = None
        try:
            value = ctx.step.run("primary", primary, calls)
        except stepline.StepError as exc:
            calls["caught"] += 1
            caught = {"step": exc.step_id, "name": exc.name, "message": exc.error_message}
            value = ctx.step.run("fallback", fallback, calls)
        ctx.step.sleep("cool-down", "5s")  # forces one more replay through the failed step
        return {"value": value, "caught": caught}

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="fallback", triggers=[stepline.event(EVENT)], retries=1)
    async def fn(ctx: stepline.Context[AsyncStep]) -> dict[str, Any]:
        caught: dict[str, str] | None = None
        try:
            value = await ctx.step.run("primary", primary, calls)
        except stepline.StepError as exc:
            calls["caught"] += 1
            caught = {"step": exc.step_id, "name": exc.name, "message": exc.error_message}
            value = await ctx.step.run("fallback", fallback, calls)
        await ctx.step.sleep("cool-down", "5s")
        return {"value": value, "caught": caught}

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_exhausted_step_error_can_be_caught_and_the_run_continues(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "") == {
        "value": "cached",
        "caught": {"step": "primary", "name": "KeyError", "message": "'region-7'"},
    }
    assert calls == Counter(primary=2, fallback=1, caught=2)
    steps = {s.id: s.status for s in engine.get_run(run_id).steps}
    assert steps == {"primary": "failed", "fallback": "completed", "cool-down": "completed"}

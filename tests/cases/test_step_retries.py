"""Each step has its own attempt counter: a step failing twice then succeeding is stored with
three attempts and two failed-attempt rows (error type, message and traceback), and the
function-level attempt does not move."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, start

EVENT = "case/flaky"


def flaky(calls: Counter[str]) -> str:
    calls["flaky"] += 1
    if calls["flaky"] <= 2:
        raise ConnectionError(f"vendor timeout #{calls['flaky']}")
    return "fetched"


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="flaky", triggers=[stepline.event(EVENT)])
    def fn(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("fetch", flaky, calls)

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="flaky", triggers=[stepline.event(EVENT)])
    async def fn(ctx: stepline.Context[AsyncStep]) -> str:
        return await ctx.step.run("fetch", flaky, calls)

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_step_failing_twice_then_succeeding_has_three_attempts(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert run.output == '"fetched"'
    assert run.attempt == 0, "step failures do not count against the function attempt"
    detail = engine.get_run(run_id)
    [step] = detail.steps
    assert (step.id, step.status, step.attempts) == ("fetch", "completed", 3)
    assert [(a.step_id, a.attempt) for a in detail.attempts] == [("fetch", 0), ("fetch", 1)]
    for n, attempt in enumerate(detail.attempts, start=1):
        error = json.loads(attempt.error)
        assert error["name"] == "ConnectionError"
        assert error["message"] == f"vendor timeout #{n}"
        assert "ConnectionError: vendor timeout" in error["traceback"]
        assert "in flaky" in error["traceback"]

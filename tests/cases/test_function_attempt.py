"""An error raised outside any step counts against the function attempt: the function is
replayed with `ctx.attempt` incremented, memoized steps are not re-executed, and each failed
attempt is recorded without a step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, start

EVENT = "case/outside"


def prepare(calls: Counter[str]) -> str:
    calls["prepare"] += 1
    return "ready"


def sync_app(seen: list[int], calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="outside", triggers=[stepline.event(EVENT)])
    def fn(ctx: stepline.Context[Step]) -> int:
        seen.append(ctx.attempt)
        ctx.step.run("prepare", prepare, calls)
        if ctx.attempt < 2:
            raise ValueError(f"bad state on attempt {ctx.attempt}")
        return ctx.attempt

    return app


def async_app(seen: list[int], calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="outside", triggers=[stepline.event(EVENT)])
    async def fn(ctx: stepline.Context[AsyncStep]) -> int:
        seen.append(ctx.attempt)
        await ctx.step.run("prepare", prepare, calls)
        if ctx.attempt < 2:
            raise ValueError(f"bad state on attempt {ctx.attempt}")
        return ctx.attempt

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_error_outside_steps_retries_the_function_attempt(
    build: Callable[[list[int], Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    seen: list[int] = []
    calls: Counter[str] = Counter()
    engine = make_engine(build(seen, calls))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert run.output == "2"
    assert seen == [0, 1, 2]
    assert run.attempt == 2
    assert calls == Counter(prepare=1)
    attempts = engine.get_run(run_id).attempts
    assert [(a.step_id, a.step_hash, a.attempt) for a in attempts] == [(None, "", 0), (None, "", 1)]
    assert [(a.retry_at - a.ended_at).total_seconds() for a in attempts if a.retry_at] == [1, 2]

"""`NonRetriableError` fails the run at once: one attempt, no backoff, whether raised in a step
or outside steps."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import start

IN_STEP = "case/refused"
OUTSIDE = "case/refused-outside"


def refuse(calls: Counter[str]) -> None:
    calls["refuse"] += 1
    raise stepline.NonRetriableError("card declined")


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="in-step", triggers=[stepline.event(IN_STEP)])
    def in_step(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("charge", refuse, calls)

    @app.function(id="outside", triggers=[stepline.event(OUTSIDE)])
    def outside(ctx: stepline.Context[Step]) -> None:
        refuse(calls)

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="in-step", triggers=[stepline.event(IN_STEP)])
    async def in_step(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("charge", refuse, calls)

    @app.function(id="outside", triggers=[stepline.event(OUTSIDE)])
    async def outside(ctx: stepline.Context[AsyncStep]) -> None:
        refuse(calls)

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
@pytest.mark.parametrize("event", [IN_STEP, OUTSIDE])
def test_non_retriable_error_fails_the_run_after_one_attempt(
    build: Callable[[Counter[str]], stepline.App],
    event: str,
    make_engine: Callable[..., Engine],
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))

    run = engine.wait_for_run(start(engine, event), 10)

    assert run.status == "FAILED"
    error = json.loads(run.error or "")
    assert (error["name"], error["message"]) == ("NonRetriableError", "card declined")
    assert calls == Counter(refuse=1)
    [attempt] = engine.get_run(run.id).attempts
    assert attempt.retry_at is None

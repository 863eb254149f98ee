"""`RetryAfterError(delay)` replaces the backoff: the retry waits exactly the given delay (here
30 s instead of the 1 s base backoff), no less."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import parked, start, still

EVENT = "case/rate-limited"


def rate_limited(calls: Counter[str]) -> str:
    calls["call"] += 1
    if calls["call"] == 1:
        raise stepline.RetryAfterError("429 Too Many Requests", delay=timedelta(seconds=30))
    return "ok"


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="rate-limited", triggers=[stepline.event(EVENT)])
    def fn(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("call", rate_limited, calls)

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="rate-limited", triggers=[stepline.event(EVENT)])
    async def fn(ctx: stepline.Context[AsyncStep]) -> str:
        return await ctx.step.run("call", rate_limited, calls)

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_retry_after_error_sets_the_retry_delay(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    parked(engine, run_id, "RETRYING")
    [attempt] = engine.get_run(run_id).attempts
    assert attempt.retry_at == attempt.ended_at + timedelta(seconds=30)
    clock.advance(29)
    still(engine, run_id, "RETRYING")
    assert calls["call"] == 1
    clock.advance(1)

    run = engine.wait_for_run(run_id, 10)
    assert (run.status, run.output) == ("COMPLETED", '"ok"')
    assert calls["call"] == 2

"""Retries follow the backoff schedule of the injected clock (base 1 s, factor 2): the run stays
parked until the clock passes each retry time. By default a step gets 4 retries (5 attempts);
then the run FAILS with the last error and every attempt's error is kept."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, parked, start, still

EVENT = "case/doomed"


def always_fails(calls: Counter[str]) -> None:
    n = calls["doomed"]
    calls["doomed"] += 1
    raise RuntimeError(f"boom {n}")


def made(calls: Counter[str], count: int) -> Callable[[], bool]:
    return lambda: calls["doomed"] == count


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="doomed", triggers=[stepline.event(EVENT)])
    def fn(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("call-vendor", always_fails, calls)
        calls["after"] += 1

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="doomed", triggers=[stepline.event(EVENT)])
    async def fn(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("call-vendor", always_fails, calls)
        calls["after"] += 1

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_default_retries_back_off_exponentially_then_fail_with_the_last_error(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, EVENT)

    for n in range(4):
        parked(engine, run_id, "RETRYING")
        attempts = engine.get_run(run_id).attempts
        assert len(attempts) == n + 1
        backoff = timedelta(seconds=2**n)
        assert attempts[-1].retry_at == attempts[-1].ended_at + backoff
        clock.advance(backoff - timedelta(milliseconds=100))
        still(engine, run_id, "RETRYING")
        assert calls["doomed"] == n + 1, "retried before its backoff elapsed"
        clock.advance(timedelta(milliseconds=100))
        eventually(made(calls, n + 2), what=f"attempt {n + 1}")

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "FAILED"
    assert calls == Counter(doomed=5)
    error = json.loads(run.error or "")
    assert (error["name"], error["message"]) == ("RuntimeError", "boom 4")
    detail = engine.get_run(run_id)
    assert [json.loads(a.error)["message"] for a in detail.attempts] == [
        f"boom {n}" for n in range(5)
    ]
    assert detail.attempts[-1].retry_at is None
    [step] = detail.steps
    assert (step.status, step.attempts) == ("failed", 5)

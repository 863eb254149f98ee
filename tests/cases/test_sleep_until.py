"""`step.sleep_until` sleeps until an aware datetime (in any zone) and refuses a naive one,
whose zone would be a guess."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import parked, start, still

UNTIL = "case/until"
NAIVE = "case/naive"
# 2026-01-01 09:00 in Tokyo is 00:00 UTC: the fake clock starts at 2026-01-01 00:00 UTC.
WAKE = datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="until", triggers=[stepline.event(UNTIL)])
    def until(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep_until("wake", WAKE)
        ctx.step.run("after", calls.update, ["after"])

    @app.function(id="naive", triggers=[stepline.event(NAIVE)], retries=0)
    def naive(ctx: stepline.Context[Step]) -> str:
        try:
            ctx.step.sleep_until("wake", datetime(2026, 1, 2, 9, 0))
        except errors.InvalidInput as exc:
            return str(exc)
        return "accepted"

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="until", triggers=[stepline.event(UNTIL)])
    async def until(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.sleep_until("wake", WAKE)
        await ctx.step.run("after", calls.update, ["after"])

    @app.function(id="naive", triggers=[stepline.event(NAIVE)], retries=0)
    async def naive(ctx: stepline.Context[AsyncStep]) -> str:
        try:
            await ctx.step.sleep_until("wake", datetime(2026, 1, 2, 9, 0))
        except errors.InvalidInput as exc:
            return str(exc)
        return "accepted"

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_sleep_until_wakes_at_an_aware_datetime_in_another_zone(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))
    run_id = start(engine, UNTIL)

    parked(engine, run_id, "SLEEPING")
    [step] = engine.get_run(run_id).steps
    assert step.wake_at == WAKE
    clock.set(WAKE - timedelta(seconds=1))
    still(engine, run_id, "SLEEPING")
    clock.set(WAKE)

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", run.error
    assert calls["after"] == 1


@BUILDERS
def test_sleep_until_refuses_a_naive_datetime(
    build: Callable[[Counter[str]], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build(Counter()))

    run = engine.wait_for_run(start(engine, NAIVE), 10)

    assert run.status == "COMPLETED", run.error
    assert "naive datetime" in (run.output or "")
    assert engine.get_run(run.id).steps == []

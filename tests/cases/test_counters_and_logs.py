"""`ctx.count` and `ctx.log` outside steps are recorded once per run: not again when a later step
fails and the code before it is replayed for the retry, and not lost when a step fails for good
and the function catches the error and carries on."""

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

RETRIED = "case/retried"
CAUGHT = "case/caught"


def write(calls: Counter[str], fail_times: int) -> int:
    calls["write"] += 1
    if calls["write"] <= fail_times:
        raise RuntimeError("database is locked")
    return 3


def sync_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="retried", triggers=[stepline.event(RETRIED)])
    def retried(ctx: stepline.Context[Step]) -> None:
        rows = ctx.step.run("fetch", lambda: [1, 2, 3])
        ctx.count("fetched", len(rows))
        ctx.log.info("fetched %d rows", len(rows))
        ctx.count("inserted", ctx.step.run("write", write, calls, 1))

    @app.function(id="caught", triggers=[stepline.event(CAUGHT)], retries=0)
    def caught(ctx: stepline.Context[Step]) -> None:
        ctx.count("fetched", 3)
        ctx.log.info("fetched 3 rows")
        try:
            ctx.step.run("write", write, calls, 1)
        except stepline.StepError:
            ctx.count("failed")

    return app


def async_app(calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="retried", triggers=[stepline.event(RETRIED)])
    async def retried(ctx: stepline.Context[AsyncStep]) -> None:
        rows = await ctx.step.run("fetch", lambda: [1, 2, 3])
        ctx.count("fetched", len(rows))
        ctx.log.info("fetched %d rows", len(rows))
        ctx.count("inserted", await ctx.step.run("write", write, calls, 1))

    @app.function(id="caught", triggers=[stepline.event(CAUGHT)], retries=0)
    async def caught(ctx: stepline.Context[AsyncStep]) -> None:
        ctx.count("fetched", 3)
        ctx.log.info("fetched 3 rows")
        try:
            await ctx.step.run("write", write, calls, 1)
        except stepline.StepError:
            ctx.count("failed")

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_counts_and_logs_before_a_retried_step_are_recorded_once(
    build: Callable[[Counter[str]], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))

    run = drive(engine, clock, start(engine, RETRIED))

    assert run.status == "COMPLETED", run.error
    assert calls["write"] == 2
    assert json.loads(run.counters) == {"fetched": 3, "inserted": 3}
    assert [log.message for log in engine.get_run(run.id).logs] == ["fetched 3 rows"]


@BUILDERS
def test_counts_and_logs_before_a_caught_step_failure_are_kept(
    build: Callable[[Counter[str]], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(calls))

    run = engine.wait_for_run(start(engine, CAUGHT), 10)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.counters) == {"fetched": 3, "failed": 1}
    assert [log.message for log in engine.get_run(run.id).logs] == ["fetched 3 rows"]

"""Counters, logs and progress reported between steps show while the next step runs, and
count once even when the run sleeps or waits after them and the code before is replayed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.store.base import RunRecord
from tests.engine.support import drive, eventually, start

SLEEPY = "case/sleepy"
SLOW = "case/slow"


def sync_app(gate: threading.Event) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="sleepy", triggers=[stepline.event(SLEEPY)])
    def sleepy(ctx: stepline.Context) -> None:
        ctx.count("fetched", ctx.step.run("fetch", lambda: 3))
        ctx.log.info("fetched")
        ctx.step.sleep("nap", "1m")
        ctx.step.wait_for_event("approval", event="case/none", timeout="1m")

    @app.function(id="slow", triggers=[stepline.event(SLOW)])
    def slow(ctx: stepline.Context) -> None:
        ctx.count("pages", ctx.step.run("page-1", lambda: 1))
        ctx.progress(1, 2, "page 1 of 2")
        ctx.step.run("page-2", gate.wait, 10)

    return app


def async_app(gate: threading.Event) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="sleepy", triggers=[stepline.event(SLEEPY)])
    async def sleepy(ctx: stepline.AsyncContext) -> None:
        ctx.count("fetched", await ctx.step.run("fetch", lambda: 3))
        ctx.log.info("fetched")
        await ctx.step.sleep("nap", "1m")
        await ctx.step.wait_for_event("approval", event="case/none", timeout="1m")

    @app.function(id="slow", triggers=[stepline.event(SLOW)])
    async def slow(ctx: stepline.AsyncContext) -> None:
        ctx.count("pages", await ctx.step.run("page-1", lambda: 1))
        ctx.progress(1, 2, "page 1 of 2")
        await ctx.step.run("page-2", gate.wait, 10)

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_counts_before_a_sleep_and_a_wait_are_recorded_once(
    build: Callable[[threading.Event], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build(threading.Event()))

    run = drive(engine, clock, start(engine, SLEEPY))

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.counters) == {"fetched": 3}
    assert [log.message for log in engine.get_run(run.id).logs] == ["fetched"]


@BUILDERS
def test_counters_and_progress_show_while_the_next_step_runs(
    build: Callable[[threading.Event], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    gate = threading.Event()
    engine = make_engine(build(gate))
    run_id = start(engine, SLOW)
    try:

        def saved() -> RunRecord | None:
            run = engine.get_run(run_id).run
            return run if run.progress_done is not None else None

        running = eventually(saved, what="progress saved while page-2 runs")
        assert running.status == "RUNNING"
        assert json.loads(running.counters) == {"pages": 1}
        assert running.progress_message == "page 1 of 2"
    finally:
        gate.set()
    done = engine.wait_for_run(run_id, 10)
    assert done.status == "COMPLETED", done.error
    assert json.loads(done.counters) == {"pages": 1}

"""`step.sleep` parks the run durably: it stays RUNNING with detail SLEEPING, frees its worker
slot, and resumes only once the clock passes the wake time ("30s", "1h30m" or a timedelta)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

import stepline
from stepline._durations import Duration
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, parked, start, still

EVENT = "case/nap"


def sync_app(duration: Duration, calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="nap", triggers=[stepline.event(EVENT)])
    def fn(ctx: stepline.Context[Step]) -> None:
        calls["before"] += 1
        ctx.step.sleep("nap", duration)
        ctx.step.run("after", calls.update, ["after"])

    return app


def async_app(duration: Duration, calls: Counter[str]) -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="nap", triggers=[stepline.event(EVENT)])
    async def fn(ctx: stepline.Context[AsyncStep]) -> None:
        calls["before"] += 1
        await ctx.step.sleep("nap", duration)
        await ctx.step.run("after", calls.update, ["after"])

    return app


@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
@pytest.mark.parametrize(
    ("duration", "length"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (timedelta(minutes=5), timedelta(minutes=5)),
    ],
    ids=["30s", "1h30m", "timedelta"],
)
def test_sleep_parks_the_run_until_the_clock_passes_the_wake_time(
    build: Callable[[Duration, Counter[str]], stepline.App],
    duration: Duration,
    length: timedelta,
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(build(duration, calls))
    began = clock.now()
    run_id = start(engine, EVENT)

    parked(engine, run_id, "SLEEPING")
    assert engine.worker.inflight == 0, "a sleeping run holds no worker slot"
    [step] = engine.get_run(run_id).steps
    assert (step.id, step.kind, step.status, step.wake_at) == (
        "nap",
        "sleep",
        "sleeping",
        began + length,
    )
    clock.advance(length - timedelta(seconds=1))
    still(engine, run_id, "SLEEPING")
    assert calls["after"] == 0
    clock.advance(1)

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", run.error
    assert calls == Counter(before=2, after=1)
    steps = engine.get_run(run_id).steps
    assert [(s.id, s.status) for s in steps] == [("nap", "completed"), ("after", "completed")]
    eventually(lambda: engine.store.get_run(run_id).detail is None, what="detail cleared")

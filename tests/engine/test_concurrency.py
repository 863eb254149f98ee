"""Many runs share a worker's slots: 50 runs on 8 slots all complete, `def` and `async def`
alike, and no more than 8 of them execute at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step

RUNS = 50
SLOTS = 8


class Gauge:
    """Counts how many step bodies run at the same moment, and the highest count seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1


def sync_app(gauge: Gauge) -> stepline.App:
    app = stepline.App("many")

    def work(n: int) -> int:
        gauge.enter()
        threading.Event().wait(0.02)
        gauge.leave()
        return n * 2

    @app.function(id="double", triggers=[stepline.event("many/go")])
    def double(ctx: stepline.Context[Step]) -> int:
        return ctx.step.run("work", work, ctx.event["data"]["n"])

    return app


def async_app(gauge: Gauge) -> stepline.App:
    app = stepline.App("many")

    async def work(n: int) -> int:
        gauge.enter()
        await asyncio.sleep(0.02)
        gauge.leave()
        return n * 2

    @app.function(id="double", triggers=[stepline.event("many/go")])
    async def double(ctx: stepline.Context[AsyncStep]) -> int:
        return await ctx.step.run("work", work, ctx.event["data"]["n"])

    return app


@pytest.mark.slow
@pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
def test_fifty_runs_on_eight_slots_all_complete(
    build: Callable[[Gauge], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    gauge = Gauge()
    engine = make_engine(build(gauge))

    event_ids = engine.send([{"name": "many/go", "data": {"n": n}} for n in range(RUNS)])

    outputs = []
    for event_id in event_ids:
        [run] = engine.operations.runs_for_event(event_id)
        done = engine.wait_for_run(run.id, 30)
        assert done.status == "COMPLETED", done.error
        outputs.append(done.output)
    assert outputs == [str(n * 2) for n in range(RUNS)]
    assert 1 < gauge.peak <= SLOTS

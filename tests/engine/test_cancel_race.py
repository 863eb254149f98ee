"""Cancelling runs while their worker finishes them: every cancel answers, none deadlocks.

A cancel that locked the run's row before its queue row deadlocked on PostgreSQL with a worker
finishing the same run (which locks the queue row first): PostgreSQL aborted one of the two,
so `POST /v1/runs/{id}/cancel` answered 503 now and then (seen by schemathesis).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunFilter

ROUNDS = 15
RUNS_PER_ROUND = 8  # the test engine's slots: all finish at once


def _app(started: threading.Semaphore, go: threading.Event) -> stepline.App:
    app = stepline.App("race")

    def work() -> str:
        started.release()
        go.wait(10)
        return "done"

    @app.function(id="quick", triggers=[stepline.event("race/go")], retries=0)
    def quick(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("work", work)

    return app


def test_cancels_racing_the_runs_end_all_succeed(make_engine: Callable[..., Engine]) -> None:
    started, go = threading.Semaphore(0), threading.Event()
    engine = make_engine(_app(started, go))
    with ThreadPoolExecutor(RUNS_PER_ROUND) as pool:
        for _ in range(ROUNDS):
            go.clear()
            engine.send([{"name": "race/go"} for _ in range(RUNS_PER_ROUND)])
            for _ in range(RUNS_PER_ROUND):
                assert started.acquire(timeout=10), "a run never started its step"
            runs = engine.store.list_runs(RunFilter(status="RUNNING", limit=100))
            assert len(runs) == RUNS_PER_ROUND
            go.set()  # the steps return and their runs end while the cancels arrive
            cancels = [pool.submit(engine.operations.cancel, run.id) for run in runs]
            for cancel in cancels:
                cancel.result(timeout=30)  # a deadlock victim raises StoreUnavailable here
            for run in runs:
                assert engine.wait_for_run(run.id, 10).status in ("CANCELLED", "COMPLETED")

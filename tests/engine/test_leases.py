"""Leases as the worker sees them: a resumed run shows no stale parked detail while it
executes, and a worker never claims a second copy of a run it is still executing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import eventually, parked, settle, start


def blocking_app(
    calls: Counter[str], entered: threading.Event, release: threading.Event
) -> stepline.App:
    app = stepline.App("leases")

    def block() -> str:
        calls["block"] += 1
        entered.set()
        release.wait(10)
        return "done"

    @app.function(id="nap-then-block", triggers=[stepline.event("leases/nap")])
    def nap_then_block(ctx: stepline.Context[Step]) -> str:
        ctx.step.sleep("nap", "10s")
        return ctx.step.run("block", block)

    @app.function(id="block", triggers=[stepline.event("leases/block")])
    def block_only(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("block", block)

    return app


def test_resumed_run_shows_no_parked_detail_while_it_executes(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    entered, release = threading.Event(), threading.Event()
    engine = make_engine(blocking_app(calls, entered, release))
    run_id = start(engine, "leases/nap")
    parked(engine, run_id, "SLEEPING")

    clock.advance(10)
    eventually(entered.is_set, what="the step after the sleep to start")
    try:
        run = engine.store.get_run(run_id)
        assert (run.status, run.detail) == ("RUNNING", None)
    finally:
        release.set()
    assert engine.wait_for_run(run_id, 10).status == "COMPLETED"


def test_worker_does_not_claim_a_run_it_is_still_executing(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    entered, release = threading.Event(), threading.Event()
    engine = make_engine(blocking_app(calls, entered, release))
    run_id = start(engine, "leases/block")
    eventually(entered.is_set, what="the step to start")

    # The clock jumps past the lease before the next heartbeat renews it.
    clock.advance(6)
    settle_seconds = 0.3
    threading.Event().wait(settle_seconds)
    release.set()

    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", run.error
    settle(engine)
    assert calls == Counter(block=1)

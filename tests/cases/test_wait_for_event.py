"""`step.wait_for_event` parks the run until a matching event arrives (by `match` field path or
an `if_` CEL expression over the trigger `event` and the awaited `async`), returns None on
timeout, and never counts an event sent before the wait began."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import parked, start, still

APPROVED = "case/approved"
PAYMENT = "case/payment"


def sync_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="by-match", triggers=[stepline.event("case/order")])
    def by_match(ctx: stepline.Context[Step]) -> dict[str, Any] | None:
        return ctx.step.wait_for_event("approval", event=APPROVED, timeout="1h", match="data.order")

    @app.function(id="by-if", triggers=[stepline.event("case/invoice")])
    def by_if(ctx: stepline.Context[Step]) -> dict[str, Any] | None:
        return ctx.step.wait_for_event(
            "payment", event=PAYMENT, timeout="1d", if_="async.data.amount > event.data.min"
        )

    @app.function(id="late-wait", triggers=[stepline.event("case/late")])
    def late_wait(ctx: stepline.Context[Step]) -> dict[str, Any] | None:
        ctx.step.sleep("first", "10s")
        return ctx.step.wait_for_event("approval", event=APPROVED, timeout="1h")

    return app


def async_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="by-match", triggers=[stepline.event("case/order")])
    async def by_match(ctx: stepline.Context[AsyncStep]) -> dict[str, Any] | None:
        return await ctx.step.wait_for_event(
            "approval", event=APPROVED, timeout="1h", match="data.order"
        )

    @app.function(id="by-if", triggers=[stepline.event("case/invoice")])
    async def by_if(ctx: stepline.Context[AsyncStep]) -> dict[str, Any] | None:
        return await ctx.step.wait_for_event(
            "payment", event=PAYMENT, timeout="1d", if_="async.data.amount > event.data.min"
        )

    @app.function(id="late-wait", triggers=[stepline.event("case/late")])
    async def late_wait(ctx: stepline.Context[AsyncStep]) -> dict[str, Any] | None:
        await ctx.step.sleep("first", "10s")
        return await ctx.step.wait_for_event("approval", event=APPROVED, timeout="1h")

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


def _output(engine: Engine, run_id: str) -> Any:
    run = engine.wait_for_run(run_id, 10)
    assert run.status == "COMPLETED", run.error
    return json.loads(run.output or "")


@BUILDERS
def test_wait_with_match_resumes_only_on_an_event_with_the_same_field(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    run_id = start(engine, "case/order", {"order": 17})
    parked(engine, run_id, "WAITING")

    engine.send({"name": APPROVED, "data": {"order": 18, "by": "bob"}})
    still(engine, run_id, "WAITING")
    [event_id] = engine.send({"name": APPROVED, "data": {"order": 17, "by": "ann"}})

    got = _output(engine, run_id)
    assert got["data"] == {"order": 17, "by": "ann"}
    assert got["id"] == event_id
    [step] = engine.get_run(run_id).steps
    assert (step.id, step.kind, step.status) == ("approval", "wait", "completed")


@BUILDERS
def test_wait_with_cel_condition_compares_awaited_and_trigger_events(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    run_id = start(engine, "case/invoice", {"min": 100})
    parked(engine, run_id, "WAITING")

    engine.send({"name": PAYMENT, "data": {"amount": 100}})
    engine.send({"name": PAYMENT, "data": {"currency": "EUR"}})
    still(engine, run_id, "WAITING")
    engine.send({"name": PAYMENT, "data": {"amount": 101}})

    assert _output(engine, run_id)["data"] == {"amount": 101}


@BUILDERS
def test_wait_returns_none_after_its_timeout(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(build())
    began = clock.now()
    run_id = start(engine, "case/order", {"order": 1})
    parked(engine, run_id, "WAITING")
    [step] = engine.get_run(run_id).steps
    assert step.wake_at == began + timedelta(hours=1)

    clock.advance(timedelta(minutes=59))
    still(engine, run_id, "WAITING")
    clock.advance(timedelta(minutes=1))

    assert _output(engine, run_id) is None
    [step] = engine.get_run(run_id).steps
    assert (step.status, step.output) == ("completed", "null")
    engine.send({"name": APPROVED, "data": {"order": 1}})
    assert engine.store.get_run(run_id).output == "null"


@BUILDERS
def test_event_sent_before_the_wait_began_does_not_count(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(build())
    run_id = start(engine, "case/late")
    parked(engine, run_id, "SLEEPING")
    engine.send({"name": APPROVED, "data": {"early": True}})

    clock.advance(10)
    parked(engine, run_id, "WAITING")
    still(engine, run_id, "WAITING")
    [event_id] = engine.send({"name": APPROVED, "data": {"early": False}})

    got = _output(engine, run_id)
    assert (got["id"], got["data"]) == (event_id, {"early": False})

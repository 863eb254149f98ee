"""`step.invoke`: another function's run as a step; its output, or a catchable `StepError`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import eventually, start
from tests.flow.support import completed

EVENT = "order/placed"


def children(app: stepline.App, gate: threading.Event) -> None:
    @app.function(id="tax")
    def tax(ctx: stepline.Context[Step]) -> dict[str, Any]:
        return {"tax": ctx.event["data"]["amount"] * 0.15}

    @app.function(id="broken", retries=0)
    def broken(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("explode", _explode)

    @app.function(id="slow")
    def slow(ctx: stepline.Context[Step]) -> str:
        ctx.step.run("wait", gate.wait, 30)
        return "late"


def _explode() -> None:
    raise ValueError("no tax today")


def sync_app(target: str, timeout: str | None, gate: threading.Event) -> stepline.App:
    app = stepline.App("shop")
    children(app, gate)

    @app.function(id="order", triggers=[stepline.event(EVENT)])
    def order(ctx: stepline.Context[Step]) -> Any:
        try:
            return ctx.step.invoke(
                "compute", function=target, data={"amount": 100}, timeout=timeout
            )
        except stepline.StepError as exc:
            return {"caught": exc.error_message}

    return app


def async_app(target: str, timeout: str | None, gate: threading.Event) -> stepline.App:
    app = stepline.App("shop")
    children(app, gate)

    @app.function(id="order", triggers=[stepline.event(EVENT)])
    async def order(ctx: stepline.Context[AsyncStep]) -> Any:
        try:
            return await ctx.step.invoke(
                "compute", function=target, data={"amount": 100}, timeout=timeout
            )
        except stepline.StepError as exc:
            return {"caught": exc.error_message}

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_invoke_returns_the_childs_output_and_links_both_runs(
    build: Callable[..., stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build("tax", None, threading.Event()))

    parent = completed(engine, start(engine, EVENT))

    assert parent.output is not None and '"tax":15.0' in parent.output
    [child] = [r for r in engine.list_runs() if r.function_id == "tax"]
    assert (child.trigger_kind, child.parent_run_id) == ("invoke", parent.id)
    [step] = engine.get_run(parent.id).steps
    assert (step.kind, step.status, step.hash) == ("invoke", "completed", child.parent_step)


@BUILDERS
def test_a_failed_child_raises_a_step_error_the_parent_can_catch(
    build: Callable[..., stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build("broken", None, threading.Event()))

    parent = completed(engine, start(engine, EVENT))

    [child] = [r for r in engine.list_runs() if r.function_id == "broken"]
    assert child.status == "FAILED"
    assert parent.output is not None and f"run {child.id} failed" in parent.output
    assert "no tax today" in parent.output


@BUILDERS
def test_an_unknown_function_fails_the_step(
    build: Callable[..., stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build("nope", None, threading.Event()))

    parent = completed(engine, start(engine, EVENT))

    assert parent.output is not None and "could not find function" in parent.output


@BUILDERS
def test_a_child_past_the_timeout_fails_the_step_and_keeps_running(
    build: Callable[..., stepline.App], make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    gate = threading.Event()
    engine = make_engine(build("slow", "1m", gate))
    parent_id = start(engine, EVENT)
    eventually(
        lambda: engine.store.get_run(parent_id).detail == "INVOKING" and not _busy_parent(engine),
        what="the parent to park on its invoke",
    )

    clock.advance(timedelta(minutes=1, seconds=1))
    parent = completed(engine, parent_id)

    assert parent.output is not None and "did not end in time" in parent.output
    [child] = [r for r in engine.list_runs() if r.function_id == "slow"]
    assert child.status == "RUNNING"
    gate.set()
    assert completed(engine, child.id).output == '"late"'
    assert engine.store.get_run(parent_id).output == parent.output, "settled once"


def _busy_parent(engine: Engine) -> bool:
    return engine.worker.inflight > 1  # the child holds one slot until the gate opens

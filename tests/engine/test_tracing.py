"""OpenTelemetry traces: a span per run and per step attempt, one trace across the whole run.

The run below retries a step, sleeps across a worker restart, invokes another function and
sends an event that starts a third; the `traceparent` given with its event is carried through
all of it. Spans are read from the OpenTelemetry SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import StatusCode

import stepline
from stepline.engine import tracing
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import drive, eventually, only_run, parked
from tests.engine.tracing_support import hex_span, in_memory_tracing, spans_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """Stepline tracing to an in-memory exporter for this test, off again afterwards."""
    with in_memory_tracing() as provider:
        yield provider


def traced_app(provider: TracerProvider | None) -> stepline.App:
    app = stepline.App("shop")
    failures: list[int] = []

    def flaky() -> str:
        if provider is not None:
            with provider.get_tracer("user code").start_as_current_span("charge card"):
                pass
        if not failures:
            failures.append(1)
            raise RuntimeError("card network down")
        return "charged"

    @app.function(id="order", triggers=[stepline.event("order/placed")])
    def order(ctx: stepline.Context[Step]) -> Any:
        charged = ctx.step.run("charge", flaky)
        ctx.step.sleep("cool-off", "10s")
        tax = ctx.step.invoke("tax", function="tax", data={"amount": 100})
        ctx.step.send_event("notify", {"name": "order/charged", "data": {"tax": tax}})
        return charged

    @app.function(id="tax")
    def tax(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.run("compute", lambda: ctx.event["data"]["amount"] * 0.15)

    @app.function(id="receipt", triggers=[stepline.event("order/charged")])
    def receipt(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.run("mail", lambda: "sent")

    return app


def run_order(make_engine: Callable[..., Engine], clock: FakeClock, app: stepline.App) -> str:
    """Run `order` to its end: retry, then sleep across a worker restart, invoke, send."""
    first = make_engine(app)
    [event_id] = first.operations.send(
        {"name": "order/placed", "data": {}}, traceparent=TRACEPARENT
    )
    run_id = only_run(first, event_id).id
    retrying = parked(first, run_id, "RETRYING")
    assert retrying.detail == "RETRYING"
    due = first.store.next_due_at()
    assert due is not None
    clock.set(due)
    parked(first, run_id, "SLEEPING")
    first.worker.stop(grace_seconds=2)
    first.scheduler.stop()
    second = make_engine(app)  # a new worker takes the run up after the sleep
    ended = drive(second, clock, run_id)
    assert ended.status == "COMPLETED", ended.error
    [charged] = second.store.list_events("order/charged", 10, None)
    eventually(
        lambda: only_run(second, charged.internal_id).status == "COMPLETED",
        what="the receipt run to complete",
    )
    return run_id


def test_one_trace_through_retry_sleep_restart_invoke_and_send(
    make_engine: Callable[..., Engine], clock: FakeClock, provider: TracerProvider
) -> None:
    run_id = run_order(make_engine, clock, traced_app(provider))
    spans = spans_of(provider)
    assert {hex_span(span)[0] for span in spans} == {TRACE_ID}  # one trace

    def named(name: str) -> list[ReadableSpan]:
        return [span for span in spans if span.name == name]

    [order] = [
        s
        for s in spans
        if s.name.startswith("run ")
        and s.attributes is not None
        and s.attributes["stepline.run_id"] == run_id
    ]
    assert hex_span(order)[2] == PARENT_ID  # continues the caller's trace
    assert order.attributes is not None and order.attributes["stepline.outcome"] == "completed"
    order_id = hex_span(order)[1]

    failed, succeeded = sorted(named("step charge"), key=lambda s: s.start_time or 0)
    assert failed.attributes is not None and succeeded.attributes is not None
    assert (failed.attributes["stepline.attempt"], failed.attributes["stepline.outcome"]) == (
        1,
        "retry",
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]
    assert (succeeded.attributes["stepline.attempt"], succeeded.attributes["stepline.outcome"]) == (
        2,
        "ok",
    )
    assert failed.attributes["stepline.run_id"] == run_id
    assert {hex_span(failed)[2], hex_span(succeeded)[2]} == {order_id}
    # the user's own spans nest under the attempt they ran in
    assert sorted(hex_span(s)[2] or "" for s in named("charge card")) == sorted(
        [hex_span(failed)[1], hex_span(succeeded)[1]]
    )

    [tax_run] = [s for s in spans if s.name.startswith("run ") and "tax" in s.name]
    [receipt_run] = [s for s in spans if s.name.startswith("run ") and "receipt" in s.name]
    assert hex_span(tax_run)[2] == order_id  # the invoked run continues the trace
    assert hex_span(receipt_run)[2] == order_id  # so does the run an event sent by a step starts
    [compute] = named("step compute")
    [mail] = named("step mail")
    assert hex_span(compute)[2] == hex_span(tax_run)[1]
    assert hex_span(mail)[2] == hex_span(receipt_run)[1]
    assert named("step cool-off") == []  # a sleep is no attempt


def test_no_tracing_configured_no_spans_and_events_untouched(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    tracing.configure(None)
    engine = make_engine(traced_app(None))
    [event_id] = engine.send({"name": "order/placed", "data": {}})
    run_id = only_run(engine, event_id).id
    ended = drive(engine, clock, run_id)
    assert ended.status == "COMPLETED", ended.error
    sent = engine.store.list_events("order/charged", 10, None)
    assert [json.loads(e.data) for e in sent] == [{"tax": 15.0}]


def test_async_step_spans_nest_the_users_and_end_the_run(
    make_engine: Callable[..., Engine], clock: FakeClock, provider: TracerProvider
) -> None:
    app = stepline.App("shop")

    async def work() -> str:
        with provider.get_tracer("user code").start_as_current_span("fetch"):
            await asyncio.sleep(0)
        return "done"

    @app.function(id="fetcher", triggers=[stepline.event("page/asked")])
    async def fetcher(ctx: stepline.Context[AsyncStep]) -> Any:
        return await ctx.step.run("fetch", work)

    engine = make_engine(app)
    [event_id] = engine.send({"name": "page/asked", "data": {}})
    run_id = only_run(engine, event_id).id
    assert drive(engine, clock, run_id).status == "COMPLETED"
    spans = {span.name: span for span in spans_of(provider)}
    run_trace, run_span, root = hex_span(spans["run fetcher"])
    assert root is None  # no traceparent given: the run is the trace's root
    assert hex_span(spans["step fetch"])[:1] + hex_span(spans["step fetch"])[2:] == (
        run_trace,
        run_span,
    )
    assert hex_span(spans["fetch"])[2] == hex_span(spans["step fetch"])[1]

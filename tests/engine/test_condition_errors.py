"""A CEL condition that fails to evaluate (division by zero, overflow, a type mismatch) is "no
match": it never fails intake, never refuses the unrelated events of the same request, and is
logged once with the function (or run) and the expression. Same for conditions of waits that
intake resumes and for events sent by `step.send_event`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunRecord
from tests.engine.support import eventually, only_run, parked, start

RATIO = "event.data.total / event.data.items > 100"


def shop() -> stepline.App:
    app = stepline.App("shop")

    @app.function(id="big-ratio", triggers=[stepline.event("shop/order", if_=RATIO)])
    def big_ratio(ctx: stepline.Context[Step]) -> Any:
        return "big"

    @app.function(id="any-order", triggers=[stepline.event("shop/order")])
    def any_order(ctx: stepline.Context[Step]) -> Any:
        return "any"

    @app.function(id="on-refund", triggers=[stepline.event("shop/refund")])
    def on_refund(ctx: stepline.Context[Step]) -> Any:
        return "refund"

    @app.function(id="waiter", triggers=[stepline.event("shop/wait")])
    def waiter(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.wait_for_event(
            "paid", event="shop/paid", timeout="1h", if_="async.data.total * async.data.n > 0"
        )

    @app.function(id="sender", triggers=[stepline.event("shop/send")])
    def sender(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.send_event(
            "fan-out", {"name": "shop/order", "data": {"total": 5, "items": 0}}
        )

    @app.function(id="bad-wait", triggers=[stepline.event("shop/bad-wait")], retries=0)
    def bad_wait(ctx: stepline.Context[Step]) -> Any:
        return ctx.step.wait_for_event(
            "paid", event="shop/paid", timeout="1h", if_="async.data.total * 2"
        )

    return app


def finished(engine: Engine, run_id: str) -> RunRecord:
    def probe() -> RunRecord | None:
        run = engine.store.get_run(run_id)
        return run if run.ended else None

    return eventually(probe, what=f"run {run_id} to end")


def functions_started(engine: Engine, event_id: str) -> set[str]:
    return {run.function_id for run in engine.operations.runs_for_event(event_id)}


def test_division_by_zero_in_a_filter_is_no_match_and_the_batch_is_accepted(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(shop())
    with caplog.at_level(logging.WARNING, logger="stepline.cel"):
        zero, big, refund, overflow, again = engine.send(
            [
                {"name": "shop/order", "data": {"total": 5, "items": 0}},
                {"name": "shop/order", "data": {"total": 500, "items": 2}},
                {"name": "shop/refund", "data": {}},
                {"name": "shop/order", "data": {"total": -(2**63), "items": -1}},
                {"name": "shop/order", "data": {"total": 7, "items": 0}},
            ]
        )
    assert functions_started(engine, zero) == {"any-order"}
    assert functions_started(engine, big) == {"any-order", "big-ratio"}
    assert functions_started(engine, refund) == {"on-refund"}
    assert functions_started(engine, overflow) == {"any-order"}
    assert functions_started(engine, again) == {"any-order"}
    failures = [r.getMessage() for r in caplog.records if r.name == "stepline.cel"]
    division = [m for m in failures if "ZeroDivisionError" in m]
    assert len(division) == 1, failures  # once, not once per event
    assert "function 'big-ratio'" in division[0]
    assert RATIO in division[0]
    assert any("OverflowError" in m for m in failures), failures


def test_a_failing_wait_condition_does_not_fail_intake_and_a_good_event_still_resumes(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(shop())
    run_id = start(engine, "shop/wait")
    parked(engine, run_id, "WAITING")
    [overflowing] = engine.send({"name": "shop/paid", "data": {"total": 2**62, "n": 4}})
    assert engine.store.get_run(run_id).detail == "WAITING"
    [paying] = engine.send({"name": "shop/paid", "data": {"total": 3, "n": 1}})
    run = finished(engine, run_id)
    assert run.status == "COMPLETED"
    assert run.output is not None and paying in run.output and overflowing not in run.output


def test_an_event_sent_by_a_step_is_routed_past_a_failing_filter(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(shop())
    run_id = start(engine, "shop/send")
    run = finished(engine, run_id)
    assert run.status == "COMPLETED", run.error
    assert run.output is not None
    [sent_id] = json.loads(run.output)
    assert only_run(engine, sent_id).function_id == "any-order"


def test_a_wait_condition_that_can_never_be_boolean_fails_the_run_naming_if_(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(shop())
    run_id = start(engine, "shop/bad-wait")
    run = finished(engine, run_id)
    assert run.status == "FAILED"
    assert run.error is not None
    assert "if_: CEL condition 'async.data.total * 2' can never be true or false" in run.error

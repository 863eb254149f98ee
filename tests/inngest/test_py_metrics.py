"""An SDK app's steps count in the worker's metrics as Python functions' do (both stores): each
attempt by outcome (a failure retried, then completed; a failure for good) and the runs' ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import inngest
from prometheus_client import generate_latest

from tests.inngest.conftest import Stepline, pay_declined_once
from tests.server.metrics_support import Scrape


def test_sdk_step_attempts_and_run_ends_are_counted(
    stepline: Stepline, py_app: Callable[[inngest.Inngest, Sequence[Any]], str]
) -> None:
    client = stepline.client("shop")
    pay = pay_declined_once(client)

    def always_declined() -> str:
        raise RuntimeError("declined")

    @client.create_function(
        fn_id="refuse", trigger=inngest.TriggerEvent(event="shop/refuse"), retries=0
    )
    def refuse(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("charge", always_declined)

    stepline.sync(py_app(client, [pay, refuse]))
    paid = stepline.run_of(stepline.send("shop/pay"))
    refused = stepline.run_of(stepline.send("shop/refuse"))
    found = Scrape(generate_latest(stepline.engine.metrics).decode())

    assert (paid.status, refused.status) == ("COMPLETED", "FAILED")
    attempts = "stepline_step_attempts_total"
    assert found.value(attempts, function=paid.function_id, outcome="retried") == 1
    assert found.value(attempts, function=paid.function_id, outcome="completed") == 1
    assert found.value(attempts, function=refused.function_id, outcome="failed") == 1
    assert found.value("stepline_step_duration_seconds_count", function=paid.function_id) == 2
    ended = "stepline_runs_ended_total"
    assert found.value(ended, function=paid.function_id, status="COMPLETED") == 1
    assert found.value(ended, function=refused.function_id, status="FAILED") == 1
    assert found.value("stepline_runs_started_total", function=paid.function_id) == 1

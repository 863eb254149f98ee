"""Runs of Python SDK functions: steps memoized across calls, sleeps, the function's result."""

from __future__ import annotations

import datetime
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import inngest

from tests.inngest.conftest import Stepline


def test_steps_run_once_each_and_the_result_is_stored(
    stepline: Stepline, py_app: Callable[[inngest.Inngest, Sequence[Any]], str]
) -> None:
    client = stepline.client("shop")
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def count(name: str, value: Any) -> Any:
        with lock:
            calls[name] += 1
        return value

    @client.create_function(
        fn_id="receipt", trigger=inngest.TriggerEvent(event="shop/order.paid"), retries=0
    )
    def receipt(ctx: inngest.ContextSync) -> dict[str, Any]:
        charged = ctx.step.run(
            "charge", lambda: count("charge", {"total": ctx.event.data["total"]})
        )
        ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        sent = ctx.step.run("email", lambda: count("email", "sent"))
        return {"charged": charged, "sent": sent}

    stepline.sync(py_app(client, [receipt]))
    run = stepline.run_of(stepline.send("shop/order.paid", {"total": 5}))

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == {"charged": {"total": 5}, "sent": "sent"}
    assert calls == {"charge": 1, "email": 1}
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.kind, s.status) for s in steps] == [
        ("charge", "run", "completed"),
        ("nap", "sleep", "completed"),
        ("email", "run", "completed"),
    ]
    assert json.loads(steps[0].output or "null") == {"total": 5}

"""Rerun from a step works for SDK apps too: the reused steps go to the app as memoized state,
the rest run with the edited event data (the official Python SDK, both stores)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import inngest

from tests.inngest.conftest import Stepline

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]


def test_an_sdk_run_reruns_from_a_middle_step_with_edited_data(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("reruns")
    calls: Counter[str] = Counter()

    def act(name: str, value: Any) -> Any:
        calls[name] += 1
        return value

    @client.create_function(fn_id="sync", trigger=inngest.TriggerEvent(event="t/sync"))
    def fn(ctx: inngest.ContextSync) -> str:
        rows = ctx.step.run("fetch", lambda: act("fetch", ctx.event.data["n"]))
        doubled = ctx.step.run("transform", lambda: act("transform", rows * 2))
        loaded = ctx.step.run("load", lambda: act("load", f"{doubled} for {ctx.event.data['n']}"))
        return str(loaded)

    stepline.sync(py_app(client, [fn]))
    original = stepline.run_of(stepline.send("t/sync", {"n": 1}))
    assert original.status == "COMPLETED", original.error

    response = stepline.http.post(
        f"/v1/runs/{original.id}/rerun", json={"from_step": "transform", "data": {"n": 9}}
    )

    assert response.status_code == 201, response.text
    rerun = stepline.engine.wait_for_run(response.json()["data"]["run_id"], 20)
    assert rerun.status == "COMPLETED", rerun.error
    assert json.loads(rerun.output or "null") == "2 for 9"
    assert calls == Counter({"fetch": 1, "transform": 2, "load": 2})
    steps = stepline.engine.get_run(rerun.id).steps
    assert [(s.id, json.loads(s.output or "null")) for s in steps] == [
        ("fetch", 1),
        ("transform", 2),
        ("load", "2 for 9"),
    ]

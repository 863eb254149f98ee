"""The simplest durable run: an event starts a function whose steps complete in order."""

from __future__ import annotations

from collections.abc import Callable

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step


def test_event_runs_function_to_completion(make_engine: Callable[..., Engine]) -> None:
    app = stepline.App("smoke")

    @app.function(id="add", triggers=[stepline.event("demo/add")])
    def add(ctx: stepline.Context[Step]) -> dict[str, int]:
        a = ctx.step.run("first", lambda: ctx.event["data"]["a"])
        b = ctx.step.run("second", lambda x: x + 1, a)
        return {"b": b}

    engine = make_engine(app)
    [event_id] = engine.send({"name": "demo/add", "data": {"a": 41}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "COMPLETED"
    assert done.output == '{"b":42}'
    assert [s.id for s in engine.get_run(run.id).steps] == ["first", "second"]

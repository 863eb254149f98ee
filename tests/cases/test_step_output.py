"""A step's result is stored as JSON and handed back JSON-decoded (the same value on the first
execution and on every replay); a result that is not JSON fails the run, naming the step."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import start

DECODE = "case/decode"
BAD = "case/bad-output"


def pair() -> tuple[int, int]:
    return (1, 2)


def keyed() -> dict[int, str]:
    return {7: "seven"}


def when() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def describe(first: Any, second: Any) -> dict[str, Any]:
    return {"pair": [type(first).__name__, first], "keys": list(second)}


def sync_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="decode", triggers=[stepline.event(DECODE)])
    def decode(ctx: stepline.Context[Step]) -> dict[str, Any]:
        return describe(ctx.step.run("pair", pair), ctx.step.run("keyed", keyed))

    @app.function(id="bad-output", triggers=[stepline.event(BAD)])
    def bad_output(ctx: stepline.Context[Step]) -> None:
        ctx.step.run("load-timestamp", when)

    return app


def async_app() -> stepline.App:
    app = stepline.App("cases")

    @app.function(id="decode", triggers=[stepline.event(DECODE)])
    async def decode(ctx: stepline.Context[AsyncStep]) -> dict[str, Any]:
        return describe(await ctx.step.run("pair", pair), await ctx.step.run("keyed", keyed))

    @app.function(id="bad-output", triggers=[stepline.event(BAD)])
    async def bad_output(ctx: stepline.Context[AsyncStep]) -> None:
        await ctx.step.run("load-timestamp", when)

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])


@BUILDERS
def test_step_results_are_returned_json_decoded(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    run = engine.wait_for_run(start(engine, DECODE), 10)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "") == {"pair": ["list", [1, 2]], "keys": ["7"]}


@BUILDERS
def test_non_json_step_result_fails_the_run_naming_the_step(
    build: Callable[[], stepline.App], make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(build())
    run = engine.wait_for_run(start(engine, BAD), 10)

    assert run.status == "FAILED"
    error = json.loads(run.error or "")
    assert error["name"] == "StepOutputError"
    assert "'load-timestamp'" in error["message"]
    assert "JSON" in error["message"]
    detail = engine.get_run(run.id)
    assert [(s.id, s.status) for s in detail.steps] == [("load-timestamp", "failed")]
    assert len(detail.attempts) == 1, "a non-JSON result is not retried"

"""Dry runs: started by Run now, the API, the client or an event, they execute their steps but
send nothing (the events are recorded on the log), and pass the flag to invoked runs and
replays. Over HTTP: tests/server/test_api_dry_run.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunFilter
from tests.flow.support import completed

NOTICE = "dry/notice"
SEND = "dry/send.requested"


def dry_app(seen: list[Any]) -> stepline.App:
    app = stepline.App("dry")

    @app.function(id="sender", triggers=[stepline.event(SEND)], retries=0)
    def sender(ctx: stepline.Context[Step]) -> dict[str, Any]:
        ids = ctx.step.send_event("notify", {"name": NOTICE, "data": {"who": "ann"}})
        child = ctx.step.invoke("ask-child", function="child", data={"x": 1})
        return {"dry_run": ctx.dry_run, "ids": ids, "child": child}

    @app.function(id="child", retries=0)
    def child(ctx: stepline.Context[Step]) -> bool:
        return ctx.dry_run

    @app.function(id="script", retries=0)
    def script(ctx: stepline.Context[Step]) -> Any:
        command = ["sh", "-c", 'echo "dry=${STEPLINE_DRY_RUN:-0}"']
        return ctx.step.exec("report", command)["stdout_tail"]

    @app.function(id="noticed", triggers=[stepline.event(NOTICE)], retries=0)
    def noticed(ctx: stepline.Context[Step]) -> None:
        seen.append(ctx.event)

    return app


def _check_dry(engine: Engine, run_id: str, seen: list[Any]) -> None:
    run = completed(engine, run_id)
    output = json.loads(run.output or "null")
    assert run.dry_run and output["dry_run"] is True and output["child"] is True
    assert engine.store.list_events(NOTICE, 10, None) == []  # recorded, not sent
    detail = engine.get_run(run_id)
    [line] = [log for log in detail.logs if "dry run: not sent" in log.message]
    assert NOTICE in line.message and '"who": "ann"' in line.message and line.step_id == "notify"
    [child] = detail.children
    assert child.dry_run
    assert seen == []


def test_a_dry_run_started_by_invoke_sends_nothing_and_passes_the_flag_on(
    make_engine: Callable[..., Engine],
) -> None:
    seen: list[Any] = []
    engine = make_engine(dry_app(seen))

    run_id = engine.operations.invoke("sender", {}, by="test", dry_run=True)

    _check_dry(engine, run_id, seen)
    replayed = engine.replay(run_id)
    assert completed(engine, replayed).dry_run  # a replay of a dry run is one too


def test_an_event_asking_for_dry_runs_starts_them(make_engine: Callable[..., Engine]) -> None:
    seen: list[Any] = []
    engine = make_engine(dry_app(seen))

    [event_id] = engine.send({"name": SEND, "data": {"stepline/dry_run": True}})

    [run] = engine.operations.runs_for_event(event_id)
    _check_dry(engine, run.id, seen)


def test_a_real_run_sends_and_is_not_marked(make_engine: Callable[..., Engine]) -> None:
    seen: list[Any] = []
    engine = make_engine(dry_app(seen))

    [event_id] = engine.send({"name": SEND, "data": {"stepline/dry_run": "yes"}})  # not `true`

    [run] = engine.operations.runs_for_event(event_id)
    assert not completed(engine, run.id).dry_run
    assert len(engine.store.list_events(NOTICE, 10, None)) == 1
    assert engine.store.list_runs(RunFilter(dry_run=True)) == []


def test_a_dry_run_tells_its_commands(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(dry_app([]))

    dry = engine.operations.invoke("script", {}, dry_run=True)
    real = engine.operations.invoke("script", {})

    assert "dry=1" in json.dumps(json.loads(completed(engine, dry).output or "null"))
    assert "dry=0" in json.dumps(json.loads(completed(engine, real).output or "null"))

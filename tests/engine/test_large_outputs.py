"""Large step and run outputs go to the blob store; replays read them back; too large fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.engine.outputs import OutputLimits
from stepline.sdk.step import Step
from stepline.store import schema as t
from stepline.store.base import RunRecord, Store
from stepline.store.blobs import blob_ref
from tests.conftest import FAST_SETTINGS

SMALL_LIMITS = replace(FAST_SETTINGS, outputs=OutputLimits(inline_bytes=1024, max_bytes=64 * 1024))


def _rows(store: Store, table: Any) -> int:
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _wait_parked(engine: Engine, run_id: str) -> RunRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run = engine.store.get_run(run_id)
        if run.detail == "SLEEPING":
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not park: {engine.store.get_run(run_id)}")


def test_a_large_output_is_a_blob_that_a_replay_after_a_sleep_reads(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    app = stepline.App("big")
    report = {"rows": ["x" * 100] * 30}  # about 3 KiB of JSON: over the 1 KiB inline limit

    @app.function(id="report", triggers=[stepline.event("demo/report")])
    def fn(ctx: stepline.Context[Step]) -> dict[str, Any]:
        made = ctx.step.run("make", lambda: report)
        ctx.step.sleep("later", "1h")
        return {"copy": made, "rows": len(made["rows"])}

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/report", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    _wait_parked(engine, run.id)
    [made] = [s for s in engine.store.get_steps(run.id) if s.id == "make"]
    ref = blob_ref(made.output)
    assert ref is not None, made.output
    assert json.loads(engine.store.read_blob(ref)) == report
    clock.advance(3600)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "COMPLETED", done.error
    output_ref = blob_ref(done.output)
    assert output_ref is not None
    assert json.loads(engine.store.read_blob(output_ref)) == {"copy": report, "rows": 30}
    assert _rows(engine.store, t.blob_refs) == 2  # the step's blob and the run's


def test_outputs_under_the_inline_limit_stay_in_their_rows(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("small")

    @app.function(id="small", triggers=[stepline.event("demo/small")])
    def fn(ctx: stepline.Context[Step]) -> str:
        return ctx.step.run("s", lambda: "y" * 900)

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/small", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.output == json.dumps("y" * 900)
    assert _rows(engine.store, t.blobs) == 0


def test_an_output_over_the_limit_fails_its_step_once_naming_step_and_size(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("huge")
    calls: list[int] = []

    @app.function(id="huge", triggers=[stepline.event("demo/huge")], retries=3)
    def fn(ctx: stepline.Context[Step]) -> str:
        def make() -> str:
            calls.append(1)
            return "z" * 100_000

        return ctx.step.run("dump", make)

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/huge", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "FAILED"
    error = json.loads(done.error or "{}")
    assert "step 'dump'" in error["message"]
    assert "97.7 KiB" in error["message"] and "64 KiB" in error["message"]
    assert len(calls) == 1  # not retried
    [step] = engine.store.get_steps(run.id)
    assert step.status == "failed" and step.output is None
    assert _rows(engine.store, t.blobs) == 0


def test_a_result_over_the_limit_fails_the_run(make_engine: Callable[..., Engine]) -> None:
    app = stepline.App("huge-result")

    @app.function(id="huge-result", triggers=[stepline.event("demo/huge-result")])
    def fn(ctx: stepline.Context[Step]) -> str:
        return "r" * 70_000

    engine = make_engine(app, settings=SMALL_LIMITS)
    [event_id] = engine.send({"name": "demo/huge-result", "data": {}})
    [run] = engine.operations.runs_for_event(event_id)
    done = engine.wait_for_run(run.id, 10)
    assert done.status == "FAILED"
    assert "the function's result is 68.4 KiB" in json.loads(done.error or "{}")["message"]


def test_the_same_large_output_is_stored_once_and_held_by_each_run(
    make_engine: Callable[..., Engine],
) -> None:
    app = stepline.App("twice")

    @app.function(id="twice", triggers=[stepline.event("demo/twice")])
    def fn(ctx: stepline.Context[Step]) -> int:
        return len(ctx.step.run("same", lambda: ["same"] * 500))

    engine = make_engine(app, settings=SMALL_LIMITS)
    ids = engine.send([{"name": "demo/twice", "data": {}}, {"name": "demo/twice", "data": {}}])
    runs = [r for event_id in ids for r in engine.operations.runs_for_event(event_id)]
    for run in runs:
        assert engine.wait_for_run(run.id, 10).status == "COMPLETED"
    assert _rows(engine.store, t.blobs) == 1
    assert _rows(engine.store, t.blob_refs) == 2

"""Rerunning a run from one of its steps: a new run of trigger "rerun", linked to the original,
that keeps the stored results of the finished steps before that step and executes the rest,
with edited event data when given."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from stepline.store.base import RunFilter, RunRecord
from tests.engine.support import drive, eventually, only_run, start

EVENT = "case/sync.requested"
RUNS_OF_SYNC = RunFilter(function_id="sync", limit=100)


def pipeline_app(calls: Counter[str], failing: set[str]) -> stepline.App:
    """fetch → transform → load; each step counts its calls and fails once if it is `failing`."""
    app = stepline.App("cases")

    def act(name: str, value: Any) -> Any:
        calls[name] += 1
        if name in failing:
            failing.discard(name)
            raise stepline.NonRetriableError(f"{name} broke")
        return value

    @app.function(id="sync", triggers=[stepline.event(EVENT)], retries=0)
    def sync(ctx: stepline.Context[Step]) -> dict[str, Any]:
        rows = ctx.step.run("fetch", act, "fetch", ctx.event.data["n"])
        doubled = ctx.step.run("transform", act, "transform", rows * 2)
        loaded = ctx.step.run("load", act, "load", f"{doubled} for {ctx.event.data['n']}")
        return {"loaded": loaded, "trigger": ctx.trigger.kind, "by": ctx.trigger.by}

    return app


def step_outputs(engine: Engine, run_id: str) -> dict[str, Any]:
    return {s.id: json.loads(s.output) if s.output else None for s in engine.get_run(run_id).steps}


def test_rerun_from_a_middle_step_reuses_the_steps_before_it_and_runs_the_rest_with_new_data(
    make_engine: Callable[..., Engine],
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(pipeline_app(calls, set()))
    original = engine.wait_for_run(start(engine, EVENT, {"n": 1}), 10)
    assert original.status == "COMPLETED", original.error

    rerun_id = engine.operations.rerun(original.id, from_step="transform", data={"n": 10})
    rerun = engine.wait_for_run(rerun_id, 10)

    assert rerun.status == "COMPLETED", rerun.error
    assert calls == Counter({"fetch": 1, "transform": 2, "load": 2}), "fetch is reused"
    # fetch's stored result (1, from the original data) flows on; later steps see the new data
    assert json.loads(rerun.output or "") == {
        "loaded": "2 for 10",
        "trigger": "rerun",
        "by": original.id,
    }
    assert (rerun.trigger_kind, rerun.replay_of) == ("rerun", original.id)
    assert step_outputs(engine, rerun_id) == {"fetch": 1, "transform": 2, "load": "2 for 10"}
    [event] = engine.store.get_events(rerun.event_ids)
    assert (event.name, json.loads(event.data)) == (EVENT, {"n": 10})
    assert engine.get_run(original.id).run.event_ids == original.event_ids, "original untouched"
    first = engine.get_run(rerun_id).logs[0].message
    assert first == (
        f"Rerun of run {original.id} from step 'transform'; reused 1 earlier step(s): "
        "'fetch'; event data edited"
    )


def test_rerun_of_a_failed_run_from_its_failed_step_completes_without_redoing_earlier_steps(
    make_engine: Callable[..., Engine],
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(pipeline_app(calls, {"load"}))
    original = engine.wait_for_run(start(engine, EVENT, {"n": 3}), 10)
    assert original.status == "FAILED"

    rerun = engine.wait_for_run(engine.operations.rerun(original.id, from_step="load"), 10)

    assert rerun.status == "COMPLETED", rerun.error
    assert calls == Counter({"fetch": 1, "transform": 1, "load": 2})
    assert json.loads(rerun.output or "")["loaded"] == "6 for 3", "the original event's data"
    assert rerun.dry_run is False


def test_rerun_with_edited_data_and_no_step_executes_everything_again(
    make_engine: Callable[..., Engine],
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(pipeline_app(calls, set()))
    original = engine.wait_for_run(start(engine, EVENT, {"n": 1}), 10)

    rerun_id = engine.operations.rerun(original.id, data={"n": 4})
    rerun = engine.wait_for_run(rerun_id, 10)

    assert json.loads(rerun.output or "")["loaded"] == "8 for 4"
    assert calls == Counter({"fetch": 2, "transform": 2, "load": 2})
    assert engine.get_run(rerun_id).logs[0].message == (
        f"Rerun of run {original.id} from the start; event data edited"
    )


def test_rerun_keeps_or_changes_dry_run(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(pipeline_app(Counter(), set()))
    dry = engine.wait_for_run(start(engine, EVENT, {"n": 1, "stepline/dry_run": True}), 10)
    assert dry.dry_run

    kept = engine.wait_for_run(engine.operations.rerun(dry.id, from_step="load"), 10)
    real = engine.operations.rerun(dry.id, data={"n": 1}, dry_run=False)

    assert kept.dry_run
    assert engine.wait_for_run(real, 10).dry_run is False


def test_bad_reruns_are_refused_naming_the_problem(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(pipeline_app(Counter(), set()))
    original = engine.wait_for_run(start(engine, EVENT, {"n": 1}), 10)
    runs_before = len(engine.operations.list_runs(RUNS_OF_SYNC))

    with pytest.raises(errors.InvalidInput) as unknown:
        engine.operations.rerun(original.id, from_step="lod")
    with pytest.raises(errors.NotFound):
        engine.operations.rerun("01J0000000000000000000000X")
    engine.operations.pause("sync")
    with pytest.raises(errors.Conflict, match="paused"):
        engine.operations.rerun(original.id, from_step="load")

    assert unknown.value.field == "from_step"
    assert str(unknown.value) == (
        "from_step: no step 'lod' in the run; its steps: 'fetch', 'transform', 'load'"
    )
    assert len(engine.operations.list_runs(RUNS_OF_SYNC)) == runs_before, "nothing started"


def parallel_app(calls: Counter[str]) -> stepline.App:
    """prepare → parallel group of two branches → report."""
    app = stepline.App("cases")

    def act(name: str) -> str:
        calls[name] += 1
        return name

    @app.function(id="fan", triggers=[stepline.event(EVENT)])
    def fan(ctx: stepline.Context[Step]) -> list[str]:
        first = ctx.step.run("prepare", act, "prepare")
        both = ctx.step.parallel(
            "regions",
            [
                lambda: ctx.step.run("north", act, "north"),
                lambda: ctx.step.run("south", act, "south"),
            ],
        )
        return [first, *both, ctx.step.run("report", act, "report")]

    return app


@pytest.mark.parametrize(
    ("from_step", "executed_again"),
    [
        ("report", {"report"}),
        ("regions[1]/south", {"north", "south", "report"}),
        ("regions", {"north", "south", "report"}),
    ],
    ids=["after-the-group", "inside-a-branch", "the-group"],
)
def test_rerun_around_a_parallel_group(
    from_step: str, executed_again: set[str], make_engine: Callable[..., Engine]
) -> None:
    calls: Counter[str] = Counter()
    engine = make_engine(parallel_app(calls))
    original = engine.wait_for_run(start(engine, EVENT), 10)
    assert original.status == "COMPLETED", original.error
    before = Counter(calls)

    rerun = engine.wait_for_run(engine.operations.rerun(original.id, from_step=from_step), 10)

    assert rerun.status == "COMPLETED", rerun.error
    assert json.loads(rerun.output or "") == ["prepare", "north", "south", "report"]
    assert {name for name in calls if calls[name] > before[name]} == executed_again


def test_a_parallel_branch_is_not_rerun_on_its_own(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(parallel_app(Counter()))
    [event_id] = engine.send({"name": EVENT, "data": {}})
    run = engine.wait_for_run(only_run(engine, event_id).id, 10)
    branch = next(
        r for r in engine.operations.runs_for_event(event_id) if r.trigger_kind == "parallel"
    )

    with pytest.raises(errors.InvalidInput, match=f"branch of run {run.id}; rerun that run"):
        engine.operations.rerun(branch.id)


def test_rerun_after_a_sleep_does_not_sleep_again(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    app = stepline.App("cases")

    @app.function(id="nightly", triggers=[stepline.event(EVENT)])
    async def nightly(ctx: stepline.Context[AsyncStep]) -> int:
        await ctx.step.run("export", lambda: calls.update(["export"]))
        await ctx.step.sleep("cool-down", "1h")
        await ctx.step.run("import", lambda: calls.update(["import"]))
        return calls["import"]

    engine = make_engine(app)
    original = drive(engine, clock, start(engine, EVENT))
    assert original.status == "COMPLETED", original.error

    rerun_id = engine.operations.rerun(original.id, from_step="import")

    def ended() -> RunRecord | None:
        run = engine.store.get_run(rerun_id)
        return run if run.ended else None

    rerun = eventually(ended, what="the rerun to end (the clock stands still)")
    assert rerun.status == "COMPLETED", "the stored sleep is not slept again"
    assert calls == Counter({"export": 1, "import": 2})

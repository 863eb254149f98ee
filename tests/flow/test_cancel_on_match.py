"""`cancel_on` with `match`: the run's value is stored and found by index, compared as JSON."""

from __future__ import annotations

from collections.abc import Callable

import stepline
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunRecord
from tests.engine.support import eventually

START, CANCEL = "sync/requested", "sync/cancelled"


def napping_app(listener: stepline.CancelOn) -> stepline.App:
    app = stepline.App("syncs")

    @app.function(id="sync", triggers=[stepline.event(START)], cancel_on=[listener])
    def sync(ctx: stepline.Context[Step]) -> None:
        ctx.step.sleep("nap", "1h")

    return app


def napping(engine: Engine, data: dict[str, object]) -> RunRecord:
    [event_id] = engine.send({"name": START, "data": data})
    [run] = engine.operations.runs_for_event(event_id)

    def asleep() -> RunRecord | None:
        current = engine.store.get_run(run.id)
        return current if current.detail == "SLEEPING" else None

    return eventually(asleep, what="the run to sleep")


def status(engine: Engine, run: RunRecord) -> str:
    return engine.store.get_run(run.id).status


def test_one_event_cancels_only_the_run_with_its_value_among_many(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(napping_app(stepline.CancelOn(CANCEL, match="data.sync_id")))
    runs = [napping(engine, {"sync_id": f"s-{i}"}) for i in range(40)]

    [cancel_id] = engine.send({"name": CANCEL, "data": {"sync_id": "s-17"}})

    assert [r.id for r in runs if status(engine, r) == "CANCELLED"] == [runs[17].id]
    assert engine.store.get_run(runs[17].id).cancelled_by == cancel_id


def test_values_are_compared_as_json_so_5_is_not_the_string_5(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(napping_app(stepline.CancelOn(CANCEL, match="data.sync_id")))
    run = napping(engine, {"sync_id": 5})

    engine.send({"name": CANCEL, "data": {"sync_id": "5"}})
    assert status(engine, run) == "RUNNING"
    engine.send({"name": CANCEL, "data": {"sync_id": 5}})
    assert status(engine, run) == "CANCELLED"


def test_a_run_without_the_matched_field_cannot_be_cancelled_by_it(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(napping_app(stepline.CancelOn(CANCEL, match="data.sync_id")))
    run = napping(engine, {"other": 1})

    engine.send([{"name": CANCEL, "data": {}}, {"name": CANCEL, "data": {"sync_id": None}}])

    assert status(engine, run) == "RUNNING"


def test_other_conditions_are_evaluated_for_each_listener(
    make_engine: Callable[..., Engine],
) -> None:
    condition = "async.data.all == true || event.data.sync_id == async.data.sync_id"
    engine = make_engine(napping_app(stepline.CancelOn(CANCEL, if_=condition)))
    first, second = napping(engine, {"sync_id": "a"}), napping(engine, {"sync_id": "b"})

    engine.send({"name": CANCEL, "data": {"sync_id": "a", "all": False}})
    assert (status(engine, first), status(engine, second)) == ("CANCELLED", "RUNNING")
    engine.send({"name": CANCEL, "data": {"all": True}})
    assert status(engine, second) == "CANCELLED"

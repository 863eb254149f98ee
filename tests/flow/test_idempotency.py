"""`idempotency` (a CEL key) lets one run per key value start in 24 hours: a repeat is kept as a
SKIPPED run (detail IDEMPOTENCY) saying why; after 24 hours the key runs again; an event
without the key's field is not checked at all. Replays and reruns are not refused by it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunFilter
from tests.engine.support import only_run
from tests.flow.support import completed, skipped

EVENT = "flow/order.placed"


def ordering_app() -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="fulfil", triggers=[stepline.event(EVENT)], idempotency="event.data.order_id")
    def fulfil(ctx: stepline.Context[Step]) -> object:
        return ctx.event["data"].get("order_id")

    return app


def place(engine: Engine, **data: object) -> str:
    """Send one order event; its id."""
    [event_id] = engine.send({"name": EVENT, "data": data})
    return event_id


def test_the_same_order_twice_makes_one_run_and_one_skipped(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(ordering_app())

    first = only_run(engine, place(engine, order_id=7))
    clock.advance(3600)
    repeat = only_run(engine, place(engine, order_id=7))
    other = only_run(engine, place(engine, order_id=8))

    assert completed(engine, first.id).output == "7"
    skipped(repeat, "IDEMPOTENCY")
    assert repeat.reason == "idempotency: a run with key 7 started in the last 24h"
    assert completed(engine, other.id).output == "8"


def test_the_key_runs_again_after_24_hours(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(ordering_app())
    completed(engine, only_run(engine, place(engine, order_id="a-1")).id)

    clock.advance(24 * 3600 - 1)
    skipped(only_run(engine, place(engine, order_id="a-1")), "IDEMPOTENCY")
    clock.advance(1)

    assert completed(engine, only_run(engine, place(engine, order_id="a-1")).id).output == '"a-1"'


def test_numbers_and_text_are_different_keys(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(ordering_app())

    number = only_run(engine, place(engine, order_id=5))
    text = only_run(engine, place(engine, order_id="5"))

    assert completed(engine, number.id).output == "5"
    assert completed(engine, text.id).output == '"5"'


def test_an_event_without_the_field_is_not_checked(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(ordering_app())

    first = only_run(engine, place(engine, note="no order id"))
    second = only_run(engine, place(engine, note="no order id"))

    assert completed(engine, first.id).status == "COMPLETED"
    assert completed(engine, second.id).status == "COMPLETED"


def test_run_now_with_a_used_key_is_refused(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(ordering_app())
    completed(engine, engine.invoke("fulfil", {"order_id": 9}))

    with pytest.raises(errors.Conflict, match="idempotency: a run with key 9"):
        engine.invoke("fulfil", {"order_id": 9})

    assert len(engine.list_runs()) == 1


def test_replays_and_reruns_repeat_the_order_on_purpose_and_leave_the_key_taken(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(ordering_app())
    first = completed(engine, only_run(engine, place(engine, order_id=9)).id)

    replayed = completed(engine, engine.replay(first.id))
    rerun = completed(engine, engine.operations.rerun(first.id))
    edited = completed(engine, engine.operations.rerun(first.id, data={"order_id": 10}))
    bulk = engine.operations.replay_matching(RunFilter(function_id="fulfil", status="COMPLETED"))

    assert (replayed.output, rerun.output, edited.output) == ("9", "9", "10")
    assert bulk == 4
    skipped(only_run(engine, place(engine, order_id=9)), "IDEMPOTENCY")
    assert completed(engine, only_run(engine, place(engine, order_id=10)).id).output == "10"

"""`debounce` starts one run `period` after the last trigger of a key, with that last event:
each superseded event is listed with a SKIPPED run (detail DEBOUNCED); `timeout` bounds the
delay since the first trigger; each key value is debounced on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import after, only_run
from tests.flow.support import completed, queued, runs_of, skipped

EVENT = "flow/stock.changed"


def settling_app(debounce: stepline.Debounce) -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="reindex", triggers=[stepline.event(EVENT)], debounce=debounce)
    def reindex(ctx: stepline.Context[Step]) -> Any:
        return [event["data"] for event in ctx.events]

    return app


def change(engine: Engine, **data: Any) -> str:
    """Send one event; its id."""
    [event_id] = engine.send({"name": EVENT, "data": data})
    return event_id


def test_two_triggers_a_second_apart_make_one_run_with_the_last_event(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(settling_app(stepline.Debounce(period="2s")))
    t = clock.now()

    first = change(engine, n=1)
    run = only_run(engine, first)
    queued(engine, run.id, "DEBOUNCING")
    clock.advance(1)
    second = change(engine, n=2)

    [superseded] = runs_of(engine, first)
    skipped(superseded, "DEBOUNCED")
    assert superseded.reason == f"debounced: superseded by event {second}"
    assert only_run(engine, second).id == run.id, "the second event joined the waiting run"
    clock.advance(1.9)
    queued(engine, run.id, "DEBOUNCING")
    clock.set(t + after(3))
    done = completed(engine, run.id)
    assert (done.started_at, done.output) == (t + after(3), '[{"n":2}]')
    assert done.event_ids == (second,)
    assert len(engine.list_runs()) == 2


def test_the_timeout_caps_the_delay_since_the_first_trigger(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(settling_app(stepline.Debounce(period="2s", timeout="3s")))
    t = clock.now()

    run = only_run(engine, change(engine, n=1))
    clock.advance(1.5)
    change(engine, n=2)
    clock.advance(1)
    change(engine, n=3)
    clock.set(t + after(2.9))
    queued(engine, run.id, "DEBOUNCING")
    clock.set(t + after(3))

    done = completed(engine, run.id)
    assert (done.started_at, done.output) == (t + after(3), '[{"n":3}]')


def test_each_key_is_debounced_on_its_own(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(settling_app(stepline.Debounce(period="2s", key="event.data.sku")))
    t = clock.now()

    apple = only_run(engine, change(engine, sku="apple", n=1))
    clock.advance(1)
    pear = only_run(engine, change(engine, sku="pear", n=2))
    assert pear.id != apple.id

    clock.advance(1)
    assert completed(engine, apple.id).started_at == t + after(2)
    queued(engine, pear.id, "DEBOUNCING")
    clock.advance(1)
    assert completed(engine, pear.id).started_at == t + after(3)


def test_a_trigger_after_the_run_started_waits_for_a_run_of_its_own(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(settling_app(stepline.Debounce(period="2s")))
    earlier = only_run(engine, change(engine, n=1))
    clock.advance(2)
    completed(engine, earlier.id)

    later = only_run(engine, change(engine, n=2))

    assert later.id != earlier.id
    queued(engine, later.id, "DEBOUNCING")
    clock.advance(2)
    assert completed(engine, later.id).output == '[{"n":2}]'

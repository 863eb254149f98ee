"""`rate_limit` caps runs per period per key: a trigger over the cap starts nothing but is kept
as a SKIPPED run (detail RATE_LIMITED) with its reason, listed among the event's runs; other
keys are not affected, and once the period has passed the key runs again. "Run now" over the
cap is refused with `Conflict`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import only_run
from tests.flow.support import completed, runs_of, skipped

EVENT = "flow/charge"


def charging_app(rate_limit: stepline.RateLimit) -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="charge", triggers=[stepline.event(EVENT)], rate_limit=rate_limit)
    def charge(ctx: stepline.Context[Step]) -> str:
        return str(ctx.event["data"].get("customer"))

    return app


def charge(engine: Engine, customer: str) -> str:
    """Send one event for `customer`; its id."""
    [event_id] = engine.send({"name": EVENT, "data": {"customer": customer}})
    return event_id


def test_a_trigger_over_the_limit_is_skipped_with_its_reason_and_listed_on_its_event(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    limit = stepline.RateLimit(limit=1, period="1h", key="event.data.customer")
    engine = make_engine(charging_app(limit))

    completed(engine, only_run(engine, charge(engine, "ann")).id)
    clock.advance(59 * 60)
    again = charge(engine, "ann")

    [run] = runs_of(engine, again)
    skipped(run, "RATE_LIMITED")
    assert run.reason == 'rate limit: 1 per 1h for key "ann" reached'
    assert (run.function_id, run.event_id) == ("charge", again)
    assert engine.operations.runs_for_event(again) == [run]


def test_other_keys_run_and_the_key_runs_again_after_the_period(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    limit = stepline.RateLimit(limit=1, period="1h", key="event.data.customer")
    engine = make_engine(charging_app(limit))

    completed(engine, only_run(engine, charge(engine, "ann")).id)
    skipped(only_run(engine, charge(engine, "ann")), "RATE_LIMITED")
    assert completed(engine, only_run(engine, charge(engine, "bob")).id).output == '"bob"'
    clock.advance(3600)
    assert completed(engine, only_run(engine, charge(engine, "ann")).id).output == '"ann"'
    skipped(only_run(engine, charge(engine, "ann")), "RATE_LIMITED")


def test_a_limit_of_two_lets_two_through_at_once(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(charging_app(stepline.RateLimit(limit=2, period="1m")))

    event_ids = engine.send([{"name": EVENT, "data": {"customer": c}} for c in "xyz"])

    first, second, third = (only_run(engine, event_id) for event_id in event_ids)
    completed(engine, first.id)
    completed(engine, second.id)
    skipped(third, "RATE_LIMITED")
    assert third.reason == "rate limit: 2 per 1m reached"


def test_run_now_over_the_limit_is_refused_and_stores_no_run(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(charging_app(stepline.RateLimit(limit=1, period="1h")))
    completed(engine, engine.invoke("charge"))

    with pytest.raises(errors.Conflict, match="rate limit: 1 per 1h reached") as refused:
        engine.invoke("charge")

    assert refused.value.run_id is None
    assert len(engine.list_runs()) == 1

"""`throttle` spreads run starts over its period: with limit 2 per 10 s, one run starts every
5 s (a burst lets that many start at once); triggers over the limit wait, none is dropped, and
each key value has its own pace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from tests.engine.support import after, only_run
from tests.flow.support import completed, queued

EVENT = "flow/paced"


def paced_app(throttle: stepline.Throttle) -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="paced", triggers=[stepline.event(EVENT)], throttle=throttle)
    def paced(ctx: stepline.Context[Step]) -> Any:
        return ctx.event["data"]["n"]

    return app


def send(engine: Engine, *data: dict[str, Any]) -> list[str]:
    """Send one event per `data` at the same moment; the ids of the runs they started."""
    event_ids = engine.send([{"name": EVENT, "data": d} for d in data])
    return [only_run(engine, event_id).id for event_id in event_ids]


def test_runs_over_the_limit_start_one_interval_apart(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(paced_app(stepline.Throttle(limit=2, period="10s")))
    t = clock.now()

    first, second, third = send(engine, {"n": 1}, {"n": 2}, {"n": 3})

    assert completed(engine, first).started_at == t
    queued(engine, second, "THROTTLED")
    clock.advance(4.9)
    queued(engine, second, "THROTTLED")
    clock.set(t + after(5))
    assert completed(engine, second).started_at == t + after(5)
    queued(engine, third, "THROTTLED")
    clock.advance(4.9)
    queued(engine, third, "THROTTLED")
    clock.set(t + after(10))
    done = completed(engine, third)
    assert (done.started_at, done.output) == (t + after(10), "3")


def test_a_burst_starts_that_many_at_once_then_keeps_the_pace(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(paced_app(stepline.Throttle(limit=2, period="10s", burst=2)))
    t = clock.now()

    first, second, third = send(engine, {"n": 1}, {"n": 2}, {"n": 3})

    assert completed(engine, first).started_at == t
    assert completed(engine, second).started_at == t
    queued(engine, third, "THROTTLED")
    clock.advance(5)
    assert completed(engine, third).started_at == t + after(5)


def test_each_key_has_its_own_pace(make_engine: Callable[..., Engine], clock: FakeClock) -> None:
    throttle = stepline.Throttle(limit=1, period="1m", key="event.data.customer")
    engine = make_engine(paced_app(throttle))
    t = clock.now()

    a1, a2, b1 = send(
        engine, {"n": 1, "customer": "a"}, {"n": 2, "customer": "a"}, {"n": 3, "customer": "b"}
    )

    assert completed(engine, a1).started_at == t
    assert completed(engine, b1).started_at == t, "customer b is not delayed by customer a"
    queued(engine, a2, "THROTTLED")
    clock.advance(60)
    assert completed(engine, a2).started_at == t + after(60)


def test_no_trigger_is_dropped(make_engine: Callable[..., Engine], clock: FakeClock) -> None:
    engine = make_engine(paced_app(stepline.Throttle(limit=3, period="1m")))
    t = clock.now()

    run_ids = send(engine, *({"n": n} for n in range(7)))

    for n, run_id in enumerate(run_ids):
        clock.set(t + timedelta(seconds=20 * n))
        done = completed(engine, run_id)
        assert (done.started_at, done.output) == (t + timedelta(seconds=20 * n), str(n))

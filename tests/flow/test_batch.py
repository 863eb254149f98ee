"""`batch_events` starts one run per batch: `max_size` events start it at once, fewer start it
`timeout` after the first; `ctx.events` holds the batch oldest first (`ctx.event` is the
first), in `def` and `async def` functions alike; each key value is batched on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import AsyncStep, Step
from tests.engine.support import after, only_run
from tests.flow.support import completed, queued

EVENT = "flow/parcel.scanned"


def sync_app(batch: stepline.Batch) -> stepline.App:
    app = stepline.App("flow")

    @app.function(id="ship", triggers=[stepline.event(EVENT)], batch_events=batch)
    def ship(ctx: stepline.Context[Step]) -> Any:
        parcels = ctx.step.run("parcels", lambda: [e["data"]["n"] for e in ctx.events])
        return {"first": ctx.event["data"]["n"], "parcels": parcels}

    return app


def async_app(batch: stepline.Batch) -> stepline.App:
    app = stepline.App("flow")

    async def numbers(events: list[dict[str, Any]]) -> list[int]:
        return [e["data"]["n"] for e in events]

    @app.function(id="ship", triggers=[stepline.event(EVENT)], batch_events=batch)
    async def ship(ctx: stepline.Context[AsyncStep]) -> Any:
        parcels = await ctx.step.run("parcels", numbers, ctx.events)
        return {"first": ctx.event["data"]["n"], "parcels": parcels}

    return app


BUILDERS = pytest.mark.parametrize("build", [sync_app, async_app], ids=["def", "async"])
BATCH = stepline.Batch(max_size=3, timeout="5s")


def scan(engine: Engine, n: int, **data: Any) -> str:
    """Send one event; its id."""
    [event_id] = engine.send({"name": EVENT, "data": {"n": n, **data}})
    return event_id


@BUILDERS
def test_a_full_batch_starts_one_run_at_once_with_every_event_in_order(
    build: Callable[[stepline.Batch], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build(BATCH))
    t = clock.now()

    first = scan(engine, 1)
    run = only_run(engine, first)
    queued(engine, run.id, "BATCHING")
    event_ids = [first, scan(engine, 2), scan(engine, 3)]

    done = completed(engine, run.id)
    assert done.started_at == t
    assert done.output == '{"first":1,"parcels":[1,2,3]}'
    assert done.event_ids == tuple(event_ids)
    assert [r.id for r in engine.list_runs()] == [run.id], "one run for the whole batch"


@BUILDERS
def test_a_partial_batch_starts_when_the_timeout_passes(
    build: Callable[[stepline.Batch], stepline.App],
    make_engine: Callable[..., Engine],
    clock: FakeClock,
) -> None:
    engine = make_engine(build(BATCH))
    t = clock.now()

    run = only_run(engine, scan(engine, 1))
    clock.advance(2)
    scan(engine, 2)
    clock.set(t + after(4.9))
    queued(engine, run.id, "BATCHING")
    clock.set(t + after(5))

    done = completed(engine, run.id)
    assert (done.started_at, done.output) == (t + after(5), '{"first":1,"parcels":[1,2]}')


def test_events_sent_together_fill_a_batch_and_the_next_event_starts_another(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(sync_app(BATCH))

    event_ids = engine.send([{"name": EVENT, "data": {"n": n}} for n in range(1, 5)])

    full = only_run(engine, event_ids[0])
    assert completed(engine, full.id).output == '{"first":1,"parcels":[1,2,3]}'
    rest = only_run(engine, event_ids[3])
    queued(engine, rest.id, "BATCHING")
    clock.advance(5)
    assert completed(engine, rest.id).output == '{"first":4,"parcels":[4]}'


def test_each_key_is_batched_on_its_own(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    batch = stepline.Batch(max_size=2, timeout="5s", key="event.data.depot")
    engine = make_engine(sync_app(batch))

    north = only_run(engine, scan(engine, 1, depot="north"))
    south = only_run(engine, scan(engine, 2, depot="south"))
    scan(engine, 3, depot="north")

    assert north.id != south.id
    assert completed(engine, north.id).output == '{"first":1,"parcels":[1,3]}'
    queued(engine, south.id, "BATCHING")
    clock.advance(5)
    assert completed(engine, south.id).output == '{"first":2,"parcels":[2]}'


def test_every_event_of_a_batch_lists_the_batch_run(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(sync_app(BATCH))

    event_ids = engine.send([{"name": EVENT, "data": {"n": n}} for n in range(1, 4)])

    run = completed(engine, only_run(engine, event_ids[0]).id)
    assert [only_run(engine, event_id).id for event_id in event_ids] == [run.id] * 3

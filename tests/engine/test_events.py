"""Events: the sender's id is an idempotency key for 24 hours, batches keep their order, and
every invalid event is refused with `InvalidInput` naming the field, storing nothing of the
batch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import stepline
from stepline import errors
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.sdk.step import Step
from stepline.store.base import RunFilter, Store

GOOD = {"name": "shop/order.placed", "data": {"order": 1}}


def shop() -> stepline.App:
    app = stepline.App("shop")

    @app.function(id="on-order", triggers=[stepline.event("shop/order.placed")])
    def on_order(ctx: stepline.Context[Step]) -> Any:
        return ctx.event["data"]

    return app


def test_same_event_id_is_stored_once_and_starts_one_run(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    engine = make_engine(shop())
    [first] = engine.send({**GOOD, "id": "order-1"})

    [second] = engine.send({**GOOD, "id": "order-1", "data": {"order": 2}})

    assert second == first
    [stored] = store.list_events(None, 10, None)
    assert (stored.internal_id, stored.id, stored.data) == (first, "order-1", '{"order":1}')
    assert len(engine.list_runs()) == 1
    assert engine.wait_for_run(engine.list_runs()[0].id, 10).output == '{"order":1}'


def test_repeated_id_within_one_batch_is_stored_once(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    engine = make_engine(shop())

    ids = engine.send([{**GOOD, "id": "dup"}, {**GOOD, "id": "dup"}])

    assert ids[0] == ids[1]
    assert len(store.list_events(None, 10, None)) == 1
    assert len(engine.list_runs()) == 1


def test_event_id_is_accepted_again_after_24_hours(
    make_engine: Callable[..., Engine], store: Store, clock: FakeClock
) -> None:
    engine = make_engine(shop())
    [first] = engine.send({**GOOD, "id": "order-1"})
    clock.advance(timedelta(hours=23, minutes=59))
    assert engine.send({**GOOD, "id": "order-1"}) == [first]

    clock.advance(timedelta(minutes=1, seconds=1))
    [later] = engine.send({**GOOD, "id": "order-1"})

    assert later != first
    assert {e.internal_id for e in store.list_events(None, 10, None)} == {first, later}
    assert len(engine.list_runs(RunFilter(function_id="on-order"))) == 2


def test_batch_send_returns_ids_in_order(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(shop())
    batch = [{"name": f"shop/e{n}", "data": {"n": n}} for n in range(5)]

    ids = engine.send(batch)

    assert len(set(ids)) == 5
    assert [engine.operations.get_event(i).name for i in ids] == [e["name"] for e in batch]


BAD_EVENTS: list[Any] = [
    pytest.param([GOOD, "not an event"], "events[1]", id="not-an-object"),
    pytest.param([GOOD, {"data": {}}], "events[1].name", id="missing-name"),
    pytest.param([GOOD, {"name": "  "}], "events[1].name", id="empty-name"),
    pytest.param([GOOD, {"name": "stepline/x"}], "events[1].name", id="reserved-prefix"),
    pytest.param([GOOD, {"name": "a", "data": [1]}], "events[1].data", id="data-not-object"),
    pytest.param([GOOD, {"name": "a", "ts": 1}], "events[1].ts", id="ts-too-old"),
    pytest.param([GOOD, {"name": "a", "ts": 10**15}], "events[1].ts", id="ts-too-new"),
    pytest.param([GOOD, {"name": "a", "colour": "red"}], "events[1]", id="unknown-field"),
    pytest.param(
        [GOOD, {"name": "a", "data": {"blob": "x" * (512 * 1024)}}],
        "events[1].data",
        id="oversized-data",
    ),
    pytest.param([GOOD, {"name": "a", "v": 2}], "events[1].v", id="v-not-a-string"),
    pytest.param([GOOD, {"name": "a", "ts": True}], "events[1].ts", id="ts-a-boolean"),
    pytest.param({"data": {}}, "event.name", id="single-missing-name"),
]


@pytest.mark.parametrize(("events", "field"), BAD_EVENTS)
def test_invalid_event_is_refused_naming_the_field_and_nothing_is_stored(
    events: Any, field: str, make_engine: Callable[..., Engine], store: Store
) -> None:
    engine = make_engine(shop())

    with pytest.raises(errors.InvalidInput) as raised:
        engine.send(events)

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert store.list_events(None, 10, None) == []
    assert engine.list_runs() == []


def test_an_empty_list_of_events_is_accepted_and_stores_nothing(
    make_engine: Callable[..., Engine], store: Store
) -> None:
    engine = make_engine(shop())

    assert engine.send([]) == []
    assert store.list_events(None, 10, None) == []


def test_unknown_event_field_is_named_in_the_message(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(shop())

    with pytest.raises(errors.InvalidInput, match=r"^events\[1\]: unknown field\(s\) \['colour'\]"):
        engine.send([GOOD, {"name": "a", "colour": "red"}])

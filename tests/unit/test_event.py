"""`stepline.Event` has typed attributes, reads like the mapping `{id, name, data, user, ts}`,
serialises as one, and cannot be changed."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any, cast

import pytest

import stepline
from stepline.sdk.context import RunHooks
from stepline.sdk.step import Step, StepBackend


def order() -> stepline.Event:
    return stepline.Event(
        id="order-17",
        name="shop/order.placed",
        data={"total": 12},
        user={"id": 3},
        ts=1_780_000_000_000,
    )


def test_attributes_and_mapping_access_agree() -> None:
    event = order()

    assert (event.id, event.name, event.data, event.user, event.ts) == (
        "order-17",
        "shop/order.placed",
        {"total": 12},
        {"id": 3},
        1_780_000_000_000,
    )
    assert event["data"]["total"] == event.get("data", {})["total"] == 12
    assert dict(event) == {
        "id": "order-17",
        "name": "shop/order.placed",
        "data": {"total": 12},
        "user": {"id": 3},
        "ts": 1_780_000_000_000,
    }
    assert sorted(event) == ["data", "id", "name", "ts", "user"]


def test_it_serialises_and_copies_as_the_mapping() -> None:
    event = order()

    assert json.loads(json.dumps(event)) == dict(event)
    assert json.loads(json.dumps(dict(event))) == dict(event)
    for twin in (pickle.loads(pickle.dumps(event)), copy.copy(event), copy.deepcopy(event)):
        assert isinstance(twin, stepline.Event)
        assert twin == event


def test_a_partial_mapping_fills_in_defaults() -> None:
    event = stepline.Event.of({"name": "job/start", "data": {"n": 1}})

    assert (event.id, event.name, event.data, event.user, event.ts) == (
        "",
        "job/start",
        {"n": 1},
        {},
        0,
    )


def _assign_attribute(event: stepline.Event) -> None:
    event.data = {}  # type: ignore[misc]


CHANGES: list[Callable[[stepline.Event], Any]] = [
    lambda e: e.__setitem__("data", {}),
    lambda e: e.__delitem__("data"),
    lambda e: e.update(data={}),
    lambda e: e.pop("data"),
    lambda e: e.popitem(),
    lambda e: e.setdefault("extra", 1),
    lambda e: e.clear(),
    lambda e: e.__ior__({"extra": 1}),
]


@pytest.mark.parametrize("change", CHANGES)
def test_it_cannot_be_changed(change: Callable[[stepline.Event], Any]) -> None:
    event = order()

    with pytest.raises(TypeError, match="read-only"):
        change(event)

    assert event == order()


def test_its_attributes_cannot_be_reassigned() -> None:
    event = order()

    with pytest.raises(AttributeError):
        _assign_attribute(event)
    with pytest.raises(AttributeError):
        event.extra = 1  # type: ignore[attr-defined]


def test_a_context_turns_mappings_into_events_and_defaults_to_a_manual_trigger() -> None:
    ctx = stepline.Context(
        events=[{"name": "job/start", "data": {"n": 1}}, order()],
        run_id="r-1",
        attempt=0,
        step=Step(cast(StepBackend, None)),  # no step is taken here
        hooks=cast(RunHooks, None),
    )

    assert isinstance(ctx.events, tuple)
    assert all(isinstance(event, stepline.Event) for event in ctx.events)
    assert ctx.event is ctx.events[0]
    assert ctx.event.data == {"n": 1}
    assert ctx.trigger == stepline.RunTrigger(kind="manual")

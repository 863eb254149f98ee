"""Routing sees every registry change committed before the event's transaction, whichever
process made it: two store objects on one database stand for two processes (a worker that
registers, servers that pause, resume and take events), with no pause in between."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from stepline.engine.events import build_event, new_id
from stepline.engine.routing import Routing
from stepline.store.base import FunctionRecord, NewRun, RunDelta, RunFilter, StepRecord, Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = "order.placed"
FULFIL = FunctionRecord(
    id="fulfil",
    app_id="shop",
    name="fulfil",
    config=json.dumps({"triggers": [{"event": EVENT}]}),
)


@pytest.fixture
def other(store: Store) -> Iterator[Store]:
    """A second store on the test's database: another process's view of it."""
    second: Store
    if isinstance(store, SqliteStore):
        second = SqliteStore(store.path)
    else:
        assert isinstance(store, PostgresStore)
        second = PostgresStore(store.url)
    yield second
    second.close()


def send(store: Store) -> str:
    [event_id] = store.ingest_events([build_event({"name": EVENT}, now=T0)], Routing(), T0)
    return event_id


def started(store: Store, event_id: str) -> list[str]:
    return [run.function_id for run in store.list_runs(RunFilter(event_id=event_id))]


def test_an_app_registered_through_one_process_routes_the_next_event_taken_by_another(
    store: Store, other: Store
) -> None:
    assert started(other, send(other)) == [], "nothing registered yet (and the registry read)"

    store.sync_functions("shop", [FULFIL], T0)

    assert started(other, send(other)) == ["fulfil"]


def test_pause_and_resume_through_one_process_apply_to_the_next_event_taken_by_another(
    store: Store, other: Store
) -> None:
    store.sync_functions("shop", [FULFIL], T0)
    assert started(other, send(other)) == ["fulfil"]

    store.set_function_paused("fulfil", True)
    assert started(other, send(other)) == [], "paused through the other process"

    store.set_function_paused("fulfil", False)
    assert started(other, send(other)) == ["fulfil"], "resumed through the other process"


def test_an_event_sent_by_a_step_is_routed_against_the_registry_as_of_its_commit(
    store: Store, other: Store
) -> None:
    sender = FunctionRecord(id="sender", app_id="ops", name="sender", config='{"triggers": []}')
    other.sync_functions("ops", [sender], T0)
    other.create_run(
        NewRun(id=new_id(), function_id="sender", trigger_kind="manual"), [], T0, Routing()
    )
    [claimed] = other.claim_runs("worker", 1, T0, 30.0, ["sender"])
    assert started(other, send(other)) == [], "the registry read before the app registers"

    store.sync_functions("shop", [FULFIL], T0)
    event = build_event({"name": EVENT}, now=T0)
    step = StepRecord(
        run_id=claimed.run.id,
        hash="send".ljust(40, "0"),
        id="send",
        kind="send_event",
        status="completed",
        position=0,
        started_at=T0,
        ended_at=T0,
        output="null",
    )
    other.commit_step(claimed.lease, step, RunDelta(), T0, events=[event], routing=Routing())

    assert started(other, event.internal_id) == ["fulfil"]

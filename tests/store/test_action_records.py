"""A person's actions recorded with what they acted on: a cancel's requester and reason, the
reason given for a replay (with the new run), and a pause's time, requester and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepline.engine.events import new_id
from stepline.engine.routing import Routing
from stepline.store.base import FlowPlan, FunctionRecord, NewRun, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FN = FunctionRecord(id="fn", app_id="app", name="fn", config='{"triggers": []}')


def new_run(store: Store, **values: object) -> str:
    run = NewRun(id=new_id(), function_id="fn", trigger_kind="manual", **values)  # type: ignore[arg-type]
    return store.create_run(run, [], T0, Routing())


def test_a_cancel_by_request_records_who_asked_and_why_once(store: Store) -> None:
    run_id = new_run(store)

    cancelled = store.cancel_run(run_id, T0, Routing(), by="dashboard", reason="vendor outage")
    again = store.cancel_run(run_id, T0 + timedelta(seconds=5), Routing(), by="api", reason="x")

    assert (cancelled.status, cancelled.reason) == ("CANCELLED", "cancelled by request")
    assert (cancelled.cancel_requested_by, cancelled.cancel_reason) == (
        "dashboard",
        "vendor outage",
    )
    assert again == cancelled, "an ended run keeps its first cancel's record"


def test_a_cancel_without_a_reason_records_the_requester_alone(store: Store) -> None:
    run_id = new_run(store)

    cancelled = store.cancel_run(run_id, T0, Routing(), by="api")

    assert (cancelled.cancel_requested_by, cancelled.cancel_reason) == ("api", None)


def test_a_bulk_cancel_records_the_request_on_each_active_run_only(store: Store) -> None:
    first, second, ended = new_run(store), new_run(store), new_run(store)
    store.cancel_run(ended, T0, Routing(), by="client")

    count = store.cancel_runs([first, second, ended], T0, Routing(), by="api", reason="bad deploy")

    assert count == 2
    for run_id in (first, second):
        run = store.get_run(run_id)
        assert (run.cancel_requested_by, run.cancel_reason) == ("api", "bad deploy")
    assert store.get_run(ended).cancel_requested_by == "client"


def test_a_run_started_with_a_reason_keeps_it_with_or_without_flow_control(store: Store) -> None:
    plain = new_run(store, trigger_reason="after the fix")
    flowed = new_run(store, trigger_reason="again", flow=FlowPlan(priority=5))
    none = new_run(store)

    assert store.get_run(plain).trigger_reason == "after the fix"
    assert store.get_run(flowed).trigger_reason == "again"
    assert store.get_run(none).trigger_reason is None


def test_a_pause_records_when_who_and_why_until_resumed(store: Store) -> None:
    store.sync_functions("app", [FN], T0)

    paused = store.set_function_paused("fn", True, T0, by="dashboard", reason="vendor outage")
    repeated = store.set_function_paused("fn", True, T0 + timedelta(hours=1), by="api")
    resumed = store.set_function_paused("fn", False, T0 + timedelta(hours=2))

    assert paused.paused
    assert (paused.paused_at, paused.paused_by, paused.pause_reason) == (
        T0,
        "dashboard",
        "vendor outage",
    )
    assert repeated == paused, "pausing a paused function keeps the first pause's record"
    assert not resumed.paused
    assert (resumed.paused_at, resumed.paused_by, resumed.pause_reason) == (None, None, None)
    assert store.list_functions() == [resumed]

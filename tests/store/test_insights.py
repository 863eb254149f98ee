"""The dashboard's reads: a function's run timings in a window, the runs each worker leases,
and events by name prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepline.engine.events import build_event, new_id
from stepline.engine.routing import Routing
from stepline.store.base import LeasedRun, NewRun, RunDelta, RunStatus, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(store: Store, function_id: str) -> str:
    run = NewRun(id=new_id(), function_id=function_id, trigger_kind="manual")
    return store.create_run(run, [], T0, Routing())


def _finish(store: Store, function_id: str, started: datetime, seconds: float, ok: bool) -> None:
    run_id = _run(store, function_id)
    [claimed] = [
        c for c in store.claim_runs("w", 10, started, 3600, [function_id]) if c.run.id == run_id
    ]
    status: RunStatus = "COMPLETED" if ok else "FAILED"
    ended = started + timedelta(seconds=seconds)
    store.finish_run(claimed.lease, status, RunDelta(), ended, output="1", routing=Routing())


def test_function_timings_are_the_runs_of_one_function_ended_in_the_window(store: Store) -> None:
    _finish(store, "fn", T0, 5, ok=True)  # ended before the window
    _finish(store, "fn", T0 + timedelta(hours=1), 2, ok=True)
    _finish(store, "fn", T0 + timedelta(hours=2), 7.5, ok=False)
    _finish(store, "other", T0 + timedelta(hours=1), 1, ok=True)

    timings = store.function_timings("fn", T0 + timedelta(minutes=30))

    assert [(t.status, t.seconds) for t in timings] == [("COMPLETED", 2.0), ("FAILED", 7.5)]
    assert timings[0].ended_at == T0 + timedelta(hours=1, seconds=2)
    assert store.function_timings("nothing", T0) == []


def test_leased_runs_name_their_worker_and_leave_out_queued_runs(store: Store) -> None:
    first, second = _run(store, "fn"), _run(store, "fn")
    store.claim_runs("worker-a", 1, T0, 60, ["fn"])
    queued = {first, second} - {r.run_id for r in store.leased_runs()}

    [leased] = store.leased_runs()

    assert leased == LeasedRun(
        run_id=({first, second} - queued).pop(), function_id="fn", worker_id="worker-a"
    )
    assert len(queued) == 1


def test_events_are_listed_by_name_prefix_case_sensitively(store: Store) -> None:
    names = ["shop/order.paid", "shop/order.refunded", "Shop/other", "shopping/cart", "ab%c"]
    events = [build_event({"name": n, "data": {}}, now=T0) for n in names]
    store.ingest_events(events, Routing(), T0)

    def listed(prefix: str) -> list[str]:
        return sorted(e.name for e in store.list_events(None, 50, None, name_prefix=prefix))

    assert listed("shop/") == ["shop/order.paid", "shop/order.refunded"]
    assert listed("shop") == ["shop/order.paid", "shop/order.refunded", "shopping/cart"]
    assert listed("a%") == []
    assert listed("ab%") == ["ab%c"]

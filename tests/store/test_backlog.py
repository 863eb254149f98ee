"""The metrics' backlog read: per function, the runs due and their lag, the runs flow control
holds back and why, and the longest step in flight; and the store's tally of its failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepline import errors
from stepline.engine.events import new_id
from stepline.engine.routing import Routing
from stepline.store.base import Backlog, Bucket, FlowPlan, Gather, NewRun, Slot, Store
from stepline.store.postgres import PostgresStore
from stepline.store.sqlite import SqliteStore
from stepline.store.tally import StoreTally

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(store: Store, function_id: str, at: datetime, flow: FlowPlan | None = None) -> str:
    run = NewRun(
        id=new_id(), function_id=function_id, trigger_kind="manual", flow=flow or FlowPlan()
    )
    return store.create_run(run, [], at, Routing())


def _backlog(store: Store, now: datetime) -> dict[str, Backlog]:
    return {item.function_id: item for item in store.backlog(now)}


def test_due_runs_are_counted_with_the_age_of_the_oldest_and_leased_ones_left_out(
    store: Store,
) -> None:
    _run(store, "busy", T0)
    _run(store, "busy", T0 + timedelta(seconds=20))
    leased = _run(store, "busy", T0 - timedelta(seconds=5))  # claimed first (oldest)
    [claimed] = store.claim_runs("w", 1, T0 + timedelta(seconds=30), 600, ["busy"])
    assert claimed.run.id == leased
    _run(store, "sleepy", T0 + timedelta(hours=1))  # not due yet
    store.extend_leases("w", [leased], T0 + timedelta(seconds=600), {leased: ("s1", T0)})

    found = _backlog(store, T0 + timedelta(seconds=60))

    assert found["busy"].due == 2
    assert found["busy"].oldest_due_at == T0
    assert found["busy"].step_since == T0
    assert "sleepy" not in found, "a run due later is not in the backlog"


def test_a_run_whose_lease_expired_is_due_again(store: Store) -> None:
    _run(store, "orphaned", T0)
    store.claim_runs("dead-worker", 1, T0, 30, ["orphaned"])

    assert "orphaned" not in _backlog(store, T0 + timedelta(seconds=10))
    assert _backlog(store, T0 + timedelta(seconds=60))["orphaned"].due == 1


def test_runs_held_back_by_flow_control_are_counted_by_reason(store: Store) -> None:
    throttle = FlowPlan(throttle=Bucket(key="t", limit=1, period_seconds=3600))
    _run(store, "throttled", T0, throttle)
    _run(store, "throttled", T0, throttle)  # delayed an hour
    debounce = FlowPlan(gather=Gather(kind="debounce", key="d", delay_seconds=30))
    _run(store, "debounced", T0, debounce)
    limited = FlowPlan(slots=(Slot(key="k", limit=1),))
    _run(store, "limited", T0, limited)
    _run(store, "limited", T0, limited)
    store.claim_runs("w", 1, T0, 600, ["limited"])  # holds key k's one slot

    found = _backlog(store, T0 + timedelta(seconds=1))

    assert found["throttled"].waiting == {"THROTTLED": 1}
    assert found["throttled"].due == 1, "the first run is due, not held back"
    assert found["debounced"].waiting == {"DEBOUNCING": 1}
    assert found["debounced"].due == 0
    assert found["limited"].waiting == {"CONCURRENCY": 1}
    assert found["limited"].due == 1, "held back by its key, but due: it counts in the lag"
    later = _backlog(store, T0 + timedelta(hours=2))
    assert later["throttled"].waiting == {}, "once due, a throttled run waits for a worker"
    assert later["throttled"].due == 2


def test_an_empty_queue_has_no_backlog(store: Store) -> None:
    assert store.backlog(T0) == []


def test_a_store_counts_its_failed_transactions_and_times_the_outage(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    unreachable = [
        SqliteStore(directory),  # SQLite cannot open a directory
        PostgresStore("postgresql://postgres@127.0.0.1:1/none"),
    ]
    for store in unreachable:
        with pytest.raises(errors.StoreUnavailable):
            store.list_functions()
        with pytest.raises(errors.StoreUnavailable):
            store.backlog(T0)
        assert store.tally.errors == 2
        assert store.tally.outage_seconds > 0
        store.close()


def test_the_tally_ends_an_outage_at_the_next_success_and_ignores_conflicts() -> None:
    now = [100.0]
    tally = StoreTally(clock=lambda: now[0])
    tally.failed(errors.Conflict("duplicate event id"))
    assert (tally.errors, tally.outage_seconds) == (0, 0.0)
    tally.failed(errors.StoreUnavailable("down"))
    now[0] += 4
    tally.failed(errors.StoreUnavailable("still down"))
    now[0] += 6
    assert tally.outage_seconds == 10.0, "an outage in progress counts"
    tally.succeeded()
    now[0] += 30
    assert (tally.errors, tally.outage_seconds) == (2, 10.0)
    tally.ended([("fn", "CANCELLED"), ("fn", "CANCELLED"), ("fn", "FAILED")])
    assert tally.runs_ended() == {("fn", "CANCELLED"): 2, ("fn", "FAILED"): 1}


def test_runs_ended_by_cancels_are_tallied_once_committed(store: Store) -> None:
    queued = _run(store, "fn", T0)
    store.cancel_run(queued, T0, Routing())
    store.cancel_run(queued, T0, Routing())  # a no-op on an ended run

    assert store.tally.runs_ended() == {("fn", "CANCELLED"): 1}

"""The Store contract the engine relies on: leases fence writers (a lost lease writes nothing),
a step is committed once, claims respect their limit and other owners' leases, and schema.py
is exactly what the migrations build."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from stepline import errors
from stepline.engine.events import new_id
from stepline.engine.routing import Routing
from stepline.store import schema
from stepline.store.base import (
    ClaimedRun,
    LogRecord,
    NewRun,
    RunDelta,
    StepRecord,
    Store,
)
from stepline.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE_SECONDS = 5.0


def new_runs(store: Store, count: int) -> list[str]:
    return [
        store.create_run(
            NewRun(id=new_id(), function_id="fn", trigger_kind="manual"), [], T0, Routing()
        )
        for _ in range(count)
    ]


def claim(store: Store, owner: str, at: datetime, limit: int = 10) -> list[ClaimedRun]:
    return store.claim_runs(owner, limit, at, LEASE_SECONDS, ["fn"])


def step(run_id: str, step_id: str = "fetch", output: str = '"ok"') -> StepRecord:
    return StepRecord(
        run_id=run_id,
        hash=step_id.ljust(40, "0")[:40],
        id=step_id,
        kind="run",
        status="completed",
        position=0,
        started_at=T0,
        ended_at=T0,
        output=output,
    )


def progress(run_id: str) -> RunDelta:
    return RunDelta(
        progress=(1, 2, "half"),
        counters={"inserted": 3},
        logs=[LogRecord(run_id=run_id, ts=T0, level="info", message="hello")],
    )


def test_commit_step_with_a_lost_lease_raises_lease_lost_and_writes_nothing(
    store: Store,
) -> None:
    [run_id] = new_runs(store, 1)
    [stale] = claim(store, "worker-a", T0)
    later = T0 + timedelta(seconds=LEASE_SECONDS + 1)
    [fresh] = claim(store, "worker-b", later)
    assert fresh.run.id == run_id

    with pytest.raises(errors.LeaseLost):
        store.commit_step(stale.lease, step(run_id), progress(run_id), later)
    with pytest.raises(errors.LeaseLost):
        store.finish_run(stale.lease, "COMPLETED", RunDelta(), later, output="1", routing=Routing())

    assert store.get_steps(run_id) == []
    assert [log.level for log in store.get_logs(run_id)] == ["reclaim"], "only the takeover's"
    run = store.get_run(run_id)
    assert (run.status, run.progress_done, run.counters) == ("RUNNING", None, "{}")
    store.commit_step(fresh.lease, step(run_id), progress(run_id), later)
    assert [s.id for s in store.get_steps(run_id)] == ["fetch"]


def sleep(run_id: str, status: str, wake_at: datetime) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        hash="nap".ljust(40, "0"),
        id="nap",
        kind="sleep",
        status=status,  # type: ignore[arg-type]
        position=0,
        started_at=T0,
        ended_at=None if status == "sleeping" else wake_at,
        output=None if status == "sleeping" else "null",
        wake_at=wake_at,
    )


def test_settling_a_parked_sleep_needs_the_lease(store: Store) -> None:
    [run_id] = new_runs(store, 1)
    [first] = claim(store, "worker-a", T0)
    wake = T0 + timedelta(seconds=1)
    parked = sleep(run_id, "sleeping", wake)
    delta = RunDelta(saved_before_step=0)
    store.park_run(first.lease, wake, delta, T0, detail="SLEEPING", step=parked)
    assert store.get_run(run_id).saved_before_step == 0, "saved with the park"
    [stale] = claim(store, "worker-a", wake)
    later = wake + timedelta(seconds=LEASE_SECONDS + 1)
    [fresh] = claim(store, "worker-b", later)

    with pytest.raises(errors.LeaseLost):
        store.commit_step(stale.lease, sleep(run_id, "completed", wake), RunDelta(), later)
    assert [s.status for s in store.get_steps(run_id)] == ["sleeping"]

    store.commit_step(fresh.lease, sleep(run_id, "completed", wake), RunDelta(), later)
    assert [(s.status, s.output) for s in store.get_steps(run_id)] == [("completed", "null")]
    with pytest.raises(errors.Conflict):
        store.commit_step(fresh.lease, sleep(run_id, "completed", wake), RunDelta(), later)


def test_committing_the_same_step_twice_raises_conflict(store: Store) -> None:
    [run_id] = new_runs(store, 1)
    [claimed] = claim(store, "worker-a", T0)
    store.commit_step(claimed.lease, step(run_id), RunDelta(), T0)

    with pytest.raises(errors.Conflict):
        store.commit_step(claimed.lease, step(run_id, output='"other"'), progress(run_id), T0)

    [stored] = store.get_steps(run_id)
    assert stored.output == '"ok"'
    assert store.get_logs(run_id) == [], "the failed commit wrote nothing"


def test_claim_leases_at_most_limit_and_never_another_owners_live_lease(store: Store) -> None:
    run_ids = new_runs(store, 5)

    first = claim(store, "worker-a", T0, limit=3)
    second = claim(store, "worker-b", T0, limit=10)
    third = claim(store, "worker-c", T0 + timedelta(seconds=LEASE_SECONDS - 0.1))

    assert len(first) == 3
    assert len(second) == 2
    assert {c.run.id for c in first} | {c.run.id for c in second} == set(run_ids)
    assert third == [], "no lease has expired yet"
    expired = claim(store, "worker-c", T0 + timedelta(seconds=LEASE_SECONDS))
    assert {c.run.id for c in expired} == set(run_ids)
    assert all(c.lease.owner == "worker-c" for c in expired)


def test_taking_over_an_expired_lease_says_so_in_the_runs_log(store: Store) -> None:
    [lost, kept] = new_runs(store, 2)
    claim(store, "worker-a", T0)
    renewed = T0 + timedelta(seconds=2 * LEASE_SECONDS)
    store.extend_leases("worker-a", [kept], renewed)
    taken_at = T0 + timedelta(seconds=LEASE_SECONDS + 3)

    assert [c.run.id for c in claim(store, "worker-b", taken_at)] == [lost]

    [line] = store.get_logs(lost)
    assert (line.level, line.ts, line.step_id) == ("reclaim", taken_at, None)
    assert line.message.startswith(
        "Worker worker-a stopped renewing its lease (it expired 3.0s before)"
    )
    assert "worker worker-b took the run over" in line.message
    assert store.get_logs(kept) == [], "a renewed lease is not taken over"
    assert claim(store, "worker-c", taken_at) == []
    assert len(store.get_logs(lost)) == 1, "one line per takeover"


def test_extend_leases_keeps_a_run_from_being_claimed(store: Store) -> None:
    [run_id] = new_runs(store, 1)
    claim(store, "worker-a", T0)
    renewed_until = T0 + timedelta(seconds=2 * LEASE_SECONDS)

    assert store.extend_leases("worker-a", [run_id], renewed_until) == set()
    assert store.extend_leases("worker-b", [run_id], renewed_until) == {run_id}

    assert claim(store, "worker-b", T0 + timedelta(seconds=LEASE_SECONDS + 1)) == []
    assert len(claim(store, "worker-b", renewed_until)) == 1


def test_a_heartbeat_records_the_step_in_flight_until_the_next_claim(store: Store) -> None:
    [run_id] = new_runs(store, 1)
    assert store.step_in_flight(run_id) is None
    claim(store, "worker-a", T0)
    until = T0 + timedelta(seconds=LEASE_SECONDS)
    since = T0 + timedelta(seconds=1)

    store.extend_leases("worker-a", [run_id], until, {run_id: ("download", since)})
    store.extend_leases("worker-b", [run_id], until, {run_id: ("intruder", since)})

    assert store.step_in_flight(run_id) == ("download", since)
    later = T0 + timedelta(seconds=LEASE_SECONDS + 1)  # worker-a's lease expired: reclaimed
    assert len(claim(store, "worker-b", later)) == 1
    assert store.step_in_flight(run_id) is None


def test_a_claimed_parallel_branch_carries_its_parent_runs_origin(store: Store) -> None:
    parent = store.create_run(
        NewRun(id=new_id(), function_id="fn", trigger_kind="manual", trigger_by="api"),
        [],
        T0,
        Routing(),
    )
    [claimed_parent] = claim(store, "worker-a", T0)
    branch = NewRun(
        id=new_id(),
        function_id="fn",
        trigger_kind="parallel",
        trigger_by=parent,
        parent_run_id=parent,
        parent_step="b".ljust(40, "0"),
    )
    store.create_run(branch, [], T0, Routing())

    [claimed_branch] = claim(store, "worker-b", T0)

    assert claimed_parent.origin == ("manual", "api")
    assert claimed_branch.run.id == branch.id
    assert claimed_branch.origin == ("manual", "api"), "the parent's, read with the claim"


def test_schema_py_matches_the_migrated_database(store: Store) -> None:
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn, warnings.catch_warnings():
        # The claim's index is on an expression, which neither reflection nor Alembic compares.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        context = MigrationContext.configure(conn)
        differences = compare_metadata(context, schema.metadata)

    assert differences == []


def test_a_worker_leaves_its_own_expired_leases_alone_while_it_executes_those_runs(
    store: Store,
) -> None:
    """Its heartbeat renews them; taking one over would start a second replay of a run whose
    first replay may still commit. Once the run is no longer executing there, it may, and
    another worker always may."""
    [run_id] = new_runs(store, 1)
    [claimed] = claim(store, "w1", T0)
    later = T0 + timedelta(seconds=LEASE_SECONDS + 1)

    assert store.claim_runs("w1", 10, later, LEASE_SECONDS, ["fn"], [run_id]) == []
    [mine_again] = store.claim_runs("w1", 10, later, LEASE_SECONDS, ["fn"])
    assert mine_again.run.id == run_id  # its replay ended without letting go: taken back

    even_later = later + timedelta(seconds=LEASE_SECONDS + 1)
    [theirs] = store.claim_runs("w2", 10, even_later, LEASE_SECONDS, ["fn"])
    assert theirs.run.id == run_id and claimed.lease.owner == "w1"

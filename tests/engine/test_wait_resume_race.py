"""An event resuming a wait while a worker commits that wait's timeout: both calls answer.

Intake resuming a wait used to lock the run's wait and step rows before its queue row, while a
worker committing the wait's timeout holds the queue row (its lease) and then deletes the wait:
PostgreSQL found a deadlock and aborted one of them, so the intake answered 503 (or the worker
lost its commit and the run waited a lease period). Exactly one of the two must win the wait.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from stepline import errors
from stepline.engine.events import build_event, new_id
from stepline.engine.routing import Routing
from stepline.store.base import (
    Lease,
    NewRun,
    NewWait,
    RunDelta,
    StepRecord,
    StepStatus,
    Store,
)

ROUNDS = 12
PAIRS = 8  # runs per round, each raced by one intake and one worker commit
T0 = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRES = T0 + timedelta(minutes=5)
WAIT_HASH = "wait".ljust(40, "0")
LEASE_SECONDS = 60.0


def _wait_step(run_id: str, status: StepStatus, output: str | None) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        hash=WAIT_HASH,
        id="approval",
        kind="wait",
        status=status,
        position=0,
        started_at=T0,
        ended_at=None if output is None else EXPIRES,
        output=output,
        wake_at=EXPIRES,
    )


def _waiting_runs(store: Store, prefix: str) -> list[str]:
    """PAIRS runs parked on `wait_for_event(f"{prefix}/{i}")`, expiring at EXPIRES."""
    run_ids = [
        store.create_run(
            NewRun(id=new_id(), function_id="fn", trigger_kind="manual"), [], T0, Routing()
        )
        for _ in range(PAIRS)
    ]
    claimed = {c.run.id: c for c in store.claim_runs("w1", PAIRS, T0, LEASE_SECONDS, ["fn"])}
    for i, run_id in enumerate(run_ids):
        wait = NewWait(
            step_hash=WAIT_HASH, event_name=f"{prefix}/{i}", expression=None, expires_at=EXPIRES
        )
        store.park_run(
            claimed[run_id].lease,
            EXPIRES,
            RunDelta(),
            T0,
            detail="WAITING",
            step=_wait_step(run_id, "waiting", None),
            wait=wait,
        )
    return run_ids


def _commit_timeout(store: Store, lease: Lease, go: threading.Barrier) -> bool:
    """A worker's commit of the wait's timeout; False if an event resolved the wait first."""
    go.wait(10)
    try:
        store.commit_step(
            lease,
            _wait_step(lease.run_id, "completed", "null"),
            RunDelta(),
            EXPIRES,
            consume_wait=True,
        )
    except errors.Conflict:
        return False
    return True


def _send(store: Store, name: str, go: threading.Barrier) -> None:
    """Intake of the awaited event, received a moment before the wait expires."""
    received = EXPIRES - timedelta(milliseconds=1)
    event = build_event({"name": name, "data": {"ok": True}}, now=received)
    go.wait(10)
    store.ingest_events([event], Routing(), received)


def test_events_racing_wait_timeouts_all_answer_and_one_side_wins(store: Store) -> None:
    with ThreadPoolExecutor(2 * PAIRS) as pool:
        for round_ in range(ROUNDS):
            prefix = f"race{round_}"
            run_ids = _waiting_runs(store, prefix)
            # The waits expire: a worker claims every run to commit its timeout.
            claimed = store.claim_runs("w2", PAIRS, EXPIRES, LEASE_SECONDS, ["fn"])
            leases = {c.run.id: c.lease for c in claimed}
            assert sorted(leases) == sorted(run_ids)
            gates = [threading.Barrier(2) for _ in run_ids]
            commits = [
                pool.submit(_commit_timeout, store, leases[run_id], gate)
                for run_id, gate in zip(run_ids, gates, strict=True)
            ]
            intakes = [
                pool.submit(_send, store, f"{prefix}/{i}", gate) for i, gate in enumerate(gates)
            ]
            for intake in intakes:
                intake.result(timeout=30)  # a deadlock victim raises StoreUnavailable here
            timed_out = [commit.result(timeout=30) for commit in commits]
            for run_id, timeout_won in zip(run_ids, timed_out, strict=True):
                [wait_step] = store.get_steps(run_id)
                resumed = wait_step.output is not None and json.loads(wait_step.output) is not None
                assert resumed != timeout_won, f"run {run_id}: the event or the timeout, not both"

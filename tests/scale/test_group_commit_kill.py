"""A worker SIGKILLed while its group commit holds the steps of several runs (issue 13).

The database's write path is held shut by the test (SQLite: the writer lock every Stepline
writer takes; PostgreSQL: a SHARE lock on `steps`, which step inserts wait for) while the
worker's slots finish their second steps, so those steps wait in the worker's group commit
(in the transaction under way, or queued for the next) and none can commit. The worker is
SIGKILLed there. None of those steps was committed, so each runs exactly
once more on the next worker; the first steps, committed before, never run again; every run
completes with both results.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from stepline.store.base import Store
from stepline.store.sqlite import SqliteStore
from tests.scale.support import (
    Cluster,
    eventually,
    executions,
    read_effects,
    start_workers,
    status_counts,
)

RUNS = 6
SECOND_STEP_SECONDS = 1.5  # long enough to shut the write path while every s2 runs


@contextmanager
def writes_held(store: Store) -> Iterator[None]:
    """Hold the store's write path shut until the block ends."""
    if isinstance(store, SqliteStore):
        import fcntl

        lock = store.path.with_name(f"{store.path.name}.writer-lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # (releases the lock)
        return
    with psycopg.connect(store.url) as conn:  # type: ignore[attr-defined]
        conn.execute("LOCK TABLE steps IN SHARE MODE")  # until this transaction ends
        yield
        conn.rollback()


def effects_of(cluster: Cluster, step: str) -> int:
    return sum(effect.step == step for effect in read_effects(cluster.effects))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_steps_held_in_a_killed_group_commit_run_once_more_and_no_other_step_does(
    store: Store, cluster: Cluster
) -> None:
    [first] = start_workers(store, cluster, 1, slots=RUNS, lease_seconds=3.0)
    cluster.server()
    for i in range(RUNS):
        cluster.send({"steps": 2, "seconds": [0, SECOND_STEP_SECONDS], "n": i})
    # s2 starts only once s1 committed: every s1 is saved when every s2 has begun.
    eventually(lambda: effects_of(cluster, "s2") == RUNS, what="every s2 to begin", timeout=30)

    with writes_held(store):
        # Each s2 ends and its commit queues behind the shut write path.
        time.sleep(SECOND_STEP_SECONDS + 1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

    start_workers(store, cluster, 1, slots=RUNS, lease_seconds=3.0)
    eventually(
        lambda: status_counts(store) == {"COMPLETED": RUNS},
        what="every run to complete on the second worker",
        timeout=60,
        pause=0.2,
    )
    done = executions(read_effects(cluster.effects))
    runs = {run_id for run_id, _ in done}
    assert len(runs) == RUNS
    for run_id in runs:
        assert done[(run_id, "s1")] == 1, "a step committed before the kill ran again"
        assert done[(run_id, "s2")] == 2, "a step held in the killed commit did not run again"
        assert json.loads(store.get_run(run_id).output or "null") == ["s1", "s2"]

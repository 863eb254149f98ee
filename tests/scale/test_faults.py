"""PostgreSQL restarts under load: workers and server ride it out. Every accepted event keeps
its run, every run completes, and a step runs again only if it was in flight when the database
went away (its commit failed)."""

from __future__ import annotations

import time

import httpx
import pytest

from stepline.store.base import Store
from tests.scale.pg_cluster import ThrowawayPostgres
from tests.scale.support import (
    Cluster,
    Sender,
    eventually,
    executions,
    read_effects,
    run_event_ids,
    start_workers,
    status_counts,
)

RUNS = 200
STEPS = 5
STEP_SECONDS = 0.1
SLOTS = 8
DOWN_SECONDS = 3.0


@pytest.fixture
def store(restartable_store: Store) -> Store:
    """The test stops PostgreSQL: its own server (`own_postgres`), never the machine's."""
    return restartable_store


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("restartable_store", ["postgres"], indirect=True)
def test_postgres_restart_under_load_loses_no_event_and_repeats_only_interrupted_steps(
    store: Store, cluster: Cluster, own_postgres: ThrowawayPostgres
) -> None:
    workers = start_workers(store, cluster, 2, slots=SLOTS, lease_seconds=3.0)
    cluster.server()
    sender = Sender(cluster, RUNS, {"steps": STEPS, "seconds": STEP_SECONDS}, pause=0.03)
    sender.start()
    eventually(
        lambda: len({e.run for e in read_effects(cluster.effects)}) >= 50,
        what="50 runs to be under way",
        timeout=30,
    )

    stopped_at = time.time()
    running = status_counts(store).get("RUNNING", 0)
    own_postgres.halt()
    time.sleep(DOWN_SECONDS)
    own_postgres.resume()
    back_at = time.time()

    sender.finish(60)
    eventually(
        lambda: status_counts(store) == {"COMPLETED": RUNS},
        what=f"all {RUNS} runs to complete after the restart",
        timeout=60,
        pause=0.2,
    )
    completed_after = time.time() - back_at

    runs = run_event_ids(store)
    assert set(sender.accepted.values()) <= set(runs), "an accepted event lost its run"
    effects = read_effects(cluster.effects)
    done = executions(effects)
    assert {(run, f"s{i}") for run in runs.values() for i in range(1, STEPS + 1)} == set(done)
    repeated = {pair for pair, n in done.items() if n > 1}
    print(
        f"\npostgres restart: {RUNS} runs, {len(effects)} step executions, {len(repeated)} "
        f"repeated, {running} running at the stop, {sender.failures} refused posts, "
        f"all done {completed_after:.1f}s after the restart"
    )
    # Only a step whose commit the restart cut off runs again: at most one per run in flight
    # (no more than every slot), each first begun before the database came back.
    assert len(repeated) <= 2 * SLOTS, repeated
    assert len({run for run, _ in repeated}) == len(repeated)
    for pair in repeated:
        first = min(e.at for e in effects if (e.run, e.step) == pair)
        assert stopped_at - 5 < first < back_at, (pair, first - stopped_at)
    assert httpx.get(f"{cluster.url}/health", timeout=5).status_code == 200
    assert len(cluster.get("/v1/runs?limit=10")) == 10
    assert all(w.poll() is None for w in workers), cluster.logs()

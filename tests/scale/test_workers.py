"""Scale-out with real processes: one `stepline server` and several `stepline worker`s share a
database; work spreads over the workers, the registry shows their load and liveness, SIGTERM
hands work over without losing or repeating a step, and a SIGKILLed worker turns stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from stepline.store.base import Store
from tests.scale.support import (
    COMMAND,
    Cluster,
    child_env,
    eventually,
    executions,
    read_effects,
    run_event_ids,
    start_workers,
    status_counts,
    stepline_cli,
)

RUNS = 100
STEPS = 5


def first_execution(cluster: Cluster, step: str) -> int:
    """The pid that began `step` of the only run, once it has."""
    return eventually(
        lambda: next((e.pid for e in read_effects(cluster.effects) if e.step == step), None),
        what=f"a worker to begin {step}",
        timeout=20,
    )


def only_run_ended(store: Store) -> bool:
    return status_counts(store).get("COMPLETED") == 1


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_two_worker_processes_complete_every_run_and_both_take_a_share(
    store: Store, cluster: Cluster
) -> None:
    workers = start_workers(store, cluster, 2, slots=4)
    cluster.server()

    accepted = [cluster.send({"steps": STEPS, "seconds": 0.02, "n": i}) for i in range(RUNS)]

    eventually(
        lambda: status_counts(store) == {"COMPLETED": RUNS},
        what=f"{RUNS} runs to complete",
        timeout=60,
        pause=0.2,
    )
    by_event = run_event_ids(store)
    assert set(accepted) <= set(by_event), "an accepted event has no run"
    effects = read_effects(cluster.effects)
    done = executions(effects)
    assert len(done) == RUNS * STEPS
    assert set(done.values()) == {1}, "a step ran twice without any crash"
    share = {w.pid: sum(e.pid == w.pid for e in effects) for w in workers}
    assert all(share.values()), f"a worker executed nothing: {share}"
    # Each worker says which runs it started and how they ended (the run lines of `stepline dev`).
    lines = [cluster.log(w) for w in workers]
    assert sum(log.count(" started (event ") for log in lines) == RUNS, cluster.logs()
    assert sum(log.count("✓ steps COMPLETED in ") for log in lines) == RUNS, cluster.logs()

    listed = {w["pid"]: w for w in cluster.workers()}
    assert set(listed) == {w.pid for w in workers}
    for worker in listed.values():
        assert worker["slots"] == 4
        assert 0 <= worker["inflight"] <= 4
        assert worker["seconds_since_heartbeat"] <= 3 * worker["heartbeat_seconds"], worker
        assert worker["alive"] is True
        assert worker["functions"] == ["steps"]
    shown = stepline_cli(cluster, "workers", "--json")
    assert {w["pid"]: w["alive"] for w in json.loads(shown)} == {w.pid: True for w in workers}
    table = stepline_cli(cluster, "workers")
    rows = [line for line in table.splitlines() if str(workers[0].pid) in line]
    assert len(rows) == 1 and " alive " in rows[0], table


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigterm_lets_the_running_step_commit_and_hands_the_rest_over(
    store: Store, cluster: Cluster
) -> None:
    [first] = start_workers(store, cluster, 1, slots=2, grace_seconds=15)
    cluster.server()
    # s1 lasts long enough for a second worker to start on a loaded machine before SIGTERM
    # (6 s was not always enough at a load of 11), and ends within the 15 s grace.
    cluster.send({"steps": STEPS, "seconds": [12.0, 0.5, 0.5, 0.5, 0.5]})
    assert first_execution(cluster, "s1") == first.pid
    [second] = start_workers(store, cluster, 1, slots=2)

    os.kill(first.pid, signal.SIGTERM)
    stopped_at = time.time()

    assert first.wait(15) == 0, cluster.log(first)
    exited_after = time.time() - stopped_at
    eventually(lambda: only_run_ended(store), what="the run to complete", timeout=30)
    effects = read_effects(cluster.effects)
    assert executions(effects) == {(effects[0].run, f"s{i}"): 1 for i in range(1, STEPS + 1)}
    assert [e.pid for e in effects if e.step == "s1"] == [first.pid]
    # Stopping, the worker finished the step it was in and started no other.
    assert all(e.at < stopped_at for e in effects if e.pid == first.pid), effects
    assert {e.pid for e in effects if e.step != "s1"} == {second.pid}
    assert exited_after < 15, exited_after
    eventually(
        lambda: first.pid not in {w["pid"] for w in cluster.workers()},
        what="the stopped worker to leave /v1/workers",
        timeout=5,
    )
    assert second.pid in {w["pid"] for w in cluster.workers()}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigterm_past_the_grace_period_releases_the_run_to_another_worker_at_once(
    store: Store, cluster: Cluster
) -> None:
    lease, grace = 30.0, 1.0
    [first] = start_workers(store, cluster, 1, slots=2, lease_seconds=lease, grace_seconds=grace)
    cluster.server()
    cluster.send({"steps": 2, "seconds": [25.0, 0.0]})
    assert first_execution(cluster, "s1") == first.pid
    [second] = start_workers(store, cluster, 1, slots=2, lease_seconds=lease, grace_seconds=grace)

    os.kill(first.pid, signal.SIGTERM)
    stopped_at = time.time()

    # The step outlives the grace period: the worker gives the run back and exits anyway.
    assert first.wait(grace + 8) == 0, cluster.log(first)
    exited_after = time.time() - stopped_at
    retried = eventually(
        lambda: next(
            (e for e in read_effects(cluster.effects) if e.pid == second.pid and e.step == "s1"),
            None,
        ),
        what="the other worker to take the released run",
        timeout=lease / 2,
    )
    taken_after = retried.at - stopped_at
    assert taken_after < grace + 3, taken_after  # released, not left until the lease expires
    assert exited_after < grace + 5, exited_after
    [run] = {e.run for e in read_effects(cluster.effects)}
    listed = cluster.get(f"/v1/runs/{run}")
    assert listed["status"] == "RUNNING"
    assert first.pid not in {w["pid"] for w in cluster.workers()}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigkilled_worker_stays_listed_but_turns_not_alive_within_three_heartbeats(
    store: Store, cluster: Cluster
) -> None:
    lease = 1.5  # a heartbeat every 0.5 s
    killed, survivor = start_workers(store, cluster, 2, slots=2, lease_seconds=lease)
    cluster.server()
    eventually(
        lambda: [w["alive"] for w in cluster.workers()] == [True, True],
        what="both workers alive",
        timeout=10,
    )

    os.kill(killed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert killed.wait(10) == -signal.SIGKILL

    def stale() -> dict[int, dict[str, object]] | None:
        listed = {w["pid"]: w for w in cluster.workers()}
        return listed if listed[killed.pid]["alive"] is False else None

    listed = eventually(stale, what="the killed worker to turn not alive", timeout=10)
    stale_after = time.monotonic() - killed_at
    heartbeat = float(str(listed[killed.pid]["heartbeat_seconds"]))
    assert heartbeat == pytest.approx(lease / 3)
    assert stale_after <= 3 * heartbeat + 1.0, stale_after
    assert listed[survivor.pid]["alive"] is True
    table = subprocess.run(
        [*COMMAND, "workers", "--url", cluster.url],
        env=child_env(cluster.effects),
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    [row] = [line for line in table.stdout.splitlines() if f":{killed.pid}:" in line]
    assert " stale " in row, table.stdout

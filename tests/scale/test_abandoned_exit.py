"""A `stepline worker` process whose steps never return: cancelling their runs leaves their slots
held by abandoned steps, which `GET /v1/workers`, `stepline workers` and the dashboard report;
once every slot is held so, the worker hands back its runs and exits with status 3, and the
runs that were waiting complete on another worker."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stepline.cli.worker import EXIT_ABANDONED
from stepline.store.base import Store
from stepline.store.sql import SqlStore
from tests.scale.support import (
    Cluster,
    eventually,
    read_effects,
    registered,
    stepline_cli,
)

STUCK_APP = Path(__file__).with_name("stuck_app.py")
SLOTS = 2


def stuck_worker(cluster: Cluster) -> subprocess.Popen[bytes]:
    """`stepline worker tests/scale/stuck_app.py` with short leases (heartbeats every 1/3 s)."""
    return cluster.spawn(
        "worker", "worker", str(STUCK_APP), "--db", cluster.db, "--slots", str(SLOTS),
        "--lease-seconds", "1", "--grace-seconds", "5",
    )  # fmt: skip


def wait_registered(store: Store, worker: subprocess.Popen[bytes]) -> None:
    eventually(
        lambda: (
            registered(store, {worker.pid})
            and {"stuck", "quick"} <= {fn.id for fn in store.list_functions()}
        ),
        what="the worker to register",
        timeout=20,
    )


def start_run(cluster: Cluster, name: str) -> str:
    """Send one event; the id of the run it started."""
    response = httpx.post(f"{cluster.url}/e/test-key", json={"name": name, "data": {}}, timeout=10)
    response.raise_for_status()
    [event_id] = response.json()["ids"]
    [run] = cluster.get(f"/v1/events/{event_id}/runs")
    return str(run["id"])


def cancel(cluster: Cluster, run_id: str) -> None:
    httpx.post(f"{cluster.url}/v1/runs/{run_id}/cancel", timeout=10).raise_for_status()


def began(cluster: Cluster, step: str) -> dict[str, int]:
    """Run id → pid, for each execution of `step` so far."""
    return {e.run: e.pid for e in read_effects(cluster.effects) if e.step == step}


def listed(cluster: Cluster, pid: int) -> dict[str, Any] | None:
    """The worker with `pid` as `GET /v1/workers` shows it."""
    return next((w for w in cluster.workers() if w["pid"] == pid), None)


def leases_held(store: Store, worker_id: str) -> int:
    assert isinstance(store, SqlStore)
    with store._read() as conn:
        held = conn.execute(
            text("SELECT count(*) FROM queue WHERE lease_owner = :owner"), {"owner": worker_id}
        ).scalar()
    return int(held or 0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_whose_slots_are_all_abandoned_hands_back_its_runs_and_exits_3(
    store: Store, cluster: Cluster
) -> None:
    cluster.server()
    first = stuck_worker(cluster)
    wait_registered(store, first)
    stuck = [start_run(cluster, "stuck/block") for _ in range(SLOTS)]
    eventually(lambda: set(stuck) <= set(began(cluster, "block")), what="both steps", timeout=20)
    waiting = [start_run(cluster, "stuck/quick") for _ in range(3)]  # no free slot: queued

    cancel(cluster, stuck[0])
    shown = eventually(
        lambda: (w := listed(cluster, first.pid)) and w["abandoned"] == 1 and w,
        what="/v1/workers to show 1 abandoned slot",
        timeout=20,
    )
    assert (shown["alive"], shown["healthy"], shown["inflight"]) == (True, False, 2), shown
    notice = f"Worker {shown['id']}: 1 slot held by an abandoned step"
    assert notice in httpx.get(f"{cluster.url}/", timeout=10).text
    table = stepline_cli(cluster, "workers")
    assert any(shown["id"] in line and " degraded " in line for line in table.splitlines())
    assert f"{shown['id']}: 1 slot held by an abandoned step" in table, table
    assert first.poll() is None, "a worker with a slot left must go on"

    cancel(cluster, stuck[1])

    assert first.wait(20) == EXIT_ABANDONED, cluster.log(first)
    assert "held by abandoned steps: exiting with status 3" in cluster.log(first)
    assert leases_held(store, shown["id"]) == 0
    assert first.pid not in {w.pid for w in store.list_workers()}
    second = stuck_worker(cluster)
    wait_registered(store, second)
    eventually(
        lambda: all(cluster.get(f"/v1/runs/{r}")["status"] == "COMPLETED" for r in waiting),
        what="the waiting runs to complete on the new worker",
        timeout=30,
    )
    assert {run: pid for run, pid in began(cluster, "hello").items()} == {
        run: second.pid for run in waiting
    }
    assert [cluster.get(f"/v1/runs/{r}")["status"] for r in stuck] == ["CANCELLED"] * SLOTS

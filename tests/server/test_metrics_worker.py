"""A real `stepline worker` process serves its own metrics at `--metrics-port` (on loopback):
the runs it started and ended and the steps it executed, on both stores; a port in use is a
clear error. Every process is stopped by its PID."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx

from stepline.engine.operations import Operations
from stepline.store.base import Store
from tests.loopback import free_port
from tests.scale.support import (
    APP_FILE,
    EVENT,
    START_SECONDS,
    Cluster,
    database_of,
    eventually,
    functions_registered,
)
from tests.server.metrics_support import Scrape


def _worker(cluster: Cluster, *options: str) -> subprocess.Popen[bytes]:
    return cluster.spawn(
        "worker", "worker", str(APP_FILE), "--db", cluster.db, "--slots", "2", *options
    )


def test_a_worker_process_serves_its_own_counters(store: Store, tmp_path: Path) -> None:
    cluster = Cluster(database_of(store), tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"

    def counted_both() -> Scrape | None:
        try:
            found = Scrape(httpx.get(url, timeout=2).text)
        except httpx.TransportError:
            return None
        ended = found.value("stepline_runs_ended_total", function="steps", status="COMPLETED")
        return found if ended == 2 else None

    try:
        _worker(cluster, "--metrics-port", str(port))
        eventually(lambda: functions_registered(store), what="the worker", timeout=START_SECONDS)
        Operations(store).send([{"name": EVENT, "data": {"steps": 2, "seconds": 0}}] * 2)
        found = eventually(counted_both, what="both runs in the worker's metrics", timeout=30)
    finally:
        cluster.close()

    assert found.value("stepline_runs_started_total", function="steps") == 2
    attempts = found.value("stepline_step_attempts_total", function="steps", outcome="completed")
    assert attempts == 4
    assert found.value("stepline_step_duration_seconds_count", function="steps") == 4
    assert found.value("stepline_run_duration_seconds_count", function="steps", status="COMPLETED")
    assert found.value("stepline_store_errors_total") == 0
    assert found.value("stepline_queue_depth", function="steps") is None, "the server's gauge"
    assert "metrics: http://127.0.0.1:" in cluster.logs()


def test_a_metrics_port_in_use_stops_the_worker_with_a_clear_error(
    store: Store, tmp_path: Path
) -> None:
    cluster = Cluster(database_of(store), tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            code = _worker(cluster, "--metrics-port", str(port)).wait(START_SECONDS)
        finally:
            cluster.close()

    assert code == 2
    assert f"metrics port {port} on 127.0.0.1 is in use" in cluster.logs()

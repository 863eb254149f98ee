"""`stepline dev` whose only slot is held by an abandoned step starts a fresh worker in its own
process: the run that was waiting completes, and the server keeps answering."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.support import Dev, dev_serving

STUCK_APP = Path(__file__).parents[1] / "scale" / "stuck_app.py"


def eventually(probe: Any, *, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    """`stepline dev tests/scale/stuck_app.py --slots 1`; stopped by its PID afterwards."""
    with dev_serving(tmp_path, STUCK_APP, "--slots", "1") as running:
        yield running


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def start_run(dev: Dev, name: str) -> str:
    response = httpx.post(f"{dev.url}/e/key", json={"name": name, "data": {}}, timeout=10)
    response.raise_for_status()
    [event_id] = response.json()["ids"]
    [run] = get(dev, f"/v1/events/{event_id}/runs")
    return str(run["id"])


def get(dev: Dev, path: str) -> Any:
    response = httpx.get(f"{dev.url}{path}", timeout=10)
    response.raise_for_status()
    return response.json()["data"]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_dev_replaces_a_worker_whose_slots_are_all_abandoned(dev: Dev) -> None:
    stuck = start_run(dev, "stuck/block")
    eventually(lambda: stuck in read(dev.effects), what="the step to start", timeout=20)
    waiting = start_run(dev, "stuck/quick")  # the only slot is taken: it stays queued
    [before] = get(dev, "/v1/workers")

    httpx.post(f"{dev.url}/v1/runs/{stuck}/cancel", timeout=10).raise_for_status()

    eventually(
        lambda: get(dev, f"/v1/runs/{waiting}")["status"] == "COMPLETED",
        what="the waiting run to complete on a fresh worker",
        timeout=30,
    )
    [after] = get(dev, "/v1/workers")
    assert after["id"] != before["id"] and after["healthy"] is True, (before, after)
    assert dev.process.poll() is None
    assert "gave up" in dev.log.read_text()
    dev.process.send_signal(signal.SIGINT)  # Ctrl-C: the engine stops, the process exits
    assert dev.process.wait(15) == 0, dev.log.read_text()  # the stuck thread does not hold it

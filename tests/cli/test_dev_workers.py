"""`stepline dev --workers 2` on SQLite: a second worker process shares the file, each on a CPU
of its own; both execute runs (no step twice, no run lost); a worker process that dies is
started again; and the children die with dev, even when dev is SIGKILLed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.support import Dev, dev_serving
from tests.scale.support import executions, read_effects

SCALE_APP = Path(__file__).parents[1] / "scale" / "app.py"
RUNS, STEPS = 30, 3


def eventually(probe: Any, *, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)
    return value


def get(dev: Dev, path: str) -> Any:
    response = httpx.get(dev.url + path, timeout=10)
    response.raise_for_status()
    return response.json()


def worker_pids(dev: Dev) -> set[int]:
    return {int(w["pid"]) for w in get(dev, "/v1/workers")["data"] if w["alive"]}


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    with dev_serving(tmp_path, SCALE_APP, "--workers", "2", "--slots", "4") as running:
        yield running


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_worker_processes_share_the_file_and_the_work(dev: Dev) -> None:
    pids = eventually(lambda: len(worker_pids(dev)) == 2 and worker_pids(dev), what="2 workers")
    assert dev.process.pid in pids, "dev's own worker is one of them"

    for i in range(RUNS):
        event = {"name": "scale/steps", "data": {"steps": STEPS, "seconds": 0.05, "n": i}}
        httpx.post(f"{dev.url}/e/key", json=event, timeout=10).raise_for_status()
    eventually(
        lambda: len(get(dev, "/v1/runs?status=COMPLETED&limit=100")["data"]) == RUNS,
        what=f"{RUNS} runs to complete",
        timeout=60,
    )
    if len(os.sched_getaffinity(0)) >= 2:  # each on a CPU of its own (--pin-cpus)
        cpus = [os.sched_getaffinity(pid) for pid in pids]
        assert all(len(c) == 1 for c in cpus) and cpus[0] != cpus[1], cpus
    effects = read_effects(dev.effects)
    done = executions(effects)
    assert len(done) == RUNS * STEPS and set(done.values()) == {1}, "a step ran twice"
    by_pid = {pid: sum(e.pid == pid for e in effects) for pid in pids}
    assert all(by_pid.values()), f"a worker process executed nothing: {by_pid}"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_dead_worker_process_is_started_again_and_children_die_with_dev(dev: Dev) -> None:
    pids = eventually(lambda: len(worker_pids(dev)) == 2 and worker_pids(dev), what="2 workers")
    [child] = pids - {dev.process.pid}
    os.kill(child, signal.SIGKILL)
    eventually(lambda: not alive(child), what="the child to die", timeout=10)
    [restarted] = eventually(
        lambda: (fresh := worker_pids(dev) - {dev.process.pid, child}) and fresh,
        what="a new worker process",
    )

    os.kill(dev.process.pid, signal.SIGKILL)  # no chance to stop its children itself
    eventually(lambda: not alive(restarted), what="the child to die with dev", timeout=15)

"""A worker killed with SIGKILL in the middle of a step loses nothing: another worker process
reclaims the run once the lease expires, skips the completed step (exactly-once memoization)
and executes the interrupted step again (at-least-once execution). Also when the completed
step's output is large, stored as a blob: the new worker's replay reads it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepline.store.base import RunFilter, Store
from stepline.store.blobs import blob_ref
from stepline.store.sql import SqlStore
from stepline.store.sqlite import SqliteStore
from tests.engine.crash_child import LEASE_SECONDS
from tests.engine.support import eventually

CHILD = Path(__file__).with_name("crash_child.py")
RECLAIM_SLACK_SECONDS = 3.0


def database_of(store: Store) -> str:
    """How a child process opens the test's database."""
    if isinstance(store, SqliteStore):
        return str(store.path)
    assert isinstance(store, SqlStore)
    return store.engine.url.render_as_string(hide_password=False)


def side_effects(path: Path) -> list[tuple[str, int, float]]:
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines()]
    return [(name, int(pid), float(at)) for name, pid, at in lines]


@pytest.fixture
def children(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started by the test, each killed by its own pid afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("pad", [0, 300 * 1024], ids=["inline", "blob"])
def test_killed_worker_run_is_reclaimed_and_only_the_interrupted_step_reruns(
    store: Store, tmp_path: Path, children: list[subprocess.Popen[bytes]], pad: int
) -> None:
    db = database_of(store)
    effects = tmp_path / "side-effects.txt"

    def spawn(mode: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{mode}.log").open("wb") as log:
            child = subprocess.Popen(
                [sys.executable, str(CHILD), db, str(effects), mode, str(pad)],
                stdout=log,
                stderr=log,
            )
        children.append(child)
        return child

    first = spawn("first")
    eventually(
        lambda: [e for e in side_effects(effects) if e[0] == "step-2"],
        what="the first worker to enter step 2",
        timeout_seconds=30,
    )
    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.time()
    assert first.wait(10) == -signal.SIGKILL
    [run] = store.list_runs(RunFilter(function_id="crashy"))
    assert run.status == "RUNNING"

    second = spawn("second")
    eventually(
        lambda: store.get_run(run.id).ended,
        what="the second worker to finish the run",
        timeout_seconds=30,
    )

    done = store.get_run(run.id)
    assert done.status == "COMPLETED", done.error
    assert json.loads(done.output or "") == ["step-1", "step-2", "step-3"]
    step_1 = store.get_steps(run.id)[0].output
    assert (blob_ref(step_1) is not None) == (pad > 0), step_1 and step_1[:80]
    seen = side_effects(effects)
    assert [(name, pid) for name, pid, _ in seen] == [
        ("step-1", first.pid),
        ("step-2", first.pid),
        ("step-2", second.pid),
        ("step-3", second.pid),
    ]
    reclaimed_after = seen[2][2] - killed_at
    assert reclaimed_after < LEASE_SECONDS + RECLAIM_SLACK_SECONDS, reclaimed_after
    steps = store.get_steps(run.id)
    assert [(s.id, s.status, s.attempts) for s in steps] == [
        ("step-1", "completed", 1),
        ("step-2", "completed", 1),
        ("step-3", "completed", 1),
    ]

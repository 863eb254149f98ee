"""A worker killed with SIGKILL while a `step.exec` command runs leaves no process of it behind
(the command's guard stops its group once the worker is gone), and the next worker reclaims
the run and runs the command again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stepline.store.base import RunFilter, Store
from tests.cases.test_step_exec import alive
from tests.engine.support import eventually
from tests.engine.test_crash_recovery import children, database_of

CHILD = Path(__file__).with_name("exec_crash_child.py")
__all__ = ["children"]  # the fixture, shared with test_crash_recovery


def started(path: Path) -> list[list[int]]:
    """The (child, shell) pids each run of the command wrote, complete lines only."""
    text = path.read_text() if path.exists() else ""
    return [
        [int(p) for p in line.split()[:2]] for line in text.splitlines() if line.endswith("end")
    ]


@pytest.mark.slow
def test_killed_worker_leaves_no_orphan_and_the_command_runs_again(
    store: Store, tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    db = database_of(store)
    pids = tmp_path / "pids"

    def spawn(mode: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{mode}.log").open("wb") as log:
            child = subprocess.Popen(
                [sys.executable, str(CHILD), db, str(pids), mode], stdout=log, stderr=log
            )
        children.append(child)
        return child

    first = spawn("first")
    [[child, shell]] = eventually(
        lambda: started(pids), what="the first worker to start the command", timeout_seconds=30
    )
    assert alive(child) and alive(shell)

    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL

    eventually(
        lambda: not alive(child) and not alive(shell),
        what="the dead worker's command and its child to be stopped",
        timeout_seconds=3,
    )
    spawn("second")
    [run] = store.list_runs(RunFilter(function_id="scripted"))
    finished = eventually(
        lambda: store.get_run(run.id).status == "COMPLETED",
        what="the second worker to finish the run",
        timeout_seconds=30,
    )
    assert finished
    output = store.get_run(run.id).output
    assert len(started(pids)) == 2, "the command ran again in the second worker"
    assert json.loads(output or "null")["stdout_tail"] == "done"
    leftover = started(pids)[1][0]
    eventually(lambda: not alive(leftover), what="the finished command's child to be killed")

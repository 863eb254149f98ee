"""`stepline worker --cpu N`: the worker runs on that CPU only, the commands its steps start get
every CPU it had before, and a CPU it may not use is refused with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stepline
from tests.cli.support import COMMAND

APP = """
import stepline

app = stepline.App("cpu")

AFFINITY = "import os; print(sorted(os.sched_getaffinity(0)))"


@app.function(id="affinity", triggers=[stepline.event("cpu/check")])
def affinity(ctx):
    import os, sys
    result = ctx.step.exec("child", [sys.executable, "-c", AFFINITY])
    return {"worker": sorted(os.sched_getaffinity(0)), "child": result["stdout_tail"]}
"""


@pytest.mark.timeout(60)
def test_a_pinned_worker_runs_on_its_cpu_and_its_commands_on_every_cpu(tmp_path: Path) -> None:
    (tmp_path / "cpu_app.py").write_text(APP)
    db = tmp_path / "stepline.db"
    client = stepline.Client.local(db)  # (migrates the file)
    worker = subprocess.Popen(
        [*COMMAND, "worker", "cpu_app.py", "--db", str(db), "--cpu", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().startswith("Stepline worker")  # its functions registered
        [event_id] = client.send({"name": "cpu/check", "data": {}})
        deadline = time.monotonic() + 30
        while not (runs := client.list_runs(status="COMPLETED")):
            assert time.monotonic() < deadline, "the run did not complete"
            time.sleep(0.1)
        output = client.get_run(runs[0]["id"])["output"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if worker.stdout is not None:
            worker.stdout.close()
        client.close()
    assert output["worker"] == [0]
    assert output["child"].strip() == str(sorted(os.sched_getaffinity(0)))
    assert event_id


def test_a_cpu_the_worker_may_not_use_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "stepline.db"
    stepline.Client.local(db).close()
    done = subprocess.run(
        [*COMMAND, "worker", "--db", str(db), "--cpu", "4096"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode != 0
    assert "CPU 4096 is not one this process may use" in done.stderr + done.stdout

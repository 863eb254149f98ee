"""A worker process SIGKILLed while its request to an SDK app is in flight loses nothing.

The server runs in the test process without a worker; workers are real `stepline worker`
processes (no Python apps: they execute SDK apps' runs only). The first is killed while the
app executes step "two"; a second reclaims the run once the lease expires and calls the app
again: step "one" is not executed again (memoized), step "two" is (at-least-once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import inngest
import pytest

from stepline.engine.operations import Operations
from stepline.server.app import create_app
from stepline.store.base import Store
from tests.engine.support import eventually
from tests.engine.test_crash_recovery import database_of
from tests.inngest.conftest import sync
from tests.loopback import Servers

LEASE_SECONDS = 2


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `stepline worker` processes; each killed by its own pid afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(db: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
        with (tmp_path / f"worker-{len(started)}.log").open("wb") as log:
            command = [sys.executable, "-m", "stepline.cli.main", "worker", "--db", db]
            child = subprocess.Popen(
                [*command, "--lease-seconds", str(LEASE_SECONDS)],
                stdout=log,
                stderr=log,
                env=env,
            )
        started.append(child)
        return child

    yield spawn
    for child in started:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)


@pytest.mark.slow
def test_killed_worker_mid_request_run_resumes_elsewhere_without_redoing_steps(
    store: Store,
    servers: Servers,
    py_app: Callable[[inngest.Inngest, Sequence[Any]], str],
    workers: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    operations = Operations(store)
    url = servers.start(create_app(operations))
    calls: Counter[str] = Counter()
    entered_two, release = threading.Event(), threading.Event()
    lock = threading.Lock()

    def one() -> str:
        with lock:
            calls["one"] += 1
        return "one"

    def two() -> str:
        with lock:
            calls["two"] += 1
            first = calls["two"] == 1
        if first:
            entered_two.set()
            release.wait(30)  # the worker calling us is killed meanwhile
        return "two"

    client = inngest.Inngest(
        app_id="crashy", is_production=False, api_base_url=url, event_api_base_url=url
    )

    @client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="t/crash"))
    def steps(ctx: inngest.ContextSync) -> list[str]:
        return [ctx.step.run("one", one), ctx.step.run("two", two)]

    sync(py_app(client, [steps]))
    [event_id] = client.send_sync(inngest.Event(name="t/crash"))
    db = database_of(store)
    first = workers(db)
    assert entered_two.wait(30), "the first worker never called step two"
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    workers(db)

    def ended() -> Any:
        runs = operations.runs_for_event(event_id)
        return runs[0] if runs and runs[0].ended else None

    run = eventually(ended, what="the run to end on the second worker", timeout_seconds=60)
    release.set()
    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == ["one", "two"]
    assert calls == {"one": 1, "two": 2}

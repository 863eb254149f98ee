"""examples/inngest_ts, run for real: the TypeScript app (Node.js, tsx) synced to Stepline.

The app serves its functions and its fake vendor portal on one loopback port; Stepline calls
it as it would any Inngest SDK app. The fake portal rate-limits every third request (429,
Retry-After: 1), so in a fresh app the third page of a sync is fetched twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepline.store.base import RunRecord
from tests.inngest.conftest import Stepline
from tests.inngest.node import NodeApp

PROJECT = Path(__file__).parents[2] / "examples" / "inngest_ts"
APP = "base-stations-ts"
SYNC = f"{APP}-stations-sync"
TOTAL, INVALID = 250, 10  # the fake portal's stations; 10 have no coordinates


@pytest.fixture
def example(stepline: Stepline, tmp_path: Path) -> Iterator[NodeApp]:
    """The example app run with tsx, pointed at `stepline` (as its README says) and synced."""
    app = NodeApp(PROJECT, ["--import", "tsx", "src/server.ts"], tmp_path / "log")
    try:
        app.start({"INNGEST_DEV": stepline.url}, "/stations")
        stepline.sync(f"{app.base}/api/inngest")
        yield app
    finally:
        app.stop()
        print(f"--- the app's output ---\n{app.output()}")  # shown if the test failed


def test_the_sync_registers_both_triggers_and_the_cancel_event(
    stepline: Stepline, example: NodeApp
) -> None:
    functions = {fn.id: json.loads(fn.config) for fn in stepline.engine.store.list_functions()}

    assert sorted(functions) == [f"{APP}-report-sync", SYNC]
    config = functions[SYNC]
    assert config["triggers"] == [
        {"cron": "0 3 * * *", "tz": "Europe/Paris", "missed": "latest"},
        {"event": "stations/sync.requested"},
    ]
    assert config["retries"] == 4
    assert config["cancel_on"] == [
        {
            "event": "stations/sync.cancel",
            "if": "event.data.region == async.data.region",
            "timeout_seconds": None,
        }
    ]


def test_a_requested_sync_fetches_every_page_and_announces_the_result(
    stepline: Stepline, example: NodeApp
) -> None:
    run = stepline.run_of(stepline.send("stations/sync.requested"))

    assert run.status == "COMPLETED", run.error
    summary = {"fetched": TOTAL, "invalid": INVALID, "inserted": TOTAL - INVALID}
    assert _output(run) == {"region": "all", **summary, "updated": 0, "unchanged": 0}
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.status) for s in steps] == [
        (name, "completed")
        for name in (
            "begin",
            *(f"{kind}-page-{n}" for n in (1, 2, 3) for kind in ("fetch", "upsert")),
            "announce",
        )
    ]
    fetch_3 = next(s for s in steps if s.id == "fetch-page-3")
    assert fetch_3.attempts == 2  # rate limited once, retried after the portal's Retry-After
    [attempt] = stepline.engine.get_run(run.id).attempts
    assert "RetryAfterError" in attempt.error
    assert len(example.get("/stations")) == TOTAL - INVALID

    [sent] = json.loads(steps[-1].output or "null")["ids"]
    report = stepline.run_of(sent)
    assert report.status == "COMPLETED", report.error
    assert _output(report) == "all: 240 new, 0 changed, 10 broken records skipped"


def test_a_cancel_event_for_the_region_cancels_its_sync(
    stepline: Stepline, example: NodeApp
) -> None:
    [run] = stepline.runs_of(stepline.send("stations/sync.requested", _north()))
    _wait_detail(stepline, run.id, "RETRYING")  # the third request is rate limited
    stepline.send("stations/sync.cancel", {"region": "south"})  # another region's: no match
    cancel = stepline.send("stations/sync.cancel", {"region": "north"})
    ended = stepline.ended(run.id)

    assert ended.status == "CANCELLED"
    assert ended.cancelled_by == cancel
    steps = [s.id for s in stepline.engine.get_run(run.id).steps]
    assert "announce" not in steps


def test_the_example_type_checks() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js runs the example"
    tsc = PROJECT / "node_modules" / "typescript" / "bin" / "tsc"
    assert tsc.exists(), f"{PROJECT}/node_modules is missing: run `npm ci` there"
    result = subprocess.run(
        [node, str(tsc), "--noEmit"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _north() -> dict[str, Any]:
    return {"region": "north", "per_page": 10}


def _output(run: RunRecord) -> Any:
    return json.loads(run.output or "null")


def _wait_detail(stepline: Stepline, run_id: str, detail: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while stepline.engine.get_run(run_id).run.detail != detail:
        assert time.monotonic() < deadline, f"run {run_id} never got to {detail}"
        time.sleep(0.02)

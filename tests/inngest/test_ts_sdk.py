"""Every opcode the TypeScript SDK sends, end to end: the official npm `inngest` on Node.js.

One Node.js process per test serves the functions of tests/inngest/ts_app/server.js with
`inngest/express`, configured as a user configures it (`INNGEST_DEV=<Stepline's URL>`), and is
synced by a plain PUT. Outcomes are read through Stepline (run status, output, steps); what
the app itself did (step executions, times) through its GET /state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepline.store.base import RunRecord
from tests.inngest.conftest import Stepline
from tests.inngest.node import NodeApp

PROJECT = Path(__file__).parent / "ts_app"
APP = "ts-tests"


@pytest.fixture
def ts_app(stepline: Stepline, tmp_path: Path) -> Iterator[NodeApp]:
    """The test app, pointed at `stepline` and synced; its output is printed afterwards."""
    app = NodeApp(PROJECT, ["server.js"], tmp_path / "node.log")
    try:
        app.start({"INNGEST_DEV": stepline.url}, "/state")
        stepline.sync(app.base + "/api/inngest")
        yield app
    finally:
        app.stop()
        print(f"--- the app's output ---\n{app.output()}")  # shown if the test failed


def test_the_sync_registers_every_function_with_its_triggers(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    functions = {fn.id: fn for fn in stepline.engine.store.list_functions()}
    [app] = stepline.engine.store.list_apps()
    again = httpx.put(ts_app.base + "/api/inngest", timeout=30)  # the SDK relays our answer

    assert (app.id, app.kind, app.url) == (APP, "sdk", ts_app.base + "/api/inngest")
    assert app.sdk is not None and app.sdk.startswith("js:v4.")
    assert again.status_code == 200, again.text
    assert again.json()["modified"] is False
    assert functions[f"{APP}-steps"].app_id == APP
    nightly = json.loads(functions[f"{APP}-nightly"].config)
    assert nightly["triggers"] == [
        {"cron": "0 3 * * *", "tz": "Europe/Paris", "missed": "latest"},
        {"event": "ts/nightly"},
    ]
    assert json.loads(functions[f"{APP}-double"].config)["triggers"] == []
    assert f"{APP}-doomed-failure" in functions  # the onFailure handler
    assert json.loads(functions[f"{APP}-flaky"].config)["retries"] == 3
    schedule = (f"{APP}-nightly", "TZ=Europe/Paris 0 3 * * *")
    deadline = time.monotonic() + 10
    while schedule not in stepline.engine.store.cron_states():  # the scheduler counts from now
        assert time.monotonic() < deadline, "the scheduler never took up the nightly schedule"
        time.sleep(0.05)


def test_steps_run_once_each_however_often_the_function_is_replayed(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    run = stepline.run_of(stepline.send("ts/steps", {"n": 1}))

    assert run.status == "COMPLETED", run.error
    assert _output(run) == {"first": 2, "second": 4, "third": "2/4"}
    counts = ts_app.get("/state")["counts"]
    assert {k: counts[k] for k in ("first", "second", "third")} == {
        "first": 1,
        "second": 1,
        "third": 1,
    }
    assert counts["steps:handler"] == 4  # one step per call, then the result
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.status, s.output) for s in steps] == [
        ("first", "completed", "2"),
        ("second", "completed", "4"),
        ("third", "completed", '"2/4"'),
    ]


def test_a_failing_step_is_retried_alone(stepline: Stepline, ts_app: NodeApp) -> None:
    run = stepline.run_of(stepline.send("ts/flaky"))

    assert run.status == "COMPLETED", run.error
    assert _output(run) == "first-ok"
    assert _counts(ts_app, "flaky:") == {"first": 1, "flaky": 3}
    detail = stepline.engine.get_run(run.id)
    assert [(a.step_id, a.attempt) for a in detail.attempts] == [("flaky", 0), ("flaky", 1)]
    assert "attempt 1 fails" in detail.attempts[0].error
    assert [(s.id, s.attempts) for s in detail.steps] == [("first", 1), ("flaky", 3)]


def test_a_step_that_keeps_failing_fails_the_run(stepline: Stepline, ts_app: NodeApp) -> None:
    run = stepline.run_of(stepline.send("ts/broken"))

    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert (error["name"], error["message"]) == ("TypeError", "vendor API down")
    assert ts_app.get("/state")["counts"]["broken"] == 2  # retries: 1
    [step] = stepline.engine.get_run(run.id).steps
    assert (step.id, step.status, step.attempts) == ("call-vendor", "failed", 2)


def test_non_retriable_error_fails_the_run_at_once(stepline: Stepline, ts_app: NodeApp) -> None:
    run = stepline.run_of(stepline.send("ts/nope"))

    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert (error["name"], error["message"]) == ("NonRetriableError", "foo")
    assert ts_app.get("/state")["counts"]["nope"] == 1


def test_non_retriable_error_in_a_step_fails_the_step_at_once(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    run = stepline.run_of(stepline.send("ts/nope-step"))

    assert run.status == "FAILED"
    assert json.loads(run.error or "{}")["message"] == "not again"
    assert ts_app.get("/state")["counts"]["nope-step"] == 1
    [step] = stepline.engine.get_run(run.id).steps
    assert (step.id, step.status, step.attempts) == ("refuse", "failed", 1)
    assert json.loads(step.error or "{}")["name"] == "NonRetriableError"


@pytest.mark.parametrize("where", ["later", "later-step"])
def test_retry_after_is_honoured(stepline: Stepline, ts_app: NodeApp, where: str) -> None:
    run = stepline.run_of(stepline.send(f"ts/{where}"))

    assert run.status == "COMPLETED", run.error
    assert _output(run) == "done"
    first, second = ts_app.get("/state")["times"][where]
    assert second - first >= 1900  # ms; not the engine's 0.2 s backoff


def test_sleep_parks_the_run_until_its_time(stepline: Stepline, ts_app: NodeApp) -> None:
    event_id = stepline.send("ts/nap")
    [run] = stepline.runs_of(event_id)
    _wait_detail(stepline, run.id, "SLEEPING")
    ended = stepline.ended(run.id)

    assert ended.status == "COMPLETED", ended.error
    assert _output(ended)["slept"] >= 1900
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.kind, s.status) for s in steps] == [
        ("before", "run", "completed"),
        ("nap", "sleep", "completed"),
        ("after", "run", "completed"),
    ]


def test_wait_for_event_with_match_with_if_and_a_timeout(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    [run] = stepline.runs_of(stepline.send("ts/order", {"order": 7}))
    _wait_step(stepline, run.id, "approval", "waiting")
    stepline.send("ts/approved", {"order": 8, "by": "wrong"})
    stepline.send("ts/approved", {"order": 7, "by": "ann"})
    _wait_step(stepline, run.id, "review", "waiting")
    stepline.send("ts/reviewed", {"order": 7, "score": 3})  # `if` is false: score too low
    stepline.send("ts/reviewed", {"order": 7, "score": 9})
    ended = stepline.ended(run.id)

    assert ended.status == "COMPLETED", ended.error
    assert _output(ended) == {"by": "ann", "score": 9, "missing": None}
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.kind, s.status) for s in steps] == [
        ("approval", "wait", "completed"),
        ("review", "wait", "completed"),
        ("never", "wait", "completed"),
    ]
    assert steps[-1].output == "null"


def test_invoke_returns_results_child_failures_and_timeouts(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    run = stepline.run_of(stepline.send("ts/invoke"))

    assert run.status == "COMPLETED", run.error
    output = _output(run)
    assert output["failed"]["name"] == "NonRetriableError"
    assert "negative" in output["failed"]["message"]
    assert output == {
        "doubled": 42,
        "failed": output["failed"],
        "timedOut": {
            "name": "InngestInvokeTimeoutError",
            "message": "Timed out waiting for invoked function to complete",
        },
    }
    detail = stepline.engine.get_run(run.id)
    assert [(s.id, s.kind, s.status) for s in detail.steps] == [
        ("double", "invoke", "completed"),
        ("fails", "invoke", "failed"),
        ("slow", "invoke", "failed"),
    ]
    children = sorted((c.function_id.removeprefix(f"{APP}-"), c.status) for c in detail.children)
    assert children == [("double", "COMPLETED"), ("double", "FAILED"), ("slow", "RUNNING")]


def test_promise_all_steps_run_at_the_same_time(stepline: Stepline, ts_app: NodeApp) -> None:
    run = stepline.run_of(stepline.send("ts/fan"))

    assert run.status == "COMPLETED", run.error
    assert _output(run) == ["A", "B", "after"]
    state = ts_app.get("/state")
    assert state["maxInFlight"] == 2  # both branches were in flight at once
    assert {k: state["counts"][k] for k in ("a", "b", "after")} == {"a": 1, "b": 1, "after": 1}
    steps = {s.id: s.status for s in stepline.engine.get_run(run.id).steps}
    assert steps == {"a": "completed", "b": "completed", "after": "completed"}


def test_events_sent_by_a_step_and_by_the_client_start_runs(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    run = stepline.run_of(stepline.send("ts/send"))

    assert run.status == "COMPLETED", run.error
    sent = _output(run)
    [by_step], [by_client] = sent["step"], sent["client"]
    outputs = {_output(stepline.run_of(event_id))["via"] for event_id in (by_step, by_client)}
    assert outputs == {"step", "client"}
    steps = [(s.id, s.status) for s in stepline.engine.get_run(run.id).steps]
    assert steps == [("notify", "completed"), ("send-from-app", "completed")]


def test_cancel_on_with_match_cancels_only_the_matching_run(
    stepline: Stepline, ts_app: NodeApp
) -> None:
    [one] = stepline.runs_of(stepline.send("ts/cancellable", {"id": 1}))
    [two] = stepline.runs_of(stepline.send("ts/cancellable", {"id": 2}))
    _wait_detail(stepline, one.id, "SLEEPING")
    _wait_detail(stepline, two.id, "SLEEPING")
    cancel = stepline.send("ts/cancel", {"id": 1})
    cancelled = stepline.ended(one.id)

    assert cancelled.status == "CANCELLED"
    assert cancelled.cancelled_by == cancel
    assert stepline.engine.get_run(two.id).run.status == "RUNNING"
    assert _counts(ts_app, "cancellable:") == {"1": 1, "2": 1}


def test_on_failure_handler_receives_the_failure(stepline: Stepline, ts_app: NodeApp) -> None:
    run = stepline.run_of(stepline.send("ts/doomed", {"k": "v"}))
    assert run.status == "FAILED"
    assert json.loads(run.error or "{}")["message"] == "intentional failure"
    deadline = time.monotonic() + 20
    while not (failures := ts_app.get("/state")["failures"]):
        assert time.monotonic() < deadline, "the onFailure handler never ran"
        time.sleep(0.05)

    [failure] = failures
    event = failure["event"]
    assert event["name"] == "inngest/function.failed"
    assert event["data"]["function_id"] == f"{APP}-doomed"
    assert event["data"]["run_id"] == run.id
    assert event["data"]["event"]["data"] == {"k": "v"}
    assert failure["error"] == {"name": "Error", "message": "intentional failure"}


def _output(run: RunRecord) -> Any:
    return json.loads(run.output or "null")


def _counts(app: NodeApp, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = app.get("/state")["counts"]
    return {k.removeprefix(prefix): n for k, n in counts.items() if k.startswith(prefix)}


def _wait_detail(stepline: Stepline, run_id: str, detail: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while stepline.engine.get_run(run_id).run.detail != detail:
        assert time.monotonic() < deadline, f"run {run_id} never got to {detail}"
        time.sleep(0.05)


def _wait_step(stepline: Stepline, run_id: str, step_id: str, status: str) -> None:
    deadline = time.monotonic() + 20
    while not any(
        s.id == step_id and s.status == status for s in stepline.engine.get_run(run_id).steps
    ):
        assert time.monotonic() < deadline, f"step {step_id} of run {run_id} never {status}"
        time.sleep(0.05)

"""Every opcode the Python SDK sends, end to end: retries, errors, waits, invokes, parallel."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import inngest

from tests.inngest.conftest import Stepline

Serve = Callable[[inngest.Inngest, Sequence[Any]], str]


def test_a_failing_step_is_retried_alone_and_earlier_steps_are_not_run_again(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("retries")
    calls: Counter[str] = Counter()

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ValueError(f"attempt {calls['flaky']} fails")
        return "ok"

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"), retries=3)
    def fn(ctx: inngest.ContextSync) -> str:
        first = ctx.step.run("first", lambda: _count(calls, "first"))
        second = ctx.step.run("flaky", flaky)
        return f"{first}-{second}"

    stepline.sync(py_app(client, [fn]))
    run = stepline.run_of(stepline.send("t/flaky"))

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == "first-ok"
    assert calls == {"first": 1, "flaky": 3}
    detail = stepline.engine.get_run(run.id)
    assert [(a.step_id, a.attempt) for a in detail.attempts] == [("flaky", 0), ("flaky", 1)]
    assert "attempt 1 fails" in detail.attempts[0].error
    assert [s.attempts for s in detail.steps] == [1, 3]


def test_a_step_that_keeps_failing_fails_the_run_with_the_sdk_error(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("failing")

    def broken() -> None:
        raise ValueError("vendor API down")

    @client.create_function(
        fn_id="broken", trigger=inngest.TriggerEvent(event="t/broken"), retries=1
    )
    def fn(ctx: inngest.ContextSync) -> None:
        ctx.step.run("call-vendor", broken)

    stepline.sync(py_app(client, [fn]))
    run = stepline.run_of(stepline.send("t/broken"))

    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert error["name"] == "ValueError" and error["message"] == "vendor API down"
    steps = stepline.engine.get_run(run.id).steps
    assert [(s.id, s.status) for s in steps] == [("call-vendor", "failed")]


def test_non_retriable_error_fails_at_once_with_the_body_verbatim(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("nonretriable")
    calls: Counter[str] = Counter()

    @client.create_function(fn_id="nope", trigger=inngest.TriggerEvent(event="t/nope"), retries=4)
    def fn(ctx: inngest.ContextSync) -> None:
        calls["fn"] += 1
        raise inngest.NonRetriableError("foo")

    stepline.sync(py_app(client, [fn]))
    run = stepline.run_of(stepline.send("t/nope"))

    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert {k: error[k] for k in ("code", "message", "name")} == {
        "code": "non_retriable_error",
        "message": "foo",
        "name": "NonRetriableError",
    }
    assert calls["fn"] == 1


def test_retry_after_is_honoured(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("retry-after")
    seen: list[float] = []

    @client.create_function(fn_id="later", trigger=inngest.TriggerEvent(event="t/later"), retries=2)
    def fn(ctx: inngest.ContextSync) -> str:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise inngest.RetryAfterError("busy", datetime.timedelta(seconds=2))
        return "done"

    stepline.sync(py_app(client, [fn]))
    run = stepline.run_of(stepline.send("t/later"))

    assert run.status == "COMPLETED", run.error
    assert seen[1] - seen[0] >= 1.9  # not the policy's 0.2 s backoff


def test_wait_for_event_matches_with_if_and_times_out_to_none(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("waits")

    @client.create_function(
        fn_id="approve", trigger=inngest.TriggerEvent(event="t/order"), retries=0
    )
    def fn(ctx: inngest.ContextSync) -> Any:
        approved = ctx.step.wait_for_event(
            "approval",
            event="t/approved",
            if_exp="event.data.order == async.data.order",
            timeout=datetime.timedelta(seconds=30),
        )
        missing = ctx.step.wait_for_event(
            "never", event="t/never", timeout=datetime.timedelta(seconds=1)
        )
        return {"by": approved.data["by"] if approved else None, "missing": missing}

    stepline.sync(py_app(client, [fn]))
    order = stepline.send("t/order", {"order": 7})
    [run] = stepline.runs_of(order)
    _wait_detail(stepline, run.id, "WAITING")
    stepline.send("t/approved", {"order": 8, "by": "wrong"})
    stepline.send("t/approved", {"order": 7, "by": "ann"})
    ended = stepline.ended(run.id)

    assert ended.status == "COMPLETED", ended.error
    assert json.loads(ended.output or "null") == {"by": "ann", "missing": None}


def test_invoke_returns_the_child_result_and_reports_child_failures(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("invokes")

    @client.create_function(
        fn_id="double", trigger=inngest.TriggerEvent(event="t/unused"), retries=0
    )
    def double(ctx: inngest.ContextSync) -> int:
        n = ctx.event.data["n"]
        assert isinstance(n, int)
        if n < 0:
            raise inngest.NonRetriableError("negative")
        return n * 2

    @client.create_function(
        fn_id="parent", trigger=inngest.TriggerEvent(event="t/parent"), retries=0
    )
    def parent(ctx: inngest.ContextSync) -> Any:
        doubled = ctx.step.invoke("double", function=double, data={"n": 21})
        try:
            ctx.step.invoke("fails", function=double, data={"n": -1})
        except inngest.StepError as exc:
            return {"doubled": doubled, "error": exc.message}
        return {"doubled": doubled}

    stepline.sync(py_app(client, [double, parent]))
    run = stepline.run_of(stepline.send("t/parent"))

    assert run.status == "COMPLETED", run.error
    output = json.loads(run.output or "null")
    assert output["doubled"] == 42
    assert output["error"] == "negative"  # the child's own error, as on Inngest
    children = stepline.engine.get_run(run.id).children
    assert sorted(c.status for c in children) == ["COMPLETED", "FAILED"]


def test_invoke_timeout_is_the_inngest_timeout_error(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("invoke-timeout")
    release = threading.Event()

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="t/unused"), retries=0)
    def slow(ctx: inngest.ContextSync) -> str:
        ctx.step.run("block", lambda: release.wait(10) and "late")
        return "late"

    @client.create_function(
        fn_id="impatient", trigger=inngest.TriggerEvent(event="t/go"), retries=0
    )
    def impatient(ctx: inngest.ContextSync) -> Any:
        try:
            ctx.step.invoke("slow", function=slow, timeout=datetime.timedelta(seconds=1))
        except inngest.StepError as exc:
            return {"name": exc.name, "message": exc.message}
        return "no timeout"

    stepline.sync(py_app(client, [slow, impatient]))
    run = stepline.run_of(stepline.send("t/go"))
    release.set()

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == {
        "name": "InngestInvokeTimeoutError",
        "message": "Timed out waiting for invoked function to complete",
    }


def test_parallel_steps_are_called_at_the_same_time(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("parallel")
    both_in_flight = threading.Barrier(2, timeout=10)
    calls: Counter[str] = Counter()

    def branch(name: str) -> str:
        calls[name] += 1
        both_in_flight.wait()  # breaks (and the step fails) unless the other runs meanwhile
        return name.upper()

    @client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="t/fan"), retries=0)
    def fan(ctx: inngest.ContextSync) -> Any:
        results = ctx.group.parallel(
            (
                lambda: ctx.step.run("a", lambda: branch("a")),
                lambda: ctx.step.run("b", lambda: branch("b")),
            )
        )
        after = ctx.step.run("after", lambda: _count(calls, "after"))
        return [*results, after]

    stepline.sync(py_app(client, [fan]))
    run = stepline.run_of(stepline.send("t/fan"))

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null") == ["A", "B", "after"]
    assert calls == {"a": 1, "b": 1, "after": 1}
    steps = {s.id: s.status for s in stepline.engine.get_run(run.id).steps}
    assert steps == {"a": "completed", "b": "completed", "after": "completed"}


def test_send_event_step_starts_the_runs_of_other_functions(
    stepline: Stepline, py_app: Serve
) -> None:
    client = stepline.client("sender")

    @client.create_function(fn_id="send", trigger=inngest.TriggerEvent(event="t/send"), retries=0)
    def send(ctx: inngest.ContextSync) -> list[str]:
        return ctx.step.send_event("notify", inngest.Event(name="t/notified", data={"x": 1}))

    @client.create_function(
        fn_id="notified", trigger=inngest.TriggerEvent(event="t/notified"), retries=0
    )
    def notified(ctx: inngest.ContextSync) -> Any:
        return ctx.event.data

    stepline.sync(py_app(client, [send, notified]))
    run = stepline.run_of(stepline.send("t/send"))

    assert run.status == "COMPLETED", run.error
    [sent_id] = json.loads(run.output or "null")
    child = stepline.run_of(sent_id)
    assert child.status == "COMPLETED" and json.loads(child.output or "null") == {"x": 1}


def test_on_failure_handler_runs_with_the_failed_event(stepline: Stepline, py_app: Serve) -> None:
    client = stepline.client("failures")
    received: list[Any] = []

    def handler(ctx: inngest.ContextSync) -> None:
        received.append(ctx.event)

    @client.create_function(
        fn_id="doomed",
        trigger=inngest.TriggerEvent(event="t/doomed"),
        retries=0,
        on_failure=handler,
    )
    def doomed(ctx: inngest.ContextSync) -> None:
        raise ValueError("intentional failure")

    stepline.sync(py_app(client, [doomed]))
    run = stepline.run_of(stepline.send("t/doomed", {"k": "v"}))
    assert run.status == "FAILED"
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)

    [event] = received
    assert event.name == "inngest/function.failed"
    assert event.data["function_id"] == "failures-doomed"
    assert event.data["run_id"] == run.id
    assert event.data["error"]["message"] == "intentional failure"
    assert event.data["event"]["data"] == {"k": "v"}


def _count(calls: Counter[str], name: str) -> str:
    calls[name] += 1
    return name


def _wait_detail(stepline: Stepline, run_id: str, detail: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while stepline.engine.get_run(run_id).run.detail != detail:
        assert time.monotonic() < deadline, f"run {run_id} never got to {detail}"
        time.sleep(0.05)

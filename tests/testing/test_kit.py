"""`stepline.testing`: each feature of the test kit on small functions, deterministically."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import stepline
from stepline.sdk.step import AsyncStep, Step
from stepline.testing import TestRun, run_function

app = stepline.App("kit-tests")
calls: list[str] = []


def _fetch(page: int) -> dict[str, Any]:
    calls.append(f"fetch {page}")
    raise AssertionError("the real fetch must not run in these tests")


@app.function(id="pages", triggers=[stepline.event("kit/pages.requested")], retries=2)
def pages(ctx: stepline.Context[Step]) -> dict[str, Any]:
    """Two fetched pages with a sleep between them; logs, counts and announces the total."""
    first = ctx.step.run("fetch-1", _fetch, 1)
    ctx.log.info("page 1 has %d rows", len(first["rows"]))
    ctx.count("rows", len(first["rows"]))
    ctx.step.sleep("breathe", "10m")
    second = ctx.step.run("fetch-2", _fetch, 2)
    ctx.count("rows", len(second["rows"]))
    total = len(first["rows"]) + len(second["rows"])
    ctx.step.send_event("announce", {"name": "kit/pages.done", "data": {"total": total}})
    return {"total": total, "woke_at": ctx.step.run("clock", lambda: "now")}


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    calls.clear()


def test_mocked_steps_and_a_sleep_run_to_the_end() -> None:
    result = run_function(
        pages,
        event={"name": "kit/pages.requested", "data": {}},
        mocks={"fetch-1": {"rows": [1, 2, 3]}, "fetch-2": {"rows": [4]}},
    )
    assert result.status == "COMPLETED", result.error
    assert result.output == {"total": 4, "woke_at": "now"}
    assert calls == []  # the mocked steps' own function never ran
    assert result.steps["fetch-1"].output == {"rows": [1, 2, 3]}
    assert result.steps["fetch-2"].status == "completed"
    assert result.steps["breathe"].kind == "sleep"
    assert result.counters == {"rows": 4}
    assert [(log.level, log.message) for log in result.logs] == [("info", "page 1 has 3 rows")]
    assert [(e["name"], e["data"]) for e in result.sent_events] == [
        ("kit/pages.done", {"total": 4})
    ]


def test_a_test_run_moves_through_the_sleep_only_when_the_clock_does() -> None:
    mocks = {"fetch-1": {"rows": [1]}, "fetch-2": {"rows": [2, 3]}}
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with TestRun(pages, event={"name": "kit/pages.requested"}, mocks=mocks, now=start) as run:
        parked = run.result
        assert (parked.status, parked.detail) == ("RUNNING", "SLEEPING")
        assert "fetch-2" not in parked.steps
        assert run.advance("9m59s").detail == "SLEEPING"
        done = run.advance("1s")
        assert done.status == "COMPLETED", done.error
        assert run.clock.now() == start + timedelta(minutes=10)
    assert done.output == {"total": 3, "woke_at": "now"}


@app.function(id="approval", triggers=[stepline.event("kit/order.placed")])
def approval(ctx: stepline.Context[Step]) -> dict[str, Any]:
    """Wait up to a day for the order's approval."""
    approved = ctx.step.wait_for_event(
        "approved", event="kit/order.approved", timeout="1d", match="data.order"
    )
    if approved is None:
        return {"approved": False}
    return {"approved": True, "by": approved["data"]["by"]}


def test_an_event_delivered_to_a_waiting_run_resumes_it() -> None:
    with TestRun(approval, event={"name": "kit/order.placed", "data": {"order": 7}}) as run:
        assert run.result.detail == "WAITING"
        other = run.send({"name": "kit/order.approved", "data": {"order": 8, "by": "bo"}})
        assert other.detail == "WAITING"  # another order's approval does not match
        result = run.send({"name": "kit/order.approved", "data": {"order": 7, "by": "ann"}})
    assert result.status == "COMPLETED", result.error
    assert result.output == {"approved": True, "by": "ann"}
    assert result.steps["approved"].output["data"] == {"order": 7, "by": "ann"}


def test_a_wait_times_out_when_the_clock_passes_its_timeout() -> None:
    with TestRun(approval, event={"name": "kit/order.placed", "data": {"order": 7}}) as run:
        assert run.advance("23h").detail == "WAITING"
        result = run.advance("1h")
    assert result.status == "COMPLETED", result.error
    assert result.output == {"approved": False}
    # run_function moves through the timeout by itself
    ended = run_function(approval, event={"name": "kit/order.placed", "data": {"order": 1}})
    assert ended.output == {"approved": False}


attempts: list[int] = []


@app.function(id="flaky", retries=3)
def flaky(ctx: stepline.Context[Step]) -> str:
    """A step that fails twice, then succeeds."""

    def call() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        return "ok"

    return ctx.step.run("call", call)


def test_retries_back_off_on_the_fake_clock() -> None:
    attempts.clear()
    with TestRun(flaky, data={}) as run:
        assert (run.result.detail, attempts) == ("RETRYING", [1])
        # The engine's backoff without jitter: 1 s after the first failure, then 2 s.
        assert (run.advance("999ms").detail, attempts) == ("RETRYING", [1])
        assert (run.advance("1ms").detail, attempts) == ("RETRYING", [1, 2])
        assert (run.advance("1999ms").detail, attempts) == ("RETRYING", [1, 2])
        result = run.advance("1ms")
    assert result.status == "COMPLETED", result.error
    assert result.output == "ok"
    assert result.steps["call"].attempts == 3
    assert attempts == [1, 2, 3]


def test_a_mocked_exception_fails_every_attempt() -> None:
    result = run_function(
        pages,
        event={"name": "kit/pages.requested"},
        mocks={"fetch-1": ConnectionError("portal down")},
    )
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error["name"] == "ConnectionError"
    assert result.steps["fetch-1"].attempts == 3  # retries=2
    assert result.steps["fetch-1"].error is not None
    assert result.steps["fetch-1"].error["message"] == "portal down"
    assert result.sent_events == []


def test_a_callable_mock_gets_the_step_arguments() -> None:
    def fake_fetch(page: int) -> dict[str, Any]:
        return {"rows": list(range(page))}

    result = run_function(
        pages,
        event={"name": "kit/pages.requested"},
        mocks={"fetch-1": fake_fetch, "fetch-2": fake_fetch},
    )
    assert result.output == {"total": 3, "woke_at": "now"}


@app.function(id="async-pages", triggers=[stepline.event("kit/async.requested")])
async def async_pages(ctx: stepline.Context[AsyncStep]) -> int:
    """The async shape: a mocked async step, a sleep, a real step."""
    rows = await ctx.step.run("fetch", _fetch, 1)
    await ctx.step.sleep("breathe", "1h")
    doubled: int = await ctx.step.run("double", lambda: len(rows["rows"]) * 2)
    ctx.count("doubled", doubled)
    return doubled


def test_async_functions_run_the_same_way() -> None:
    async def fake_fetch(page: int) -> dict[str, Any]:
        return {"rows": [page] * 5}

    with TestRun(
        async_pages, event={"name": "kit/async.requested"}, mocks={"fetch": fake_fetch}
    ) as run:
        assert run.result.detail == "SLEEPING"
        result = run.advance()  # to the next wake-up: the end of the sleep
    assert result.status == "COMPLETED", result.error
    assert result.output == 10
    assert result.counters == {"doubled": 10}
    assert calls == []


def test_async_functions_run_where_an_event_loop_is_running() -> None:
    """As in a test after Playwright's sync API (or in an `async def` test)."""

    async def inside_a_loop() -> Any:
        mocks = {"fetch": {"rows": [1, 2]}}
        return run_function(async_pages, event={"name": "kit/async.requested"}, mocks=mocks)

    results: list[Any] = []  # the loop runs in a thread of its own: this one may have one
    thread = threading.Thread(target=lambda: results.append(asyncio.run(inside_a_loop())))
    thread.start()
    thread.join(30)
    [result] = results
    assert result.status == "COMPLETED", result.error
    assert result.output == 4


def test_a_mock_no_step_reached_is_reported() -> None:
    mocks: dict[str, Any] = {
        "fetch-1": {"rows": []},
        "fetch-2": {"rows": []},
        "fetch-3": {"rows": []},
    }
    with pytest.raises(stepline.ConfigurationError, match="mocked step\\(s\\) 'fetch-3'"):
        run_function(pages, event={"name": "kit/pages.requested"}, mocks=mocks)
    with TestRun(pages, event={"name": "kit/pages.requested"}, mocks=mocks) as run:
        assert run.unused_mocks == ["fetch-2", "fetch-3"]  # parked before fetch-2
        assert run.finish().status == "COMPLETED"
        assert run.unused_mocks == ["fetch-3"]


def test_an_event_that_starts_no_run_is_an_error() -> None:
    with pytest.raises(stepline.ConfigurationError, match="started no run of 'pages'"):
        run_function(pages, event={"name": "kit/something.else"})
    with pytest.raises(stepline.SteplineError, match="naive datetime"):
        run_function(pages, event={"name": "kit/pages.requested"}, now=datetime(2026, 1, 1))
    with pytest.raises(stepline.ConfigurationError, match="not both"):
        run_function(pages, event={"name": "kit/pages.requested"}, data={})


@app.function(id="fan-out")
def fan_out(ctx: stepline.Context[Step]) -> list[Any]:
    """Two parallel branches, each a step (executed as child runs of their own)."""
    return ctx.step.parallel(
        "both",
        [lambda: ctx.step.run("left", _fetch, 1), lambda: ctx.step.run("right", lambda: "real")],
    )


def test_parallel_branches_run_and_take_mocks() -> None:
    result = run_function(fan_out, data={}, mocks={"left": "mocked"})
    assert result.status == "COMPLETED", result.error
    assert result.output == ["mocked", "real"]
    assert result.steps["both[0]/left"].output == "mocked"
    assert calls == []


@app.function(id="slow", timeout="1m")
def slow(ctx: stepline.Context[Step]) -> str:
    """Sleeps past its own timeout."""
    ctx.step.sleep("nap", "5m")
    return "woke"


def test_a_run_timeout_ends_the_run_on_the_fake_clock() -> None:
    with TestRun(slow, data={}) as run:
        assert run.advance("59s").detail == "SLEEPING"
        result = run.advance("1s")
        assert result.status == "FAILED"
        assert result.error is not None
        assert result.error["message"] == "run exceeded its timeout of 60s"
        assert result.steps["nap"].status == "sleeping"
        with pytest.raises(stepline.ConfigurationError, match="nothing is due"):
            run.advance()


@app.function(id="script", retries=0)
def script(ctx: stepline.Context[Step]) -> Any:
    """A command as a step; `false` fails unless the step is mocked."""
    return ctx.step.exec("nightly", ["false"])


def test_a_command_step_takes_a_mock_by_id() -> None:
    answer = {"returncode": 0, "stdout_tail": ["synced 3"], "stderr_tail": [], "duration_ms": 5}
    result = run_function(script, data={}, mocks={"nightly": answer})
    assert result.status == "COMPLETED", result.error
    assert result.output == answer
    unmocked = run_function(script, data={})
    assert unmocked.status == "FAILED"
    assert unmocked.steps["nightly"].error is not None


def test_a_dry_run_records_what_it_would_send() -> None:
    app = stepline.App("kit-dry")

    @app.function(id="announce", retries=0)
    def announce(ctx: stepline.Context[Step]) -> bool:
        ctx.step.send_event("tell", {"name": "kit/told", "data": {"n": 1}})
        return ctx.dry_run

    dry = run_function(announce, dry_run=True)
    real = run_function(announce)

    assert dry.output is True and dry.sent_events == []
    assert any("dry run: not sent" in line.message for line in dry.logs)
    assert real.output is False and [e["name"] for e in real.sent_events] == ["kit/told"]

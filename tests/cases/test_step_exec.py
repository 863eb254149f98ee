"""`step.exec` runs a command as a step: its output shows in the run's log while it runs, a bad
exit code is a retried step error carrying stderr, and the command's whole process group is
killed on the step's timeout and when the run is cancelled; `env` values never reach the log."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import stepline
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine
from stepline.errors import InvalidInput
from stepline.sdk.command import command_spec
from stepline.sdk.step import AsyncStep, Step
from stepline.server.app import create_app
from tests.engine.support import drive, eventually, settle, start
from tests.loopback import Servers

EVENT = "case/exec"


def exec_app(is_async: bool, argv: list[str], **options: Any) -> stepline.App:
    """One function running `argv` as step "script" with `options`, then returning its result."""
    app = stepline.App("cases")
    retries = options.pop("retries", 3)
    run_timeout = options.pop("run_timeout", None)

    if is_async:

        @app.function(
            id="script", triggers=[stepline.event(EVENT)], retries=retries, timeout=run_timeout
        )
        async def run_async(ctx: stepline.Context[AsyncStep]) -> Mapping[str, Any]:
            return await ctx.step.exec("script", argv, **options)

    else:

        @app.function(
            id="script", triggers=[stepline.event(EVENT)], retries=retries, timeout=run_timeout
        )
        def run(ctx: stepline.Context[Step]) -> Mapping[str, Any]:
            return ctx.step.exec("script", argv, **options)

    return app


SHAPES = pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before or while it was read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids(path: Path) -> list[int]:
    """The pids a script wrote to `path`, once it wrote all of them (a trailing "end")."""
    text = path.read_text() if path.exists() else ""
    return [int(p) for p in text.split()[:-1]] if text.endswith("end\n") else []


def log_lines(engine: Engine, run_id: str) -> list[tuple[str, str, str | None]]:
    return [(log.level, log.message, log.step_id) for log in engine.get_run(run_id).logs]


@SHAPES
def test_output_is_in_the_run_log_while_the_command_runs(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    script = (
        'echo "line one"; echo "a warning" >&2; '
        f'while [ ! -f "{go}" ]; do sleep 0.05; done; echo "line two"'
    )
    engine = make_engine(exec_app(is_async, ["sh", "-c", script, "secret-arg"]))
    run_id = start(engine, EVENT)
    servers = Servers()
    api = httpx.Client(base_url=servers.start(create_app(engine.operations)), timeout=10)

    def streamed() -> list[tuple[str, str]]:
        logs = api.get(f"/v1/runs/{run_id}").raise_for_status().json()["data"]["logs"]
        return [(log["message"], log["step_id"]) for log in logs if log["step_id"] == "script"]

    def warned() -> list[tuple[str, str]] | None:
        lines = streamed()
        return lines if ("a warning", "script") in lines else None

    try:
        lines_so_far = eventually(
            warned,
            what="the command's first lines in the run's log, through the API",
        )
        assert api.get(f"/v1/runs/{run_id}").json()["data"]["status"] == "RUNNING"
    finally:
        api.close()
        servers.stop()
    assert ("line one", "script") in lines_so_far
    assert not go.exists(), "the command is still waiting: the lines came while it ran"
    go.touch()

    run = drive(engine, clock, run_id)
    assert run.status == "COMPLETED", run.error
    result = json.loads(run.output or "null")
    assert result["returncode"] == 0
    assert result["stdout_tail"] == "line one\nline two"
    assert result["stderr_tail"] == "a warning"
    assert result["duration_ms"] > 0
    lines = log_lines(engine, run_id)
    assert ("info", "line one", "script") in lines
    assert ("warning", "a warning", "script") in lines
    assert ("info", "line two", "script") in lines
    assert ("info", "$ sh (3 arguments, not logged)", "script") in lines
    assert not any("secret-arg" in m for _, m, _ in lines), "arguments are not logged"


@SHAPES
def test_exit_code_outside_ok_codes_is_a_retried_step_error_with_the_stderr_tail(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock, tmp_path: Path
) -> None:
    script = (
        "n=$(cat counter 2>/dev/null || echo 0); n=$((n + 1)); echo $n > counter; "
        'if [ "$n" -lt 3 ]; then echo "disk full on try $n" >&2; exit 3; fi; echo synced'
    )
    engine = make_engine(exec_app(is_async, ["sh", "-c", script], cwd=tmp_path))
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null")["stdout_tail"] == "synced"
    detail = engine.get_run(run_id)
    [step] = detail.steps
    assert (step.id, step.status, step.attempts) == ("script", "completed", 3)
    errors = [json.loads(a.error) for a in detail.attempts]
    assert [e["name"] for e in errors] == ["CommandFailed", "CommandFailed"]
    for n, error in enumerate(errors, start=1):
        assert "'sh' exited with code 3" in error["message"]
        assert error["message"].endswith(f"disk full on try {n}")


@SHAPES
def test_ok_codes_accept_other_exit_codes(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(exec_app(is_async, ["sh", "-c", "exit 1"], ok_codes=(0, 1)))
    run = drive(engine, clock, start(engine, EVENT))
    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null")["returncode"] == 1


@SHAPES
def test_timeout_kills_the_command_and_its_children(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock, tmp_path: Path
) -> None:
    written = tmp_path / "pids"
    script = f'sleep 10 & echo $! $$ end > "{written}"; sleep 10'
    engine = make_engine(exec_app(is_async, ["sh", "-c", script], timeout=1, retries=0))
    run_id = start(engine, EVENT)
    child, shell = eventually(lambda: pids(written), what="the command to start")
    began = time.monotonic()  # the command started a little earlier
    assert alive(child) and alive(shell)

    eventually(
        lambda: not alive(child) and not alive(shell),
        what="both processes to be killed",
        timeout_seconds=2,
    )
    assert time.monotonic() - began > 0.5, "not before its timeout"
    run = drive(engine, clock, run_id)
    assert run.status == "FAILED"
    error = json.loads(run.error or "{}")
    assert (error["name"], error["message"]) == (
        "CommandTimedOut",
        "command 'sh' timed out after 1s",
    )
    [attempt] = engine.get_run(run_id).attempts
    assert json.loads(attempt.error)["message"] == "command 'sh' timed out after 1s"


@SHAPES
def test_cancelling_the_run_kills_the_command(
    is_async: bool, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    written = tmp_path / "pids"
    script = f'sleep 30 & echo $! $$ end > "{written}"; wait'
    engine = make_engine(exec_app(is_async, ["sh", "-c", script]))
    run_id = start(engine, EVENT)
    child, shell = eventually(lambda: pids(written), what="the command to start")

    assert engine.cancel(run_id).status == "CANCELLED"

    eventually(
        lambda: not alive(child) and not alive(shell),
        what="the command's group to be killed",
        timeout_seconds=3,
    )
    settle(engine)
    assert engine.store.get_run(run_id).status == "CANCELLED"
    assert engine.get_run(run_id).steps == [], "the stopped command's step is not committed"


@SHAPES
def test_the_run_timing_out_kills_the_command(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock, tmp_path: Path
) -> None:
    written = tmp_path / "pids"
    script = f'sleep 30 & echo $! $$ end > "{written}"; wait'
    engine = make_engine(exec_app(is_async, ["sh", "-c", script], run_timeout="3s"))
    run_id = start(engine, EVENT)
    child, shell = eventually(lambda: pids(written), what="the command to start")

    clock.advance(4)

    run = engine.wait_for_run(run_id, 10)
    assert (run.status, json.loads(run.error or "{}")["name"]) == ("FAILED", "RunTimeout")
    eventually(
        lambda: not alive(child) and not alive(shell),
        what="the command's group to be killed",
        timeout_seconds=3,
    )
    settle(engine)
    assert engine.get_run(run_id).steps == []


@SHAPES
def test_stopping_the_worker_kills_the_command_and_hands_the_run_back(
    is_async: bool, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    written = tmp_path / "pids"
    script = f'echo $$ end > "{written}"; sleep 30'
    engine = make_engine(exec_app(is_async, ["sh", "-c", script]))
    run_id = start(engine, EVENT)
    [shell] = eventually(lambda: pids(written), what="the command to start")

    engine.worker.stop(grace_seconds=8)

    assert not alive(shell)
    run = engine.store.get_run(run_id)
    assert (run.status, run.detail) == ("RUNNING", None), "back in the queue for another worker"
    assert engine.get_run(run_id).steps == []


@SHAPES
def test_env_values_never_reach_the_log(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    secret = "tok-3f9a7c1e5b"
    script = 'echo "using $API_TOKEN"; echo "denied for $API_TOKEN" >&2; exit 2'
    app = exec_app(is_async, ["sh", "-c", script], env={"API_TOKEN": secret}, retries=0)
    engine = make_engine(app)
    run_id = start(engine, EVENT)

    run = drive(engine, clock, run_id)

    assert run.status == "FAILED"
    lines = log_lines(engine, run_id)
    assert ("info", "using ***", "script") in lines, "the command did see the value"
    assert not any(secret in message for _, message, _ in lines)
    assert secret not in (run.error or "")
    [attempt] = engine.get_run(run_id).attempts
    assert json.loads(attempt.error)["message"].endswith("denied for ***")


@SHAPES
def test_long_output_is_bounded_per_line_and_per_step(
    is_async: bool, make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    script = (
        "i=0; while [ $i -lt 1100 ]; do echo line $i; i=$((i+1)); done; "
        "head -c 10000 /dev/zero | tr '\\0' x >&2"
    )
    engine = make_engine(exec_app(is_async, ["sh", "-c", script]))
    run = drive(engine, clock, start(engine, EVENT))

    assert run.status == "COMPLETED", run.error
    lines = [message for _, message, step in log_lines(engine, run.id) if step == "script"]
    assert lines[-1] == "… 101 more lines of output not logged"
    assert len(lines) == 1 + 1000 + 1, "the command line, 1000 lines, the summary"
    result = json.loads(run.output or "null")
    assert result["stdout_tail"].splitlines()[-1] == "line 1099"
    assert len(result["stdout_tail"].splitlines()) == 20
    assert result["stderr_tail"] == "x" * 4096 + "… (5904 more characters)"


def test_a_command_that_cannot_start_is_a_step_error(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    engine = make_engine(exec_app(False, ["/nonexistent/tool"], retries=0))
    run = drive(engine, clock, start(engine, EVENT))
    assert run.status == "FAILED"
    [attempt] = engine.get_run(run.id).attempts
    message = json.loads(attempt.error)["message"]
    assert message.startswith("command 'tool' exited with code 127; stderr ends with:")
    assert "could not start '/nonexistent/tool': No such file or directory" in message


def test_env_is_merged_over_the_worker_environment_and_input_is_fed_to_stdin(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    script = 'read line; echo "$line/$EXTRA/${HOME:+home}"'
    app = exec_app(False, ["sh", "-c", script], env={"EXTRA": "x"}, input="hello\n")
    engine = make_engine(app)
    run = drive(engine, clock, start(engine, EVENT))
    assert run.status == "COMPLETED", run.error
    assert json.loads(run.output or "null")["stdout_tail"] == "hello/x/home"
    assert os.environ.get("EXTRA") is None


@pytest.mark.parametrize(
    ("argument", "value", "field"),
    [
        ("argv", "ls -l", "argv"),
        ("argv", [], "argv"),
        ("argv", ["ls", 3], "argv"),
        ("timeout", "soon", "timeout"),
        ("timeout", 0, "timeout"),
        ("env", {"A": 1}, "env"),
        ("input", 42, "input"),
        ("ok_codes", (), "ok_codes"),
        ("ok_codes", (True,), "ok_codes"),
        ("ok_codes", 0, "ok_codes"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(argument: str, value: Any, field: str) -> None:
    arguments: dict[str, Any] = {
        "argv": ["true"],
        "timeout": None,
        "env": None,
        "cwd": None,
        "input": None,
        "ok_codes": (0,),
    }
    arguments[argument] = value
    with pytest.raises(InvalidInput) as raised:
        command_spec(**arguments)
    assert raised.value.field == field


def test_durations_are_accepted_as_timeouts() -> None:
    spec = command_spec(
        ["true"], timeout="1m30s", env=None, cwd=None, input="text", ok_codes=[0, 2]
    )
    assert (spec.timeout, spec.input, spec.ok_codes) == (90.0, b"text", frozenset({0, 2}))

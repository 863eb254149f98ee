"""`step.exec`: run a command as a step, its output streamed into the run's log as it comes.

On POSIX the command runs under a small guard process (`_guard.py`) that leads a process group
of its own. Its stdout and stderr lines go to the run's log live (bounded per line and per
step), and the last lines of each are kept for the result. The whole group is stopped
(SIGTERM, then SIGKILL after `GRACE_SECONDS`) on the step's timeout, once the run is
cancelled, timed out or taken over, and when the worker shuts down; if the worker dies, the
guard stops the group itself (at once on Linux, by a parent-death signal; elsewhere within
half a second). Once the command itself has exited, whatever is left of its group is killed.

Elsewhere (Windows) there is no guard and no process group: only the command's own process is
stopped, and a dying worker may leave it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

from stepline import errors
from stepline._child_process import child_preexec
from stepline._durations import parse_duration
from stepline.errors import CommandFailed, CommandTimedOut

GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
MAX_LINE_CHARS = 4096  # a longer line is cut, noting how much was left out
MAX_LOGGED_LINES = 1000  # per step, both streams together; the rest are counted
TAIL_LINES = 20  # of each stream, in the result and in a failure's message
DRY_RUN_VARIABLE = "STEPLINE_DRY_RUN"  # set to "1" for the commands of a dry run
SECRET_MIN_CHARS = 4  # `env` values this long are masked in logged lines and tails
POLL_SECONDS = 0.05
_READ_BYTES = 4 * MAX_LINE_CHARS  # at most this much of one line is read into memory
_POSIX = os.name == "posix"
_GUARD = str(Path(__file__).with_name("_guard.py"))


class CommandHost(Protocol):
    """What a running command needs from the engine (the run's session)."""

    def log(self, level: str, message: str) -> None:
        """Record a line on the run's log, tagged with the running step."""
        ...

    def flush_log(self) -> None:
        """Save the step's log lines now if they have waited long enough (live output)."""
        ...

    def interruption(self) -> str | None:
        """Why the command must stop now (run lost, worker stopping), or None."""
        ...

    def interrupt(self) -> NoReturn:
        """End the replay for that reason: nothing of the step is committed."""
        ...

    @property
    def dry_run(self) -> bool:
        """Whether the run is a dry run (the command gets `STEPLINE_DRY_RUN=1`)."""
        ...


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command to run, checked."""

    argv: tuple[str, ...]
    timeout: float | None
    env: dict[str, str] | None
    cwd: str | None
    input: bytes | None
    ok_codes: frozenset[int]

    @property
    def name(self) -> str:
        """The program's name, as logged (arguments may hold secrets; they are not logged)."""
        return os.path.basename(self.argv[0])


def command_spec(
    argv: Any,
    *,
    timeout: Any,
    env: Any,
    cwd: Any,
    input: Any,
    ok_codes: Any,
) -> CommandSpec:
    """Check `step.exec`'s arguments, naming the one that is wrong."""
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence) or not argv:
        raise errors.InvalidInput(
            "expected a non-empty list such as ['ls', '-l'] (a string is not split)", "argv"
        )
    if not all(isinstance(arg, str | os.PathLike) for arg in argv):
        raise errors.InvalidInput("every argument must be a string", "argv")
    if env is not None and not (
        isinstance(env, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise errors.InvalidInput("must map names to string values", "env")
    if input is not None and not isinstance(input, str | bytes):
        raise errors.InvalidInput("must be a string or bytes", "input")
    codes = frozenset(ok_codes) if isinstance(ok_codes, Iterable) else frozenset()
    if not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        raise errors.InvalidInput("expected exit codes, e.g. (0,) or (0, 1)", "ok_codes")
    seconds = None if timeout is None else parse_duration(timeout, field="timeout").total_seconds()
    if seconds is not None and seconds <= 0:
        raise errors.InvalidInput(f"expected a positive duration, not {timeout!r}", "timeout")
    return CommandSpec(
        argv=tuple(os.fspath(arg) for arg in argv),
        timeout=None if seconds is None else float(seconds),
        env=None if env is None else dict(env),
        cwd=None if cwd is None else os.fspath(cwd),
        input=input.encode() if isinstance(input, str) else input,
        ok_codes=codes,
    )


class _Output:
    """The command's lines: logged (bounded, secrets masked) and kept as tails."""

    def __init__(self, host: CommandHost, secrets: Iterable[str]) -> None:
        self._host = host
        self._secrets = sorted({s for s in secrets if len(s) >= SECRET_MIN_CHARS}, key=len)[::-1]
        self.lines: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()
        self.tails = {
            "stdout": deque[str](maxlen=TAIL_LINES),
            "stderr": deque[str](maxlen=TAIL_LINES),
        }
        self._open = {"stdout", "stderr"}
        self._logged = 0
        self._skipped = 0

    def read(self, stream: str, pipe: IO[bytes]) -> None:
        """Queue each line of `pipe` (on a thread of its own), then None at its end."""
        rest_of_line = False  # the chunks after the first of an overlong line are dropped
        with pipe:
            for raw in iter(lambda: pipe.readline(_READ_BYTES), b""):
                if not rest_of_line:
                    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    self.lines.put((stream, text))
                rest_of_line = not raw.endswith(b"\n")
        self.lines.put((stream, None))

    def pump(self, wait: float) -> None:
        """Take the lines that arrived, waiting up to `wait` seconds for the first."""
        try:
            item = self.lines.get(timeout=wait) if wait > 0 else self.lines.get_nowait()
            while True:
                self._take(*item)
                item = self.lines.get_nowait()
        except queue.Empty:
            return

    def finish(self, wait: float) -> None:
        """Take lines until both streams ended or `wait` seconds passed; summarise the rest."""
        deadline = time.monotonic() + wait
        while self._open and (left := deadline - time.monotonic()) > 0:
            self.pump(min(left, POLL_SECONDS))
        if self._skipped:
            self._host.log("warning", f"… {self._skipped} more lines of output not logged")

    def mask(self, text: str) -> str:
        """`text` with the `env` values in it replaced by `***`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def tail(self, stream: str) -> str:
        """The last lines of a stream, masked."""
        return "\n".join(self.tails[stream])

    def _take(self, stream: str, line: str | None) -> None:
        if line is None:
            self._open.discard(stream)
            return
        line = self.mask(line)
        if len(line) > MAX_LINE_CHARS:
            line = f"{line[:MAX_LINE_CHARS]}… ({len(line) - MAX_LINE_CHARS} more characters)"
        self.tails[stream].append(line)
        if self._logged >= MAX_LOGGED_LINES:
            self._skipped += 1
            return
        self._logged += 1
        self._host.log("info" if stream == "stdout" else "warning", line)


def _spawn(spec: CommandSpec, *, dry_run: bool) -> subprocess.Popen[bytes]:
    env = None if spec.env is None else {**os.environ, **spec.env}
    if dry_run:
        env = {**(env if env is not None else os.environ), DRY_RUN_VARIABLE: "1"}
    argv = spec.argv
    if _POSIX:
        argv = (sys.executable, "-I", "-S", _GUARD, str(GRACE_SECONDS), *argv)
    try:
        return subprocess.Popen(  # noqa: S603  (running the user's command is the point)
            argv,
            stdin=subprocess.DEVNULL if spec.input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=env,
            start_new_session=_POSIX,
            preexec_fn=child_preexec(),
        )
    except OSError as exc:
        where = f" in {spec.cwd!r}" if spec.cwd is not None else ""
        raise CommandFailed(
            f"could not start {spec.name!r}{where}: {exc.strerror or exc}"
        ) from None


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's process group (the command alone where there are none)."""
    try:
        if _POSIX:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    try:
        with process.stdin:
            process.stdin.write(data)
    except (BrokenPipeError, OSError):
        pass  # the command stopped reading; its exit code tells the rest


def _threads(process: subprocess.Popen[bytes], spec: CommandSpec, output: _Output) -> None:
    assert process.stdout is not None and process.stderr is not None
    started = [
        threading.Thread(target=output.read, args=("stdout", process.stdout), daemon=True),
        threading.Thread(target=output.read, args=("stderr", process.stderr), daemon=True),
    ]
    if spec.input is not None:
        started.append(threading.Thread(target=_feed, args=(process, spec.input), daemon=True))
    for thread in started:
        thread.start()


def _stop(process: subprocess.Popen[bytes], output: _Output) -> None:
    """Have the guard stop the group (SIGTERM, grace, SIGKILL); SIGKILL it if it does not."""
    if _POSIX:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS + 1
    while process.poll() is None and time.monotonic() < deadline:
        output.pump(POLL_SECONDS)
    _kill(process)
    process.wait()


def run_command(
    spec: CommandSpec, host: CommandHost, abort: threading.Event | None = None
) -> dict[str, Any]:
    """Run the command to its end, or stop it; the step's result.

    Args:
        spec: The command.
        host: The run's session.
        abort: Set when the caller gave up on the command (an `async` step was cancelled).

    Raises:
        CommandFailed: It exited with a code outside `ok_codes`, or could not be started.
        CommandTimedOut: It ran past `spec.timeout`.
    """
    output = _Output(host, (spec.env or {}).values())
    host.log("info", f"$ {spec.name} ({len(spec.argv) - 1} arguments, not logged)")
    began = time.monotonic()
    deadline = None if spec.timeout is None else began + spec.timeout
    process = _spawn(spec, dry_run=host.dry_run)
    _threads(process, spec, output)
    try:
        stopped = _watch(process, output, host, abort, deadline)
    finally:
        _kill(process)  # what the command left running in its group (all of it, on an error)
    output.finish(GRACE_SECONDS)
    duration_ms = round((time.monotonic() - began) * 1000)
    if stopped == "timeout":
        raise CommandTimedOut(f"command {spec.name!r} timed out after {spec.timeout:g}s")
    if stopped is not None:
        host.log("warning", f"command {spec.name!r} stopped: {stopped}")
        if abort is not None and abort.is_set():
            raise CommandFailed(f"command {spec.name!r} stopped: {stopped}")
        host.interrupt()
    return _result(spec, output, process.returncode, duration_ms)


def _watch(
    process: subprocess.Popen[bytes],
    output: _Output,
    host: CommandHost,
    abort: threading.Event | None,
    deadline: float | None,
) -> str | None:
    """Log the output until the command exits (None) or must stop (why, once it stopped)."""
    while process.poll() is None:
        output.pump(POLL_SECONDS)
        host.flush_log()
        stopped = _stop_reason(host, abort, deadline)
        if stopped is not None:
            _stop(process, output)
            return stopped
    return None


def _stop_reason(
    host: CommandHost, abort: threading.Event | None, deadline: float | None
) -> str | None:
    reason = host.interruption()
    if reason is None and abort is not None and abort.is_set():
        reason = "the step was cancelled"
    if reason is None and deadline is not None and time.monotonic() >= deadline:
        reason = "timeout"
    return reason


def _result(spec: CommandSpec, output: _Output, code: int, duration_ms: int) -> dict[str, Any]:
    stderr = output.tail("stderr")
    if code not in spec.ok_codes:
        ending = f"; stderr ends with:\n{stderr}" if stderr else " (no stderr)"
        raise CommandFailed(f"command {spec.name!r} exited with code {code}{ending}")
    return {
        "returncode": code,
        "stdout_tail": output.tail("stdout"),
        "stderr_tail": stderr,
        "duration_ms": duration_ms,
    }


async def run_command_async(spec: CommandSpec, host: CommandHost) -> dict[str, Any]:
    """`run_command` on a thread; a cancelled task stops the command too."""
    abort = threading.Event()
    try:
        return await asyncio.to_thread(run_command, spec, host, abort)
    except asyncio.CancelledError:
        abort.set()
        raise

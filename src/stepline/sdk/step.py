"""The step API (`ctx.step`): memoized units of durable work, in `def` and `async def` shapes.

The logic lives once, in the engine's `StepBackend`; the two classes here are thin shells that
differ only in how they call user code and wait for the backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol, TypeVar, overload

from stepline import errors
from stepline._checks import is_text
from stepline._durations import Duration, parse_duration, require_aware
from stepline.sdk.command import CommandHost, command_spec, run_command, run_command_async
from stepline.sdk.options import match_condition

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StepKey:
    """A step as reached in one replay: user id (with `:N` for repeats), hash and position."""

    id: str
    hash: str
    position: int


@dataclass(frozen=True, slots=True)
class WaitSpec:
    """What a `wait_for_event` step waits for."""

    event: str
    expression: str | None
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class InvokeSpec:
    """What a `step.invoke` starts: a function by id, its event data, how long to wait."""

    function_id: str
    data: dict[str, Any]
    timeout: timedelta | None


class StepBackend(CommandHost, Protocol):
    """What the engine provides to the step API for one run (see engine/session.py)."""

    def key(self, step_id: str) -> StepKey:
        """Hash the next use of `step_id` the Inngest way and give it a position."""
        ...

    def replayed(self, key: StepKey) -> tuple[bool, Any]:
        """(True, value) if the step is memoized (raising `StepError` for a failed one)."""
        ...

    def started(self, key: StepKey) -> datetime:
        """Note that a new step begins; returns its start time."""
        ...

    def attempt(self, key: StepKey) -> AbstractContextManager[object]:
        """Around one attempt of a `step.run` (its trace span, current while it runs)."""
        ...

    def completed(self, key: StepKey, output: str, started_at: datetime) -> None:
        """Commit a finished `step.run`."""
        ...

    def failed(self, key: StepKey, error: BaseException, started_at: datetime) -> NoReturn:
        """Retry the step later (parks the run) or commit its failure and raise `StepError`."""
        ...

    def sleep(self, key: StepKey, until: datetime) -> None:
        """Return once `until` has passed; otherwise park the run until then."""
        ...

    def wait(self, key: StepKey, spec: WaitSpec) -> dict[str, Any] | None:
        """The matching event, None on timeout, or park the run until one of them happens."""
        ...

    def send(self, key: StepKey, events: list[dict[str, Any]]) -> list[str]:
        """Commit the step and store its events in one transaction; returns their ids."""
        ...

    def invoke(self, key: StepKey, spec: InvokeSpec) -> Any:
        """Start the function's run and park until it ends; its output, or raise `StepError`."""
        ...

    def parallel(self, key: StepKey, count: int) -> int | None:
        """Plan a parallel group (parking the run) until its branches are done: then None.

        In a branch's own replay, the index of the branch to execute.
        """
        ...

    def branch(self, key: StepKey, index: int) -> AbstractContextManager[None]:
        """Steps reached inside get ids of their own for branch `index` of group `key`."""
        ...

    def branch_done(self, key: StepKey, value: Any) -> NoReturn:
        """End a branch's replay with the branch's result."""
        ...

    def now(self) -> datetime:
        """The engine clock's current time."""
        ...


def hash_step_id(unhashed: str) -> str:
    """SHA-1 hex of a step id, as Inngest's SDKs hash them."""
    return hashlib.sha1(unhashed.encode("utf-8"), usedforsecurity=False).hexdigest()


def encode_output(step_id: str, value: Any) -> str:
    """JSON-encode a step's result, or raise `StepOutputError` naming the step."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.StepOutputError(
            f"step {step_id!r} returned a value that is not JSON-serializable ({exc}); "
            "return plain data: dict, list, str, int, float, bool or None"
        ) from None


def _wait_spec(event: str, timeout: Duration, match: str | None, if_: str | None) -> WaitSpec:
    if not is_text(event):
        raise errors.InvalidInput("expected an event name", "event")
    return WaitSpec(
        event=event,
        expression=match_condition(match, if_),
        timeout=parse_duration(timeout, field="timeout"),
    )


def _invoke_spec(
    function: Any, data: Mapping[str, Any] | None, timeout: Duration | None
) -> InvokeSpec:
    function_id = getattr(function, "id", function)
    if not is_text(function_id):
        raise errors.InvalidInput("expected a function or a function id", "function")
    if data is not None and not isinstance(data, Mapping):
        raise errors.InvalidInput("must be a JSON object", "data")
    return InvokeSpec(
        function_id=function_id,
        data=dict(data or {}),
        timeout=None if timeout is None else parse_duration(timeout, field="timeout"),
    )


def _branches(branches: Sequence[Callable[[], Any]]) -> list[Callable[[], Any]]:
    listed = list(branches)
    if not listed or not all(callable(branch) for branch in listed):
        raise errors.InvalidInput("expected a non-empty list of functions", "branches")
    return listed


def _events(events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(events, Mapping):
        return [dict(events)]
    return [dict(e) for e in events]


class _Base:
    def __init__(self, backend: StepBackend) -> None:
        self._backend = backend


class Step(_Base):
    """Steps for `def` functions: each call blocks until the step is done."""

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` once for this run; later replays return its stored result.

        The result must be JSON-serializable; it is returned as decoded from JSON, so a replay
        sees exactly what the first execution saw. A failure is retried with backoff; when
        attempts run out, `StepError` is raised here.
        """
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value  # type: ignore[no-any-return]  # decoded JSON, typed by the caller
        started = self._backend.started(key)
        with self._backend.attempt(key):
            try:
                output = encode_output(key.id, fn(*args, **kwargs))
            except Exception as exc:
                self._backend.failed(key, exc, started)
            self._backend.completed(key, output, started)
        return json.loads(output)  # type: ignore[no-any-return]

    def exec(
        self,
        step_id: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: Duration | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        input: str | bytes | None = None,
        ok_codes: Iterable[int] = (0,),
    ) -> dict[str, Any]:
        """Run a command once for this run, as `run` runs a function (see sdk/command.py).

        Its stdout and stderr lines stream into the run's log as they come (stderr as
        warnings; values of `env` masked). It is stopped, with its process group, on
        `timeout` (seconds), when the run is cancelled or times out, and when the worker stops.

        Args:
            step_id: The step's id.
            argv: The program and its arguments (not run through a shell).
            timeout: How long the command may run ("30s", "10m", seconds or a timedelta);
                then it is killed and the attempt fails with `CommandTimedOut` (retried like
                any step error).
            env: Variables set over the worker's environment.
            cwd: The working directory.
            input: Written to the command's stdin (else stdin is empty).
            ok_codes: Exit codes that count as success.

        Returns:
            `{"returncode", "stdout_tail", "stderr_tail", "duration_ms"}`: the tails are the
            last lines of each stream.

        Raises:
            StepError: The command exited with another code (`CommandFailed`, its message
                ending with stderr's last lines) or timed out, on every attempt.
        """
        spec = command_spec(argv, timeout=timeout, env=env, cwd=cwd, input=input, ok_codes=ok_codes)
        return self.run(step_id, run_command, spec, self._backend)

    def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for `duration` ("30s", "10m", "1h30m" or a timedelta), durably."""
        until = self._backend.now() + parse_duration(duration)
        key = self._backend.key(step_id)
        if not self._backend.replayed(key)[0]:
            self._backend.sleep(key, until)

    def sleep_until(self, step_id: str, when: datetime) -> None:
        """Pause the run until the aware datetime `when`, durably."""
        until = require_aware(when, field="when")
        key = self._backend.key(step_id)
        if not self._backend.replayed(key)[0]:
            self._backend.sleep(key, until)

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration,
        match: str | None = None,
        if_: str | None = None,
    ) -> dict[str, Any] | None:
        """Wait for an event named `event` sent after this step began; None after `timeout`.

        Args:
            step_id: The step's id.
            event: The awaited event name.
            timeout: How long to wait.
            match: A field path, e.g. "data.order_id", that must be equal in the run's trigger
                event and the awaited event.
            if_: A CEL expression over `event` (the trigger) and `async` (the awaited event).
        """
        spec = _wait_spec(event, timeout, match, if_)
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value  # type: ignore[no-any-return]
        return self._backend.wait(key, spec)

    def send_event(
        self, step_id: str, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Send one event or a list of events exactly once across replays; returns their ids."""
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value  # type: ignore[no-any-return]
        return self._backend.send(key, _events(events))

    def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
    ) -> Any:
        """Run another function (a `Function` or its id) with `data`; returns its output.

        The run parks until the invoked run ends; its parent and it link to each other.

        Raises:
            StepError: The invoked run failed, was cancelled or skipped, or did not end
                within `timeout`.
        """
        spec = _invoke_spec(function, data, timeout)
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value
        return self._backend.invoke(key, spec)

    def parallel(self, step_id: str, branches: Sequence[Callable[[], T]]) -> list[T]:
        """Run the branches (each a function of no arguments calling steps) at the same time.

        Each branch is a queue item of its own that any worker may execute; a failed step
        in a branch is retried on its own. Returns the branches' results in order; raises
        the `StepError` of the first branch that failed for good.
        """
        listed = _branches(branches)
        key = self._backend.key(step_id)
        target = self._backend.parallel(key, len(listed))
        if target is not None:
            with self._backend.branch(key, target):
                value = listed[target]()
            self._backend.branch_done(key, value)
        results = []
        for index, branch in enumerate(listed):
            with self._backend.branch(key, index):
                results.append(branch())
        return results


class AsyncStep(_Base):
    """Steps for `async def` functions: the same API, awaited."""

    @overload
    async def run(
        self, step_id: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T: ...

    @overload
    async def run(self, step_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    async def run(self, step_id: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` (a `def` or `async def`) once for this run; see `Step.run`."""
        backend = self._backend
        key = backend.key(step_id)
        done, value = backend.replayed(key)
        if done:
            return value
        started = backend.started(key)
        with backend.attempt(key):
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                output = encode_output(key.id, result)
            except Exception as exc:
                await asyncio.to_thread(backend.failed, key, exc, started)
            await asyncio.to_thread(backend.completed, key, output, started)
        return json.loads(output)

    async def exec(
        self,
        step_id: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109  (the command's limit)
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        input: str | bytes | None = None,
        ok_codes: Iterable[int] = (0,),
    ) -> dict[str, Any]:
        """Run a command once for this run, without blocking the event loop; see `Step.exec`."""
        spec = command_spec(argv, timeout=timeout, env=env, cwd=cwd, input=input, ok_codes=ok_codes)
        return await self.run(step_id, run_command_async, spec, self._backend)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for `duration`, durably; see `Step.sleep`."""
        until = self._backend.now() + parse_duration(duration)
        key = self._backend.key(step_id)
        if not self._backend.replayed(key)[0]:
            await asyncio.to_thread(self._backend.sleep, key, until)

    async def sleep_until(self, step_id: str, when: datetime) -> None:
        """Pause the run until the aware datetime `when`, durably."""
        until = require_aware(when, field="when")
        key = self._backend.key(step_id)
        if not self._backend.replayed(key)[0]:
            await asyncio.to_thread(self._backend.sleep, key, until)

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration,  # noqa: ASYNC109  (a durable wait's length, not an I/O timeout)
        match: str | None = None,
        if_: str | None = None,
    ) -> dict[str, Any] | None:
        """Wait for an event; see `Step.wait_for_event`."""
        spec = _wait_spec(event, timeout, match, if_)
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value  # type: ignore[no-any-return]
        return await asyncio.to_thread(self._backend.wait, key, spec)

    async def send_event(
        self, step_id: str, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Send events exactly once across replays; see `Step.send_event`."""
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value  # type: ignore[no-any-return]
        return await asyncio.to_thread(self._backend.send, key, _events(events))

    async def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: Mapping[str, Any] | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109  (a durable wait, not an I/O timeout)
    ) -> Any:
        """Run another function and return its output; see `Step.invoke`."""
        spec = _invoke_spec(function, data, timeout)
        key = self._backend.key(step_id)
        done, value = self._backend.replayed(key)
        if done:
            return value
        return await asyncio.to_thread(self._backend.invoke, key, spec)

    async def parallel(self, step_id: str, branches: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run the branches at the same time; see `Step.parallel`.

        Each branch is a function of no arguments returning an awaitable (e.g.
        `lambda: ctx.step.run("a", fetch_a)`) or a value.
        """
        listed = _branches(branches)
        key = self._backend.key(step_id)
        target = await asyncio.to_thread(self._backend.parallel, key, len(listed))
        if target is not None:
            with self._backend.branch(key, target):
                value = await _awaited(listed[target]())
            self._backend.branch_done(key, value)
        results = []
        for index, branch in enumerate(listed):
            with self._backend.branch(key, index):
                results.append(await _awaited(branch()))
        return results


async def _awaited(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value

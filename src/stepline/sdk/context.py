"""The `Context` a function receives: its event(s), run id, attempt, steps, log and progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from stepline.sdk.step import AsyncStep, Step

# `Context` alone means a `def` function's context; `async def` functions take `AsyncContext`.
S = TypeVar("S", Step, AsyncStep, default=Step)


class RunHooks(Protocol):
    """What the engine records for `ctx.log`, `ctx.progress` and `ctx.count`."""

    def log(self, level: str, message: str) -> None:
        """Record a log line on the run."""
        ...

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        """Record the run's progress."""
        ...

    def count(self, name: str, n: float) -> None:
        """Add `n` to the run's counter `name`."""
        ...


class RunLog:
    """`ctx.log`: lines stored on the run and shown in the dashboard, API and CLI.

    Lines written while the run replays memoized steps are dropped, so each line is stored
    once however often the function is replayed.
    """

    def __init__(self, hooks: RunHooks) -> None:
        self._hooks = hooks

    def debug(self, message: str, *args: Any) -> None:
        """Record a debug line (`%`-style arguments as in `logging`)."""
        self._hooks.log("debug", message % args if args else message)

    def info(self, message: str, *args: Any) -> None:
        """Record an info line."""
        self._hooks.log("info", message % args if args else message)

    def warning(self, message: str, *args: Any) -> None:
        """Record a warning line."""
        self._hooks.log("warning", message % args if args else message)

    def error(self, message: str, *args: Any) -> None:
        """Record an error line (shown among the run's errors)."""
        self._hooks.log("error", message % args if args else message)


class Context(Generic[S]):
    """What a function receives.

    Attributes:
        event: The triggering event, `{id, name, data, user, ts}`.
        events: Every triggering event (one, unless the run was started by a batch).
        run_id: This run's id.
        attempt: The function-level attempt, 0 for the first.
        step: The step API (`Step` for `def` functions, `AsyncStep` for `async def`).
        log: Log lines stored on the run.
    """

    def __init__(
        self,
        *,
        events: Sequence[dict[str, Any]],
        run_id: str,
        attempt: int,
        step: S,
        hooks: RunHooks,
    ) -> None:
        self.events = list(events)
        self.event: dict[str, Any] = self.events[0] if self.events else {}
        self.run_id = run_id
        self.attempt = attempt
        self.step: S = step
        self.log = RunLog(hooks)
        self._hooks = hooks

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress, e.g. `ctx.progress(40, 120, "page 4 of 12")`; gives the run an ETA."""
        self._hooks.progress(done, total, message)

    def count(self, name: str, n: float = 1) -> None:
        """Add `n` to the run's counter `name` (e.g. "inserted"); counted once across replays."""
        self._hooks.count(name, n)


AsyncContext = Context[AsyncStep]
"""The context an `async def` function receives: `await ctx.step.run(...)`."""

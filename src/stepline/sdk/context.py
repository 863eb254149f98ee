"""The `Context` a function receives: its event(s), run id, attempt, steps, log and progress."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from stepline.sdk.event import Event, RunTrigger
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


class CancelFlag:
    """`ctx.cancelled`: set once the run stopped being this replay's to finish.

    That is, the run was cancelled (API, `cancel_on`, singleton), timed out, or was taken
    over after this worker lost its lease. It is set at once when the run was ended in this
    process or on PostgreSQL, else (SQLite, another process) at the worker's next heartbeat.
    A `def` function cannot be interrupted, so long-running code checks the flag and returns
    early; whatever it returns is discarded and no further step starts::

        def poll() -> None:
            while not ctx.cancelled.wait(5):  # sleeps 5 s, or returns True once cancelled
                if job_done():
                    return

    An `async def` function is cancelled at its next `await` instead (`CancelledError`); it
    may check `is_set()`, but must not block the event loop in `wait`. Read-only.

    Args:
        event: The engine's flag for this replay; by default one never set (a context built
            outside the engine, e.g. in a unit test).
    """

    __slots__ = ("_event",)

    def __init__(self, event: threading.Event | None = None) -> None:
        self._event = event if event is not None else threading.Event()

    def is_set(self) -> bool:
        """True once the run was cancelled or timed out (or taken over)."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or `timeout` seconds passed; True if it is set."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"<CancelFlag {'set' if self.is_set() else 'clear'}>"


class Context(Generic[S]):
    """What a function receives.

    Attributes:
        event: The triggering event (`Event`: `ctx.event.data`, `.name`, `.id`, `.ts`,
            `.user`; `ctx.event["data"]` works too). A cron run's is the tick event
            `stepline/scheduled.timer`, a manual or invoked run's `stepline/function.invoked`.
        events: Every triggering event, a tuple (one, unless the run was started by a batch).
        trigger: How the run was started (`RunTrigger`: kind, by, scheduled_at); `manual`
            with no actor for a context built outside the engine.
        run_id: This run's id.
        attempt: The function-level attempt, 0 for the first.
        step: The step API (`Step` for `def` functions, `AsyncStep` for `async def`).
        log: Log lines stored on the run.
        cancelled: Set once the run was cancelled or timed out while this code executes
            (see `CancelFlag`); never set for a context built outside the engine.
        dry_run: True in a dry run: `step.send_event` records the events instead of sending
            them, `step.invoke` starts dry runs; skip your own writes when it is set.
    """

    def __init__(
        self,
        *,
        events: Sequence[Mapping[str, Any]],
        run_id: str,
        attempt: int,
        step: S,
        hooks: RunHooks,
        cancelled: CancelFlag | None = None,
        dry_run: bool = False,
        trigger: RunTrigger | None = None,
    ) -> None:
        self.events = tuple(e if isinstance(e, Event) else Event.of(e) for e in events)
        self.event: Event = self.events[0] if self.events else Event(id="", name="", data={})
        self.trigger = trigger if trigger is not None else RunTrigger(kind="manual")
        self.run_id = run_id
        self.attempt = attempt
        self.step: S = step
        self.log = RunLog(hooks)
        self._hooks = hooks
        self._cancelled = cancelled if cancelled is not None else CancelFlag()
        self.dry_run = dry_run

    @property
    def cancelled(self) -> CancelFlag:
        """Set once the run was cancelled or timed out (see `CancelFlag`)."""
        return self._cancelled

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress, e.g. `ctx.progress(40, 120, "page 4 of 12")`; gives the run an ETA."""
        self._hooks.progress(done, total, message)

    def count(self, name: str, n: float = 1) -> None:
        """Add `n` to the run's counter `name` (e.g. "inserted"); counted once across replays."""
        self._hooks.count(name, n)


AsyncContext = Context[AsyncStep]
"""The context an `async def` function receives: `await ctx.step.run(...)`."""

"""`App` and the function decorator: what user code declares."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stepline import errors
from stepline._checks import is_int, is_text
from stepline._durations import Duration, parse_duration
from stepline._retention import CONFIG_KEY, parse_retention, retention_config
from stepline.sdk.options import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    options_config,
)
from stepline.sdk.triggers import CronTrigger, EventTrigger, Trigger

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_RETRIES = 20
DEFAULT_RETRIES = 4
FAILED_EVENT = "stepline/function.failed"

Handler = Callable[..., Any]


@dataclass(frozen=True, kw_only=True)
class Function:
    """A function registered on an `App`: its stable id, triggers, options and handler.

    `options` holds the checked flow-control options as stored in the registry (see
    `stepline.sdk.options`); the engine reads them from there. `retention_seconds` is the
    function's own retention as stored (0: forever), None to follow the default.
    """

    id: str
    name: str
    app_id: str
    handler: Handler
    triggers: tuple[Trigger, ...]
    retries: int = DEFAULT_RETRIES
    timeout: timedelta | None = None
    is_async: bool = field(default=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    retention_seconds: float | None = None

    @property
    def max_attempts(self) -> int:
        """Attempts per step (and per stretch of code between steps): retries + 1."""
        return self.retries + 1

    @property
    def cron_triggers(self) -> list[CronTrigger]:
        """The function's cron schedules."""
        return [t for t in self.triggers if isinstance(t, CronTrigger)]

    def config(self) -> str:
        """The JSON configuration stored in the registry (read by routing and the API)."""
        config = {
            "triggers": [t.to_config() for t in self.triggers],
            "retries": self.retries,
            "timeout_seconds": self.timeout.total_seconds() if self.timeout else None,
            **self.options,
        }
        if self.retention_seconds is not None:
            config[CONFIG_KEY] = self.retention_seconds
        return json.dumps(config, sort_keys=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the handler directly (useful in unit tests of user code)."""
        return self.handler(*args, **kwargs)


def _check_trigger(function_id: str, trigger: object) -> None:
    if not isinstance(trigger, EventTrigger | CronTrigger):
        raise errors.ConfigurationError(
            f"function {function_id!r}: triggers must be stepline.event(...) or stepline.cron(...)"
        )
    try:
        trigger.check()
    except errors.InvalidInput as exc:
        raise errors.ConfigurationError(
            f"function {function_id!r}: trigger {trigger}: {exc}"
        ) from None


class App:
    """A named set of functions, served by `stepline dev`, an `Engine` or a worker.

    Args:
        id: A stable id such as "base-stations".
    """

    def __init__(self, id: str) -> None:
        if not is_text(id, _ID):
            raise errors.ConfigurationError(
                f"app id {id!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
        self.id = id
        self.functions: dict[str, Function] = {}

    def function(
        self,
        *,
        id: str,
        name: str | None = None,
        triggers: Sequence[Trigger] | Trigger = (),
        retries: int = DEFAULT_RETRIES,
        timeout: Duration | None = None,
        timeouts: Timeouts | None = None,
        concurrency: int | Concurrency | Sequence[Concurrency] | None = None,
        throttle: Throttle | None = None,
        rate_limit: RateLimit | None = None,
        debounce: Debounce | None = None,
        priority: Priority | None = None,
        batch_events: Batch | None = None,
        idempotency: str | None = None,
        singleton: Singleton | None = None,
        cancel_on: CancelOn | Sequence[CancelOn] | None = None,
        on_failure: Handler | None = None,
        retention: Duration | None = None,
    ) -> Callable[[Handler], Function]:
        """Declare a durable function.

        Args:
            id: Stable id; runs are stored under it, so renaming the Python function is safe.
            name: Display name (defaults to the id).
            triggers: `stepline.event(...)` and `stepline.cron(...)` triggers. A function with
                none runs only when invoked ("Run now", `stepline trigger`, `Client.invoke`,
                `step.invoke`).
            retries: Further attempts after a failure, per step (default 4: five attempts).
            timeout: Bound on a run's total time from its start, e.g. "10m" (`timeouts.finish`).
            timeouts: `Timeouts(start=..., finish=...)`: also bounds the time queued.
            concurrency: A limit (an int), a `Concurrency`, or a list of up to two.
            throttle: Spread run starts (`Throttle`); excess triggers wait.
            rate_limit: Cap runs per period (`RateLimit`); excess triggers are skipped.
            debounce: One run after triggers stop arriving (`Debounce`), with the last event.
            priority: Head start in seconds (`Priority`), from -600 to 600.
            batch_events: One run per batch of events (`Batch`); see `ctx.events`.
            idempotency: A CEL key; one run per key value in 24 hours, later ones skipped.
            singleton: One active run per key (`Singleton`): skip or cancel.
            cancel_on: Events that cancel the run (`CancelOn`, or a list).
            on_failure: A function `(ctx)` run once when a run fails for good; its `ctx.event`
                is the `stepline/function.failed` event. Registered as "<id>-failure".
            retention: How long its ended runs are kept, e.g. "7d", or "forever"; None follows
                the default (`--retain`, 30 days). Runs it starts (invoke, parallel) go
                with it.

        Raises:
            ConfigurationError: An option is invalid, naming the function and the option.
        """
        given = {
            "concurrency": concurrency,
            "throttle": throttle,
            "rate_limit": rate_limit,
            "debounce": debounce,
            "priority": priority,
            "batch_events": batch_events,
            "idempotency": idempotency,
            "singleton": singleton,
            "cancel_on": cancel_on,
            "on_failure": on_failure,
        }
        if not is_text(id, _ID):
            raise errors.ConfigurationError(
                f"function id {id!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
        if id in self.functions:
            raise errors.ConfigurationError(f"app {self.id!r} already has a function {id!r}")
        trigger_list = (triggers,) if isinstance(triggers, EventTrigger | CronTrigger) else triggers
        for trigger in trigger_list:
            _check_trigger(id, trigger)
        if not is_int(retries) or not 0 <= retries <= MAX_RETRIES:
            raise errors.ConfigurationError(
                f"function {id!r}: retries must be an integer from 0 to {MAX_RETRIES}"
            )
        finish, options = _options(id, timeout, timeouts, given)
        retention_seconds = _retention(id, retention)

        def register(handler: Handler) -> Function:
            if not callable(handler):
                raise errors.ConfigurationError(f"function {id!r}: decorate a function")
            fn = Function(
                id=id,
                name=name or id,
                app_id=self.id,
                handler=handler,
                triggers=tuple(trigger_list),
                retries=retries,
                timeout=finish,
                is_async=inspect.iscoroutinefunction(handler),
                options=options,
                retention_seconds=retention_seconds,
            )
            if on_failure is not None:
                self._add_failure_handler(fn, on_failure)
            self.functions[id] = fn
            return fn

        return register

    def _add_failure_handler(self, fn: Function, handler: Handler) -> None:
        """Register `handler` as "<id>-failure", triggered by the function's failed runs."""
        failure_id = f"{fn.id}-failure"
        if failure_id in self.functions:
            raise errors.ConfigurationError(
                f"function {fn.id!r}: on_failure needs the id {failure_id!r}, already taken"
            )
        condition = f"event.data.function_id == {json.dumps(fn.id)}"
        self.functions[failure_id] = Function(
            id=failure_id,
            name=f"{fn.name} (on failure)",
            app_id=self.id,
            handler=handler,
            triggers=(EventTrigger(name=FAILED_EVENT, if_=condition),),
            is_async=inspect.iscoroutinefunction(handler),
        )


def _options(
    function_id: str,
    timeout: Duration | None,
    timeouts: Timeouts | None,
    given: Mapping[str, Any],
) -> tuple[timedelta | None, dict[str, Any]]:
    """The checked finish timeout and the registry record of the other options."""
    on_failure = given["on_failure"]
    if on_failure is not None and not callable(on_failure):
        raise errors.ConfigurationError(f"function {function_id!r}: on_failure must be a function")
    try:
        start, finish = _timeouts(timeout, timeouts)
        flow = {k: v for k, v in given.items() if k != "on_failure"}
        options = options_config(**flow, start_timeout=start)
    except errors.InvalidInput as exc:
        raise errors.ConfigurationError(f"function {function_id!r}: {exc}") from None
    if on_failure is not None:
        options["on_failure"] = f"{function_id}-failure"
    return finish, options


def _retention(function_id: str, retention: Duration | None) -> float | None:
    """The stored form of a function's own retention; None when it follows the default."""
    if retention is None:
        return None
    try:
        return retention_config(parse_retention(retention))
    except errors.InvalidInput as exc:
        raise errors.ConfigurationError(f"function {function_id!r}: {exc}") from None


def _timeouts(
    timeout: Duration | None, timeouts: Timeouts | None
) -> tuple[float | None, timedelta | None]:
    """(start seconds, finish) from `timeout` or `timeouts` (not both)."""
    if timeouts is None:
        finish = None if timeout is None else parse_duration(timeout, field="timeout")
        return None, finish
    if not isinstance(timeouts, Timeouts):
        raise errors.InvalidInput(f"expected stepline.Timeouts(...), not {timeouts!r}", "timeouts")
    if timeout is not None:
        raise errors.InvalidInput("give timeout or timeouts.finish, not both", "timeout")
    start, finish_seconds = timeouts.seconds()
    return start, None if finish_seconds is None else timedelta(seconds=finish_seconds)

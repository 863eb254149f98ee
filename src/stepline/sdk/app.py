"""`App` and the function decorator: what user code declares."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stepline import errors
from stepline._checks import is_int, is_text
from stepline._durations import Duration, parse_duration
from stepline.sdk.triggers import CronTrigger, EventTrigger, Trigger

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_RETRIES = 20
DEFAULT_RETRIES = 4
# Options that later versions implement; until then, asking for one is an error, not a no-op.
_NOT_YET = (
    "concurrency",
    "throttle",
    "rate_limit",
    "debounce",
    "priority",
    "batch_events",
    "idempotency",
    "singleton",
    "cancel_on",
    "on_failure",
)

Handler = Callable[..., Any]


@dataclass(frozen=True, kw_only=True)
class Function:
    """A function registered on an `App`: its stable id, triggers, options and handler."""

    id: str
    name: str
    app_id: str
    handler: Handler
    triggers: tuple[Trigger, ...]
    retries: int = DEFAULT_RETRIES
    timeout: timedelta | None = None
    is_async: bool = field(default=False)

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
        return json.dumps(
            {
                "triggers": [t.to_config() for t in self.triggers],
                "retries": self.retries,
                "timeout_seconds": self.timeout.total_seconds() if self.timeout else None,
            },
            sort_keys=True,
        )

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
        **options: Any,
    ) -> Callable[[Handler], Function]:
        """Declare a durable function.

        Args:
            id: Stable id; runs are stored under it, so renaming the Python function is safe.
            name: Display name (defaults to the id).
            triggers: `stepline.event(...)` and `stepline.cron(...)` triggers. A function with
                none runs only when invoked ("Run now", `stepline trigger`, `Client.invoke`).
            retries: Further attempts after a failure, per step (default 4: five attempts).
            timeout: Bound on a run's total time from its start, e.g. "10m".
            **options: Options of later versions (concurrency, singleton, ...): refused.

        Raises:
            ConfigurationError: An option is invalid or not supported by this version.
        """
        for option in options:
            if option in _NOT_YET:
                raise errors.ConfigurationError(
                    f"function {id!r}: option {option!r} is not supported by this version of "
                    "Stepline yet; remove it (it would not be honoured)"
                )
            raise errors.ConfigurationError(f"function {id!r}: unknown option {option!r}")
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
        try:
            limit = None if timeout is None else parse_duration(timeout, field="timeout")
        except errors.InvalidInput as exc:
            raise errors.ConfigurationError(f"function {id!r}: {exc}") from None

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
                timeout=limit,
                is_async=inspect.iscoroutinefunction(handler),
            )
            self.functions[id] = fn
            return fn

        return register

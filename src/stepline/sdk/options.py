"""Flow-control options of a function: plain records, checked when the function is declared.

Each option turns into a JSON-ready `to_config()` record stored in the function registry; the
engine reads only those records, so a function registered by other means (an Inngest SDK app
over HTTP) is served by the same code. Durations are stored as seconds and CEL expressions as
text (compiled once, on first use, and cached).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from stepline import errors
from stepline._cel import check_variables, compile_condition, compile_expression
from stepline._checks import is_int, is_text
from stepline._durations import Duration, parse_duration

Scope = Literal["function", "all"]
SingletonMode = Literal["skip", "cancel"]
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_EVENT_NAME = re.compile(r"^[^\s]{1,512}$")
MAX_LIMIT = 100_000
MAX_CONCURRENCY_LIMITS = 2
MAX_BATCH_SIZE = 10_000
MAX_PRIORITY_SECONDS = 600
MAX_CANCEL_TIMEOUT = timedelta(days=365)


def _limit(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
        raise errors.InvalidInput(f"must be an integer from 1 to {MAX_LIMIT}, not {value!r}", field)
    return value


def _seconds(
    value: Duration, field: str, *, low: timedelta = timedelta(seconds=1), high: timedelta
) -> float:
    """A duration within [low, high], in seconds."""
    span = parse_duration(value, field=field)
    if not low <= span <= high:
        raise errors.InvalidInput(f"must be from {_s(low)} to {_s(high)}, not {_s(span)}", field)
    return span.total_seconds()


def _s(span: timedelta) -> str:
    """Seconds as written in messages: "31536000s", "0.5s" (never in exponent notation)."""
    return f"{span.total_seconds():.15g}s"


def _key(value: str | None, field: str = "key") -> str | None:
    """A CEL key expression (any value type), compiled to check it; None means one key."""
    if value is not None:
        compile_expression(value, field=field)
        check_variables(value, ("event",), field=field)
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Concurrency:
    """At most `limit` runs executing at once, per value of `key` (a CEL expression over `event`).

    Only executing runs hold a slot: a sleeping, waiting or backing-off run does not. Runs
    over the limit wait in the queue and start, in priority-then-age order, as slots free.
    `scope="all"` shares the key (and so the slots) with every function using the same key.
    """

    limit: int
    key: str | None = None
    scope: Scope = "function"

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        if self.scope not in ("function", "all"):
            raise errors.InvalidInput(f"must be 'function' or 'all', not {self.scope!r}", "scope")
        return {"limit": _limit(self.limit, "limit"), "key": _key(self.key), "scope": self.scope}


@dataclass(frozen=True, kw_only=True, slots=True)
class Throttle:
    """At most `limit` run starts per `period` per key, `burst` of them at once; excess waits.

    Starts are spread evenly over the period (GCRA): a trigger over the limit is delayed, never
    dropped.
    """

    limit: int
    period: Duration
    burst: int = 1
    key: str | None = None

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        limit = _limit(self.limit, "limit")
        if not is_int(self.burst) or not 1 <= self.burst <= limit:
            raise errors.InvalidInput(
                f"must be an integer from 1 to limit ({limit}), not {self.burst!r}", "burst"
            )
        return {
            "limit": limit,
            "period_seconds": _seconds(self.period, "period", high=timedelta(days=7)),
            "burst": self.burst,
            "key": _key(self.key),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """At most `limit` runs per `period` per key; triggers over it start nothing (skipped)."""

    limit: int
    period: Duration
    key: str | None = None

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        return {
            "limit": _limit(self.limit, "limit"),
            "period_seconds": _seconds(self.period, "period", high=timedelta(days=1)),
            "key": _key(self.key),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Debounce:
    """Start one run `period` after the last trigger per key, with that last event.

    Each new trigger restarts the wait; `timeout` bounds the total delay since the first one.
    """

    period: Duration
    key: str | None = None
    timeout: Duration | None = None

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        period = _seconds(self.period, "period", high=timedelta(days=7))
        timeout = None
        if self.timeout is not None:
            high = timedelta(days=7)
            timeout = _seconds(self.timeout, "timeout", low=timedelta(seconds=period), high=high)
        return {"period_seconds": period, "key": _key(self.key), "timeout_seconds": timeout}


@dataclass(frozen=True, kw_only=True, slots=True)
class Priority:
    """`run`: a CEL expression over `event` giving seconds of head start, within ±600.

    A run with 120 starts ahead of runs queued up to two minutes before it; a negative value
    lets later runs pass it. It orders waiting runs only: it never delays a run.
    """

    run: str

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        if self.run is None:
            raise errors.InvalidInput("expected a CEL expression", "run")
        compile_expression(self.run, field="run")
        check_variables(self.run, ("event",), field="run")
        return {"run": self.run}


@dataclass(frozen=True, kw_only=True, slots=True)
class Batch:
    """Start one run for up to `max_size` events (per key), at most `timeout` after the first.

    The run's `ctx.events` holds the batch, oldest first; `ctx.event` is the first.
    """

    max_size: int
    timeout: Duration
    key: str | None = None

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        if not is_int(self.max_size) or not 1 <= self.max_size <= MAX_BATCH_SIZE:
            raise errors.InvalidInput(
                f"must be an integer from 1 to {MAX_BATCH_SIZE}, not {self.max_size!r}",
                "max_size",
            )
        return {
            "max_size": self.max_size,
            "timeout_seconds": _seconds(self.timeout, "timeout", high=timedelta(hours=1)),
            "key": _key(self.key),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Singleton:
    """At most one active run per key: a new trigger is skipped, or cancels the active run."""

    key: str | None = None
    mode: SingletonMode = "skip"

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry."""
        if self.mode not in ("skip", "cancel"):
            raise errors.InvalidInput(f"must be 'skip' or 'cancel', not {self.mode!r}", "mode")
        return {"key": _key(self.key), "mode": self.mode}


@dataclass(frozen=True, slots=True)
class CancelOn:
    """Cancel the run when an event named `event` arrives (after the run was created).

    `match="data.sync_id"` requires that field to be equal in the run's event and the incoming
    one; `if_` is a CEL condition over `event` (the run's) and `async` (the incoming event).
    `timeout` bounds how long the run listens (default: as long as it is active, up to a year).
    """

    event: str
    match: str | None = None
    if_: str | None = None
    timeout: Duration | None = None

    def to_config(self) -> dict[str, Any]:
        """The checked option as stored in the registry (`match` becomes an `if` condition)."""
        if not is_text(self.event, _EVENT_NAME):
            raise errors.InvalidInput("must be 1-512 characters without spaces", "event")
        return {
            "event": self.event,
            "if": match_condition(self.match, self.if_),
            "timeout_seconds": None
            if self.timeout is None
            else _seconds(self.timeout, "timeout", high=MAX_CANCEL_TIMEOUT),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """How long a run may wait to start, and take once started.

    `start`: longest time queued before the run starts (else it is CANCELLED); `finish`:
    longest time from its start to its end (else it FAILS). `timeout=` on a function is `finish`.
    """

    start: Duration | None = None
    finish: Duration | None = None

    def seconds(self) -> tuple[float | None, float | None]:
        """(start, finish) in seconds, checked."""
        year = timedelta(days=365)
        start = None if self.start is None else _seconds(self.start, "timeouts.start", high=year)
        finish = (
            None if self.finish is None else _seconds(self.finish, "timeouts.finish", high=year)
        )
        return start, finish


def match_condition(match: str | None, if_: str | None) -> str | None:
    """The CEL condition of a `match` field path or an `if_` expression (at most one given)."""
    if match is not None and if_ is not None:
        raise errors.InvalidInput("give either match or if_, not both", "match")
    if match is not None:
        path = str(match).removeprefix("event.")
        if not _PATH.match(path):
            raise errors.InvalidInput(
                f"{match!r} is not a field path like 'data.order_id'", "match"
            )
        return f"event.{path} == async.{path}"
    if if_ is not None:
        compile_condition(if_, field="if_")
        check_variables(if_, ("event", "async"), field="if_")
    return if_


def _one(option: str, value: Any, kind: type[Any]) -> dict[str, Any]:
    if not isinstance(value, kind):
        raise errors.InvalidInput(f"expected stepline.{kind.__name__}(...), not {value!r}", option)
    try:
        config: dict[str, Any] = value.to_config()
    except errors.InvalidInput as exc:
        raise errors.InvalidInput(exc.reason, f"{option}.{exc.field}") from None
    return config


def _listed(option: str, value: Any, kind: type[Any]) -> list[dict[str, Any]]:
    items = [value] if isinstance(value, kind) else value
    if isinstance(items, str | bytes) or not isinstance(items, list | tuple):
        raise errors.InvalidInput(
            f"expected stepline.{kind.__name__}(...) or a list of them", option
        )
    return [_one(f"{option}[{i}]", item, kind) for i, item in enumerate(items)]


def _concurrency(value: int | Concurrency | list[Concurrency]) -> list[dict[str, Any]]:
    if is_int(value):
        value = Concurrency(limit=value)  # type: ignore[arg-type]
    limits = _listed("concurrency", value, Concurrency)
    if len(limits) > MAX_CONCURRENCY_LIMITS:
        raise errors.InvalidInput(
            f"at most {MAX_CONCURRENCY_LIMITS} limits, not {len(limits)}", "concurrency"
        )
    return limits


_EXCLUSIVE_WITH_BATCH = ("debounce", "rate_limit", "idempotency", "singleton")


def options_config(
    *,
    concurrency: Any = None,
    throttle: Any = None,
    rate_limit: Any = None,
    debounce: Any = None,
    priority: Any = None,
    batch_events: Any = None,
    idempotency: Any = None,
    singleton: Any = None,
    cancel_on: Any = None,
    start_timeout: Any = None,
) -> dict[str, Any]:
    """The registry record of a function's flow-control options (only those given).

    Raises:
        InvalidInput: naming the option and field, e.g. `throttle.period`.
    """
    config: dict[str, Any] = {}
    if concurrency is not None:
        config["concurrency"] = _concurrency(concurrency)
    for option, value, kind in (
        ("throttle", throttle, Throttle),
        ("rate_limit", rate_limit, RateLimit),
        ("debounce", debounce, Debounce),
        ("priority", priority, Priority),
        ("batch_events", batch_events, Batch),
        ("singleton", singleton, Singleton),
    ):
        if value is not None:
            config[option] = _one(option, value, kind)
    if idempotency is not None:
        config["idempotency"] = _key(idempotency, "idempotency")
    if cancel_on is not None:
        config["cancel_on"] = _listed("cancel_on", cancel_on, CancelOn)
    if start_timeout is not None:
        config["start_timeout_seconds"] = start_timeout
    if "batch_events" in config:
        clash = [option for option in _EXCLUSIVE_WITH_BATCH if option in config]
        if clash:
            raise errors.InvalidInput(f"cannot be combined with {', '.join(clash)}", "batch_events")
    return config

"""A new run's flow control, read from its function's stored options and its event.

Every CEL expression (keys, priority, cancel conditions) is evaluated here, in the engine; the
store receives a `FlowPlan` of plain values and applies the limits inside its transaction.

Keys are namespaced per option and function ("throttle:<function>:<value>"; a concurrency key
of scope "all" is "all:<value>"), with the value as JSON text so that 5 and "5" differ. A key
expression that cannot be evaluated (a missing field) falls back to the function-wide key;
for `idempotency` it means no check at all, since one shared key would refuse every event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from stepline._cel import FailureLog, compile_expression
from stepline._flow_keys import MISSING, field_at, key_text
from stepline.store.base import (
    NO_FLOW,
    Bucket,
    EventRecord,
    FlowPlan,
    Gather,
    NewListener,
    Slot,
    TriggerKind,
)

MAX_PRIORITY = 600
IDEMPOTENCY_SECONDS = 24 * 3600.0
LISTEN_AT_MOST = timedelta(days=365)
_MISSING = object()
_FLOW_OPTIONS = frozenset(
    (
        "concurrency",
        "priority",
        "throttle",
        "rate_limit",
        "idempotency",
        "singleton",
        "debounce",
        "batch_events",
        "cancel_on",
        "start_timeout_seconds",
    )
)
_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_MATCH = re.compile(rf"\s*event\.(?P<run>{_PATH})\s*==\s*async\.(?P<incoming>{_PATH})\s*")
# Run now, replays and invokes carry their own event: they are never debounced or batched.
_GATHERED_KINDS = ("event", "cron")
# Replays and reruns repeat an event on purpose: its idempotency key does not refuse them.
_REPEATS = ("replay", "rerun")


@lru_cache(maxsize=512)
def function_config(config: str) -> dict[str, Any]:
    """A function's stored JSON configuration, parsed once per distinct text."""
    parsed: dict[str, Any] = json.loads(config)
    return parsed


def _value(source: str, event: Mapping[str, Any], where: str, failures: FailureLog) -> Any:
    """The expression's value over `event`, or `_MISSING` if it cannot be evaluated."""
    try:
        return compile_expression(source).execute({"event": dict(event)})
    except KeyError:
        return _MISSING
    except BaseException as exc:  # the library's Rust panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        failures.report(where, source, exc)
        return _MISSING


class Admission:
    """Builds `FlowPlan`s; logs each failing expression once (via `failures`)."""

    def __init__(self, failures: FailureLog) -> None:
        self._failures = failures

    def plan(
        self,
        function_id: str,
        config: Mapping[str, Any],
        *,
        kind: TriggerKind,
        event: EventRecord | None,
        now: datetime,
    ) -> FlowPlan:
        """The flow control of a new run of `function_id` triggered by `event`."""
        if not _FLOW_OPTIONS.intersection(config):
            return NO_FLOW  # the event is not even decoded
        return self._plan(function_id, config, kind, event.payload() if event else {}, now)

    def _plan(
        self,
        function_id: str,
        config: Mapping[str, Any],
        kind: TriggerKind,
        event: Mapping[str, Any],
        now: datetime,
    ) -> FlowPlan:
        keys = _Keys(function_id, event, self._failures)
        slots = tuple(keys.slot(limit) for limit in config.get("concurrency", ()))
        priority = self._priority(function_id, config.get("priority"), event)
        if kind == "parallel":  # a branch of an admitted run: it only needs slots to execute
            return FlowPlan(slots=slots, priority=priority)
        refuse: Literal["record", "raise"] = (
            "raise" if kind in ("manual", "replay", "rerun") else "record"
        )
        return FlowPlan(
            slots=slots,
            priority=priority,
            throttle=keys.bucket("throttle", config.get("throttle")),
            rate_limit=keys.bucket("rate_limit", config.get("rate_limit")),
            idempotency=None if kind in _REPEATS else keys.idempotency(config.get("idempotency")),
            singleton=keys.singleton(config.get("singleton")),
            gather=keys.gather(config) if kind in _GATHERED_KINDS else None,
            cancel_on=tuple(
                listener
                for listener in (_listener(c, event, now) for c in config.get("cancel_on", ()))
                if listener is not None
            ),
            start_by=_after(now, config.get("start_timeout_seconds")),
            refuse=refuse,
        )

    def _priority(
        self, function_id: str, option: Mapping[str, Any] | None, event: Mapping[str, Any]
    ) -> int:
        if not option:
            return 0
        where = f"function {function_id!r} priority"
        value = _value(option["run"], event, where, self._failures)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 0
        return max(-MAX_PRIORITY, min(MAX_PRIORITY, int(value)))


class _Keys:
    """Evaluates one run's keys."""

    def __init__(self, function_id: str, event: Mapping[str, Any], failures: FailureLog) -> None:
        self._function_id = function_id
        self._event = event
        self._failures = failures

    def _evaluate(self, option: str, source: str | None) -> Any:
        if source is None:
            return _MISSING
        where = f"function {self._function_id!r} {option} key"
        return _value(source, self._event, where, self._failures)

    def key(self, option: str, source: str | None, *, scope: str = "function") -> str:
        value = self._evaluate(option, source)
        prefix = "all" if scope == "all" else f"{option}:{self._function_id}"
        if value is _MISSING:
            return prefix if scope != "all" else f"all:{key_text(source)}"
        return f"{prefix}:{key_text(value)}"

    def slot(self, limit: Mapping[str, Any]) -> Slot:
        key = self.key("concurrency", limit.get("key"), scope=limit.get("scope", "function"))
        return Slot(key=key, limit=int(limit["limit"]))

    def bucket(self, option: str, config: Mapping[str, Any] | None) -> Bucket | None:
        if not config:
            return None
        return Bucket(
            key=self.key(option, config.get("key")),
            limit=int(config["limit"]),
            period_seconds=float(config["period_seconds"]),
            burst=int(config.get("burst", 1)),
        )

    def idempotency(self, source: str | None) -> Bucket | None:
        value = self._evaluate("idempotency", source)
        if value is _MISSING:
            return None
        key = f"idempotency:{self._function_id}:{key_text(value)}"
        return Bucket(key=key, limit=1, period_seconds=IDEMPOTENCY_SECONDS)

    def singleton(
        self, config: Mapping[str, Any] | None
    ) -> tuple[str, Literal["skip", "cancel"]] | None:
        if not config:
            return None
        return self.key("singleton", config.get("key")), config["mode"]

    def gather(self, config: Mapping[str, Any]) -> Gather | None:
        if debounce := config.get("debounce"):
            return Gather(
                kind="debounce",
                key=self.key("debounce", debounce.get("key")),
                delay_seconds=float(debounce["period_seconds"]),
                timeout_seconds=debounce.get("timeout_seconds"),
            )
        if batch := config.get("batch_events"):
            return Gather(
                kind="batch",
                key=self.key("batch", batch.get("key")),
                delay_seconds=float(batch["timeout_seconds"]),
                max_size=int(batch["max_size"]),
            )
        return None


def _listener(
    config: Mapping[str, Any], event: Mapping[str, Any], now: datetime
) -> NewListener | None:
    """The run's listener; a `match` (`event.x == async.x`) becomes an indexed value.

    None if the run's event lacks the matched field: no event can match it then.
    """
    seconds = config.get("timeout_seconds")
    expires = now + (LISTEN_AT_MOST if seconds is None else timedelta(seconds=seconds))
    expression = config.get("if")
    same = _MATCH.fullmatch(expression or "")
    if same is None or same["run"] != same["incoming"]:
        return NewListener(event_name=config["event"], expression=expression, expires_at=expires)
    value = field_at(event, same["run"])
    if value is MISSING:
        return None
    return NewListener(
        event_name=config["event"],
        expression=None,
        expires_at=expires,
        match_path=same["run"],
        match_value=key_text(value),
    )


def _after(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)

"""An SDK function's flow-control options (protocol §5.6) as Stepline's option records.

The wire options are read into the `stepline.sdk.options` records and checked by
`options_config`, so a function synced by an SDK app is validated and stored exactly as a
Python function with the same options; error fields are then given their wire names
(`rate_limit` → `rateLimit`, `batch_events.max_size` → `batchEvents.maxSize`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stepline import errors
from stepline._checks import is_int
from stepline.engine.inngest import wire
from stepline.engine.inngest.names import to_stepline
from stepline.sdk.options import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Scope,
    Singleton,
    Throttle,
    Timeouts,
    options_config,
)

_SCOPES: dict[str | None, Scope] = {
    None: "function",
    "fn": "function",
    "env": "all",
    "account": "all",
}
_WIRE_OPTIONS = {"rate_limit": "rateLimit", "batch_events": "batchEvents", "cancel_on": "cancel"}
_WIRE_FIELDS = {"max_size": "maxSize", "if_": "if"}
_COMBINED = "cannot be combined with "
_INDEXED = re.compile(r"(?P<option>[a-z_]+)\[(?P<index>\d+)\]")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CEL = "a CEL expression"
_INTEGER = "an integer"


def flow_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The option record of a function config, as `options_config` builds it.

    Also holds `timeout_seconds` (the wire's `timeouts.finish`, None if absent), which a
    Python function stores next to its options.

    Raises:
        InvalidInput: naming the wire field, e.g. `rateLimit.period`.
    """
    concurrency, places = _concurrency(raw.get("concurrency"))
    start, finish = _timeouts(raw.get("timeouts"))
    options = {
        "concurrency": concurrency,
        "throttle": _throttle(raw.get("throttle")),
        "rate_limit": _rate_limit(raw.get("rateLimit")),
        "debounce": _debounce(raw.get("debounce")),
        "priority": _priority(raw.get("priority")),
        "batch_events": _batch(raw.get("batchEvents")),
        "idempotency": wire.text(raw.get("idempotency"), "idempotency", _CEL),
        "singleton": _singleton(raw.get("singleton")),
        "cancel_on": _cancel(raw.get("cancel")),
    }
    try:
        config = options_config(**options, start_timeout=start)
    except errors.InvalidInput as exc:
        field = _wire_field(exc.field, places)
        raise errors.InvalidInput(_wire_reason(exc.reason), field) from None
    return {**config, "timeout_seconds": finish}


def _concurrency(value: Any) -> tuple[list[Concurrency] | None, list[str]]:
    """The limits, and where each is on the wire; a limit of 0 means none (as in Inngest)."""
    if value is None:
        return None, []
    if is_int(value):
        entries = [("concurrency", {"limit": value})]
    elif isinstance(value, dict):
        entries = [("concurrency", value)]
    elif isinstance(value, list):
        entries = [(f"concurrency[{i}]", item) for i, item in enumerate(value)]
    else:
        shapes = "a limit, an object {limit, key?, scope?} or a list of them"
        raise errors.InvalidInput(f"expected {shapes}, not {wire.shown(value)}", "concurrency")
    limits, places = [], []
    for place, item in entries:
        entry = wire.obj(item, place)
        limit = entry.get("limit")
        if is_int(limit) and limit == 0:
            continue
        limits.append(
            Concurrency(
                limit=wire.required(entry, "limit", f"{place}.limit", _INTEGER),
                key=wire.text(entry.get("key"), f"{place}.key", _CEL),
                scope=_scope(entry.get("scope"), f"{place}.scope"),
            )
        )
        places.append(place)
    return limits or None, places


def _scope(value: Any, field: str) -> Scope:
    if not isinstance(value, str | None) or value not in _SCOPES:
        raise errors.InvalidInput(
            f"must be 'fn', 'env' or 'account', not {wire.shown(value)}", field
        )
    return _SCOPES[value]


def _throttle(value: Any) -> Throttle | None:
    if value is None:
        return None
    raw = wire.obj(value, "throttle")
    burst = raw.get("burst")
    return Throttle(
        limit=wire.required(raw, "limit", "throttle.limit", _INTEGER),
        period=wire.required_duration(raw.get("period"), "throttle.period"),
        burst=1 if burst is None else burst,
        key=wire.text(raw.get("key"), "throttle.key", _CEL),
    )


def _rate_limit(value: Any) -> RateLimit | None:
    if value is None:
        return None
    raw = wire.obj(value, "rateLimit")
    return RateLimit(
        limit=wire.required(raw, "limit", "rateLimit.limit", _INTEGER),
        period=wire.required_duration(raw.get("period"), "rateLimit.period"),
        key=wire.text(raw.get("key"), "rateLimit.key", _CEL),
    )


def _debounce(value: Any) -> Debounce | None:
    if value is None:
        return None
    raw = wire.obj(value, "debounce")
    return Debounce(
        period=wire.required_duration(raw.get("period"), "debounce.period"),
        key=wire.text(raw.get("key"), "debounce.key", _CEL),
        timeout=wire.duration(raw.get("timeout"), "debounce.timeout"),
    )


def _priority(value: Any) -> Priority | None:
    if value is None:
        return None
    raw = wire.obj(value, "priority")
    return Priority(run=wire.required_text(raw.get("run"), "priority.run", _CEL))


def _batch(value: Any) -> Batch | None:
    if value is None:
        return None
    raw = wire.obj(value, "batchEvents")
    if raw.get("if") is not None:
        raise errors.InvalidInput(
            'conditional batching is not supported: remove "if" to batch every event',
            "batchEvents.if",
        )
    return Batch(
        max_size=wire.required(raw, "maxSize", "batchEvents.maxSize", _INTEGER),
        timeout=wire.required_duration(raw.get("timeout"), "batchEvents.timeout"),
        key=wire.text(raw.get("key"), "batchEvents.key", _CEL),
    )


def _singleton(value: Any) -> Singleton | None:
    if value is None:
        return None
    raw = wire.obj(value, "singleton")
    return Singleton(
        key=wire.text(raw.get("key"), "singleton.key", _CEL),
        mode=wire.required(raw, "mode", "singleton.mode", "'skip' or 'cancel'"),
    )


def _cancel(value: Any) -> list[CancelOn] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise errors.InvalidInput(
            f"expected a list of objects {{event, if?, timeout?}}, not {wire.shown(value)}",
            "cancel",
        )
    return [_cancel_on(item, f"cancel[{i}]") for i, item in enumerate(value)] or None


def _cancel_on(value: Any, place: str) -> CancelOn:
    raw = wire.obj(value, place)
    name = wire.required_text(raw.get("event"), f"{place}.event", "an event name")
    timeout = raw.get("timeout")
    if isinstance(timeout, str) and _ISO_DATE.match(timeout):
        raise errors.InvalidInput(
            f"an absolute time ({wire.shown(timeout)}) is not supported; "
            'give a duration such as "1d"',
            f"{place}.timeout",
        )
    return CancelOn(
        event=to_stepline(name),
        if_=wire.text(raw.get("if"), f"{place}.if", _CEL),
        timeout=wire.duration(timeout, f"{place}.timeout"),
    )


def _timeouts(value: Any) -> tuple[float | None, float | None]:
    """(start, finish) in seconds."""
    if value is None:
        return None, None
    raw = wire.obj(value, "timeouts")
    return Timeouts(
        start=wire.duration(raw.get("start"), "timeouts.start"),
        finish=wire.duration(raw.get("finish"), "timeouts.finish"),
    ).seconds()


def _wire_field(field: str | None, concurrency: list[str]) -> str | None:
    """A field of `options_config`'s records by its wire name: "cancel_on[0].if_" → "cancel[0].if".

    `concurrency` holds where each limit given to `options_config` is on the wire.
    """
    if field is None:
        return None
    head, dot, rest = field.partition(".")
    indexed = _INDEXED.fullmatch(head)
    if indexed and indexed["option"] == "concurrency":
        head = concurrency[int(indexed["index"])]
    elif indexed:
        head = f"{_WIRE_OPTIONS.get(indexed['option'], indexed['option'])}[{indexed['index']}]"
    else:
        head = _WIRE_OPTIONS.get(head, head)
    tail = ".".join(_WIRE_FIELDS.get(part, part) for part in rest.split(".")) if dot else ""
    return f"{head}{dot}{tail}"


def _wire_reason(reason: str) -> str:
    """The reason, with the options it names by their wire names ("cannot be combined with")."""
    if not reason.startswith(_COMBINED):
        return reason
    names = reason.removeprefix(_COMBINED).split(", ")
    return _COMBINED + ", ".join(_WIRE_OPTIONS.get(name, name) for name in names)

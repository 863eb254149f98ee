"""An SDK app's function configs (the `functions` of its sync, protocol §5.6) as registry records.

Each function is stored in exactly the shape a Python function stores (`Function.config()`:
triggers, retries, timeout_seconds and the flow-control options), so routing, admission, the
scheduler and the dashboard serve both alike, plus `url`: where the SDK serves the function.
System event names are stored as Stepline's (`inngest/function.failed` →
`stepline/function.failed`, see `names`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from stepline import errors
from stepline._checks import is_int
from stepline._durations import period_text
from stepline.engine.inngest import wire
from stepline.engine.inngest.flow import flow_options
from stepline.engine.inngest.names import to_stepline
from stepline.sdk.app import DEFAULT_RETRIES, MAX_RETRIES
from stepline.sdk.triggers import CronTrigger, Trigger, cron, event

MAX_TRIGGERS = 10
MAX_CRON_LENGTH = 255
MAX_JITTER = timedelta(minutes=5)
_ID = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]{1,255}")
_CRON_ZONE = re.compile(r"(?:CRON_)?TZ=(?P<tz>\S*)\s+(?P<expression>.*)", re.DOTALL)
_EVENT_FIELDS = {"name": "event", "if_": "expression"}
_CRON_FIELDS = {"expression": "cron", "tz": "cron"}


@dataclass(frozen=True, kw_only=True, slots=True)
class SdkFunction:
    """A function of an SDK app: its composite id, display name and registry config (JSON)."""

    id: str
    name: str
    config: str


def sdk_functions(raw: Any) -> list[SdkFunction]:
    """Check an app's function configs (the sync body's `functions`) and translate them.

    Raises:
        InvalidInput: at the first problem, its field naming the function and the wire field,
            e.g. `functions[1] (id 'shop-send-receipt').rateLimit.period`.
    """
    if not isinstance(raw, list):
        raise errors.InvalidInput(
            f"expected a list of function configs, not {wire.shown(raw)}", "functions"
        )
    functions: list[SdkFunction] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        place = f"functions[{index}]"
        config = wire.obj(item, place)
        function_id = _function_id(config.get("id"), place)
        place = f"{place} (id {function_id!r})"
        if function_id in seen:
            raise errors.InvalidInput(f"repeats the id of functions[{seen[function_id]}]", place)
        seen[function_id] = index
        try:
            functions.append(_function(function_id, config))
        except errors.InvalidInput as exc:
            raise errors.InvalidInput(exc.reason, f"{place}.{exc.field}") from None
    return functions


def _function_id(value: Any, place: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        rule = "must be 1-255 characters without spaces or control characters"
        raise errors.InvalidInput(f"{rule}, not {wire.shown(value)}", f"{place}.id")
    return value


def _function(function_id: str, raw: Mapping[str, Any]) -> SdkFunction:
    name = wire.text(raw.get("name"), "name", "a display name")
    step = wire.obj(wire.obj(raw.get("steps"), "steps").get("step"), "steps.step")
    config = {
        "triggers": _triggers(raw.get("triggers")),
        "retries": _retries(raw, step),
        **flow_options(raw),
        "url": _url(step.get("runtime")),
    }
    return SdkFunction(
        id=function_id, name=name or function_id, config=json.dumps(config, sort_keys=True)
    )


def _triggers(value: Any) -> list[dict[str, Any]]:
    """The stored triggers; none (an invoke-only function) is allowed."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.InvalidInput(
            f"expected a list of triggers, not {wire.shown(value)}", "triggers"
        )
    if len(value) > MAX_TRIGGERS:
        raise errors.InvalidInput(f"at most {MAX_TRIGGERS} triggers, not {len(value)}", "triggers")
    records: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        place = f"triggers[{index}]"
        record = _trigger(wire.obj(item, place), place)
        if record in records:
            raise errors.InvalidInput(f"repeats triggers[{records.index(record)}]", place)
        records.append(record)
    return records


def _trigger(raw: Mapping[str, Any], place: str) -> dict[str, Any]:
    if (raw.get("event") is None) == (raw.get("cron") is None):
        raise errors.InvalidInput('expected exactly one of "event" and "cron"', place)
    if raw.get("event") is not None:
        name = wire.required_text(raw["event"], f"{place}.event", "an event name")
        expression = wire.text(raw.get("expression"), f"{place}.expression", "a CEL expression")
        trigger = event(to_stepline(name), if_=expression)
        return _checked(trigger, place, _EVENT_FIELDS)
    record = _checked(_cron(raw["cron"], f"{place}.cron"), place, _CRON_FIELDS)
    jitter = wire.duration(raw.get("jitter"), f"{place}.jitter")
    if jitter is not None:
        if jitter > MAX_JITTER:
            raise errors.InvalidInput(
                f"must be at most {period_text(MAX_JITTER.total_seconds())}, "
                f"not {period_text(jitter.total_seconds())}",
                f"{place}.jitter",
            )
        record["jitter_seconds"] = jitter.total_seconds()
    return record


def _cron(value: Any, field: str) -> CronTrigger:
    """A cron trigger from "[TZ=Zone |CRON_TZ=Zone ]minute hour day month weekday"."""
    spec = wire.required_text(value, field, "a cron expression")
    if len(spec) > MAX_CRON_LENGTH:
        raise errors.InvalidInput(
            f"must be at most {MAX_CRON_LENGTH} characters, not {len(spec)}", field
        )
    zoned = _CRON_ZONE.fullmatch(spec.strip())
    if zoned is None:
        return cron(" ".join(spec.split()))
    return cron(" ".join(zoned["expression"].split()), tz=zoned["tz"])


def _checked(trigger: Trigger, place: str, wire_names: Mapping[str, str]) -> dict[str, Any]:
    """The trigger's stored record, checked; errors name the wire field."""
    try:
        trigger.check()
    except errors.InvalidInput as exc:
        field = wire_names.get(exc.field or "", exc.field)
        raise errors.InvalidInput(exc.reason, f"{place}.{field}") from None
    return trigger.to_config()


def _retries(raw: Mapping[str, Any], step: Mapping[str, Any]) -> int:
    """`steps.step.retries.attempts` (retries, not attempts), else the function's `retries`."""
    retries = step.get("retries")
    if retries is not None:
        attempts = wire.obj(retries, "steps.step.retries").get("attempts")
        if attempts is not None:
            return _retry_count(attempts, "steps.step.retries.attempts")
    fallback = raw.get("retries")
    return DEFAULT_RETRIES if fallback is None else _retry_count(fallback, "retries")


def _retry_count(value: Any, field: str) -> int:
    """A count of retries; above the maximum counts as the maximum, as in Inngest."""
    if not is_int(value) or value < 0:
        raise errors.InvalidInput(
            f"must be a whole number of retries (0 or more), not {wire.shown(value)}", field
        )
    return min(int(value), MAX_RETRIES)


def _url(value: Any) -> str:
    """Where the SDK serves the function (`steps.step.runtime.url`), kept verbatim."""
    runtime = wire.obj(value, "steps.step.runtime")
    kind = runtime.get("type")
    if kind == "ws":
        raise errors.InvalidInput(
            "Connect (WebSocket) functions are not supported; serve the app over HTTP",
            "steps.step.runtime.type",
        )
    if kind != "http":
        raise errors.InvalidInput(
            f"must be 'http', not {wire.shown(kind)}", "steps.step.runtime.type"
        )
    url = wire.required_text(runtime.get("url"), "steps.step.runtime.url", "a URL")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidInput(
            f"must be an http(s) URL, not {wire.shown(url)}", "steps.step.runtime.url"
        )
    return url

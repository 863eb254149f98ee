"""Validate incoming events and turn them into records; the one place event input is checked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from stepline import errors
from stepline._sizes import format_size
from stepline.store.base import EventRecord

MAX_EVENT_BYTES = 512 * 1024
# Inngest's absolute maximum per event (its Cloud's default is 512 KiB, like Stepline's own API).
MAX_INTAKE_EVENT_BYTES = 3 * 1024 * 1024
MAX_NAME_LENGTH = 512
MAX_ID_LENGTH = 255
RESERVED_PREFIXES = ("stepline/", "inngest/")
# Reserved inside event data: Inngest's server keeps its own bookkeeping there (an invoked run's
# correlation id), so it drops the key from the events senders send, and so does Stepline.
RESERVED_DATA_KEY = "_inngest"
INVOKED_EVENT = "stepline/function.invoked"  # the event of a run started by Run now or invoke
CRON_EVENT = "stepline/scheduled.timer"  # the event of a run started by a cron tick
MIN_TS = int(datetime(1980, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_TS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
_FIELDS = frozenset({"name", "data", "user", "id", "ts", "v"})
_JSON_TYPES = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"))


@dataclass(frozen=True, kw_only=True)
class EventRules:
    """What an event may be, by where it is received.

    Attributes:
        max_bytes: The most its `data` and `user` may hold together, as compact JSON.
        dropped: Fields beside Inngest's event schema that are taken (a JSON object or null)
            and not stored.
    """

    max_bytes: int = MAX_EVENT_BYTES
    dropped: frozenset[str] = frozenset()


STEPLINE_EVENTS = EventRules()
"""Events sent through Stepline's own API, clients and steps."""
INTAKE_EVENTS = EventRules(max_bytes=MAX_INTAKE_EVENT_BYTES, dropped=frozenset({"meta"}))
"""Events sent to `/e/{key}`, as Inngest's event API takes them: up to 3 MiB each, and the
JS SDK v4's `meta` (its session metadata) accepted and ignored."""


def new_id() -> str:
    """A new sortable id (ULID) for an event or a run."""
    return str(ULID())


def json_type(value: Any) -> str:
    """What a parsed JSON value is, for messages: "null", "a number", "an array"..."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return next(
        (name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__
    )


def _object(raw: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    """`raw[key]`, a JSON object (absent or null: empty)."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidInput(
            f"must be a JSON object, not {json_type(value)}", f"{field}.{key}"
        )
    return value


def _json_text(value: dict[str, Any], field: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidInput(f"is not JSON-serializable: {exc}", field) from None


def _storable(text: str) -> bool:
    """Whether a database text column takes `text` (PostgreSQL refuses NUL; UTF-8, surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _sender_id(value: Any, field: str) -> str | None:
    """The sender's event id (None when absent or empty)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise errors.InvalidInput(
            f"must be a string of at most {MAX_ID_LENGTH} characters", f"{field}.id"
        )
    if not _storable(value):
        raise errors.InvalidInput("must not contain NUL or lone surrogates", f"{field}.id")
    return value


def _name(raw: dict[str, Any], field: str, *, internal: bool) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidInput("is required and must be a non-empty string", f"{field}.name")
    if not _storable(name):
        raise errors.InvalidInput("must not contain NUL or lone surrogates", f"{field}.name")
    if len(name) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"is longer than {MAX_NAME_LENGTH} characters", f"{field}.name")
    if not internal and name.startswith(RESERVED_PREFIXES):
        raise errors.InvalidInput(f"{name!r} uses a reserved prefix", f"{field}.name")
    return name


def build_event(
    raw: Any,
    *,
    now: datetime,
    field: str = "event",
    source: str = "api",
    internal: bool = False,
    rules: EventRules = STEPLINE_EVENTS,
    internal_id: str | None = None,
) -> EventRecord:
    """Check one event `{name, data?, user?, id?, ts?, v?}` and make its record.

    A sent (not `internal`) event's `data._inngest` is dropped. `internal_id` is the stored
    event's id (None: a new one).

    Raises:
        InvalidInput: naming the offending field, e.g. `events[2].name`.
        PayloadTooLarge: the event's `data` and `user` exceed `rules.max_bytes`.
    """
    if not isinstance(raw, dict):
        raise errors.InvalidInput(f"must be a JSON object, not {json_type(raw)}", field)
    name = _name(raw, field, internal=internal)
    unknown = set(raw) - _FIELDS - rules.dropped
    if unknown:
        raise errors.InvalidInput(f"unknown field(s) {sorted(unknown)}", field)
    for key in sorted(rules.dropped & set(raw)):
        _object(raw, key, field)
    if raw.get("v") is not None and not isinstance(raw["v"], str):
        raise errors.InvalidInput(f"must be a string, not {json_type(raw['v'])}", f"{field}.v")
    data = _object(raw, "data", field)
    if not internal and RESERVED_DATA_KEY in data:
        data = {key: value for key, value in data.items() if key != RESERVED_DATA_KEY}
    data_text = _json_text(data, f"{field}.data")
    user_text = _json_text(_object(raw, "user", field), f"{field}.user")
    if len(data_text) + len(user_text) > rules.max_bytes:
        raise errors.PayloadTooLarge(
            f"event is larger than {format_size(rules.max_bytes)}", f"{field}.data"
        )
    internal_id = internal_id or new_id()
    return EventRecord(
        internal_id=internal_id,
        id=_sender_id(raw.get("id"), field) or internal_id,
        name=name,
        data=data_text,
        user=user_text,
        ts=_timestamp(raw.get("ts"), now, field),
        received_at=now,
        source=source,
    )


def _timestamp(value: Any, now: datetime, field: str) -> int:
    """The event's `ts` in milliseconds: absent, null or 0 is `now`; a whole number in range."""
    if value is None or (type(value) in (int, float) and value == 0):
        return int(now.timestamp() * 1000)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.7e12 is a JSON integer too
    if type(value) is not int or not MIN_TS <= value <= MAX_TS:
        raise errors.InvalidInput(
            "must be milliseconds since the epoch between 1980 and 2100", f"{field}.ts"
        )
    return value


def build_events(
    raw: Any,
    *,
    now: datetime,
    source: str = "api",
    rules: EventRules = STEPLINE_EVENTS,
    ids: Sequence[str] | None = None,
) -> list[EventRecord]:
    """Check one event or a list of them (maybe empty); all are valid or none is accepted.

    `ids`: the events' internal ids, in order (None: new ones).
    """
    items, fields = (raw, "events[{}]") if isinstance(raw, list) else ([raw], "event")
    return [
        build_event(
            item,
            now=now,
            field=fields.format(i),
            source=source,
            rules=rules,
            internal_id=None if ids is None else ids[i],
        )
        for i, item in enumerate(items)
    ]

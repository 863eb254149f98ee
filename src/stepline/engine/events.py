"""Validate incoming events and turn them into records; the one place event input is checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from stepline import errors
from stepline.store.base import EventRecord

MAX_EVENT_BYTES = 512 * 1024
MAX_NAME_LENGTH = 512
MAX_ID_LENGTH = 255
RESERVED_PREFIXES = ("stepline/", "inngest/")
INVOKED_EVENT = "stepline/function.invoked"  # the event of a run started by Run now or invoke
CRON_EVENT = "stepline/scheduled.timer"  # the event of a run started by a cron tick
MIN_TS = int(datetime(1980, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_TS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
_JSON_TYPES = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"))


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


def _object(raw: dict[str, Any], key: str, field: str) -> str:
    value = raw.get(key)
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise errors.InvalidInput(
            f"must be a JSON object, not {json_type(value)}", f"{field}.{key}"
        )
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidInput(f"is not JSON-serializable: {exc}", f"{field}.{key}") from None


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


def build_event(
    raw: Any,
    *,
    now: datetime,
    field: str = "event",
    source: str = "api",
    internal: bool = False,
) -> EventRecord:
    """Check one event `{name, data?, user?, id?, ts?}` and make its record.

    Raises:
        InvalidInput: naming the offending field, e.g. `events[2].name`.
        PayloadTooLarge: the event's JSON exceeds 512 KiB.
    """
    if not isinstance(raw, dict):
        raise errors.InvalidInput(f"must be a JSON object, not {json_type(raw)}", field)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidInput("is required and must be a non-empty string", f"{field}.name")
    if not _storable(name):
        raise errors.InvalidInput("must not contain NUL or lone surrogates", f"{field}.name")
    if len(name) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"is longer than {MAX_NAME_LENGTH} characters", f"{field}.name")
    if not internal and name.startswith(RESERVED_PREFIXES):
        raise errors.InvalidInput(f"{name!r} uses a reserved prefix", f"{field}.name")
    unknown = set(raw) - {"name", "data", "user", "id", "ts", "v"}
    if unknown:
        raise errors.InvalidInput(f"unknown field(s) {sorted(unknown)}", field)
    if raw.get("v") is not None and not isinstance(raw["v"], str):
        raise errors.InvalidInput(f"must be a string, not {json_type(raw['v'])}", f"{field}.v")
    data = _object(raw, "data", field)
    user = _object(raw, "user", field)
    if len(data) + len(user) > MAX_EVENT_BYTES:
        raise errors.PayloadTooLarge(
            f"event is larger than {MAX_EVENT_BYTES // 1024} KiB", f"{field}.data"
        )
    internal_id = new_id()
    sender_id = _sender_id(raw.get("id"), field) or internal_id
    return EventRecord(
        internal_id=internal_id,
        id=sender_id,
        name=name,
        data=data,
        user=user,
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


def build_events(raw: Any, *, now: datetime, source: str = "api") -> list[EventRecord]:
    """Check one event or a list of them (maybe empty); all are valid or none is accepted."""
    if isinstance(raw, list):
        return [
            build_event(item, now=now, field=f"events[{i}]", source=source)
            for i, item in enumerate(raw)
        ]
    return [build_event(raw, now=now, source=source)]

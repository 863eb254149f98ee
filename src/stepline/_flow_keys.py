"""Flow-control keys as stored: "<option>:<function>:<value>", or "all:<value>" (shared).

The value is JSON text, so that 5 and "5" are different keys; a long one is stored as its hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_MAX_KEY = 400


def key_text(value: Any) -> str:
    """A key value as stored: JSON text, or its hash when long."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    if len(text) > _MAX_KEY:
        digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()
        return f"sha256:{digest}"
    return text


MISSING = object()


def field_at(payload: Any, path: str) -> Any:
    """The value at a dotted path such as "data.order.id", or `MISSING`."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def key_value(key: str) -> str:
    """The value part of a stored key ("" for a function-wide key), for messages."""
    if key.startswith("all:"):
        return key[4:]
    parts = key.split(":", 2)
    return parts[2] if len(parts) == 3 else ""

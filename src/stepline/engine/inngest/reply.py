"""An SDK app's answer to a call request: the status, the ops of a 206, and retry hints.

A 201 is a streamed answer (protocol §7.6): keep-alive spaces, then one JSON object holding the
real status, headers and body. A response without `X-Inngest-SDK` came from something other
than the SDK (a proxy, a crashed server) and counts as a failed attempt like a network error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from stepline.engine.events import json_type

# Retry-After is honoured within Inngest's bounds.
MIN_RETRY_AFTER = timedelta(seconds=1)
MAX_RETRY_AFTER = timedelta(hours=24)
LAZY_OPS = ("DeferAdd", "DeferAbort")  # ride along with other ops; never parallelism


class BadReply(Exception):
    """The answer is not one an SDK gives: the attempt failed (and may be retried)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Op:
    """One op of a 206 answer (protocol §7.5)."""

    id: str
    op: str
    name: str | None = None
    display_name: str | None = None
    opts: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    error: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """The step's name for people: its display name, else its name, else its hash."""
        return self.display_name or self.name or self.id


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """A parsed answer: `ops` for a 206, `body` (JSON text) otherwise."""

    status: int
    body: str
    ops: tuple[Op, ...] = ()
    no_retry: bool = False
    retry_at: datetime | None = None


def _headers(raw: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in dict(raw).items()}


def retry_time(value: str | None, now: datetime) -> datetime | None:
    """`Retry-After` as a time: seconds, an ISO-8601 time or an HTTP date; None if unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        at = now + timedelta(seconds=float(text))
    except ValueError:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            try:
                at = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
        if at.tzinfo is None:
            return None
    return min(max(at, now + MIN_RETRY_AFTER), now + MAX_RETRY_AFTER)


def _unstream(body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body inside a streamed (201) answer."""
    try:
        wrapped = json.loads(body.strip() or b"null")
    except ValueError as exc:
        raise BadReply(f"streamed answer is not JSON: {exc}") from None
    if not isinstance(wrapped, dict) or not isinstance(wrapped.get("status"), int):
        raise BadReply("streamed answer has no status")
    inner = wrapped.get("body")
    text = inner if isinstance(inner, str) else json.dumps(inner)
    return wrapped["status"], _headers(wrapped.get("headers") or {}), text.encode()


def _op(raw: Any, index: int) -> Op:
    if not isinstance(raw, dict):
        raise BadReply(f"op {index} is {json_type(raw)}, not an object")
    op_id, kind = raw.get("id"), raw.get("op")
    if not isinstance(op_id, str) or not op_id or not isinstance(kind, str):
        raise BadReply(f"op {index} has no id or op")
    opts, error = raw.get("opts"), raw.get("error")
    name, display = raw.get("name"), raw.get("displayName")
    return Op(
        id=op_id,
        op=kind,
        name=name if isinstance(name, str) else None,
        display_name=display if isinstance(display, str) and display else None,
        opts=opts if isinstance(opts, dict) else {},
        data=raw.get("data"),
        error=error if isinstance(error, dict) else None,
    )


def parse_ops(text: str) -> tuple[Op, ...]:
    """The ops of a 206 body: a JSON array (or one op object, as old SDKs send)."""
    try:
        raw = json.loads(text or "[]")
    except ValueError as exc:
        raise BadReply(f"206 body is not JSON: {exc}") from None
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise BadReply(f"206 body is {json_type(raw)}, not a list of ops")
    return tuple(_op(item, i) for i, item in enumerate(items))


def parse_reply(status: int, headers: Any, body: bytes, now: datetime) -> Reply:
    """Read an SDK's answer; `BadReply` if it is not an SDK's."""
    found = _headers(headers)
    if status == 201:
        status, found, body = _unstream(body)
    if "x-inngest-sdk" not in found:
        raise BadReply(f"HTTP {status} without X-Inngest-SDK: not an answer from the SDK")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadReply("the answer is not UTF-8") from None
    no_retry = found.get("x-inngest-no-retry", "").lower() == "true"
    retry_at = retry_time(found.get("retry-after"), now)
    ops = parse_ops(text) if status == 206 else ()
    return Reply(status=status, body=text, ops=ops, no_retry=no_retry, retry_at=retry_at)

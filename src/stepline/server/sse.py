"""Server-sent events: poll the store, and stream the page sections that changed.

The store has no change feed the server can subscribe to on both backends, so each stream
polls: every `poll_seconds` it reads a cheap state key; when the key changed it renders the
sections and sends those whose HTML differs from what this client last got. A stream whose
subject has ended sends a final `end` event (the page closes its EventSource on it) and stops.
Streams also stop after `max_seconds`; browsers reconnect by themselves and get fresh state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
RETRY_MILLISECONDS = 2000
END_EVENT = "end"


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """What a poll saw: a key that changes with the state, and how to render it.

    Attributes:
        key: Equal keys mean nothing visible changed (render is then skipped).
        render: Section name (the SSE event name) → HTML; called only when `key` changed.
        final: The subject has ended: after these sections, send `end` and stop.
    """

    key: str
    render: Callable[[], dict[str, str]]
    final: bool = False


def encode(event: str, data: str) -> str:
    """One SSE message: `event:` then one `data:` line per line of `data`."""
    lines = data.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def _messages(
    poll: Callable[[], Snapshot], poll_seconds: float, max_seconds: float
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    sent: dict[str, str] = {}
    last_key: str | None = None
    started = last_write = time.monotonic()
    while True:
        snapshot = await run_in_threadpool(poll)
        if snapshot.key != last_key:
            last_key = snapshot.key
            sections = await run_in_threadpool(snapshot.render)
            for name, html in sections.items():
                if sent.get(name) != html:
                    sent[name] = html
                    last_write = time.monotonic()
                    yield encode(name, html)
        if snapshot.final:
            yield encode(END_EVENT, "")
            return
        now = time.monotonic()
        if now - started > max_seconds:
            return
        if now - last_write > HEARTBEAT_SECONDS:
            # A comment: keeps proxies from timing the stream out; EventSource ignores it.
            last_write = now
            yield ": heartbeat\n\n"
        await asyncio.sleep(poll_seconds)


def stream(
    poll: Callable[[], Snapshot],
    *,
    poll_seconds: float = POLL_SECONDS,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> StreamingResponse:
    """An SSE response fed by `poll` (a blocking store read, run in the thread pool).

    Starlette cancels the stream when the client disconnects.
    """
    return StreamingResponse(
        _messages(poll, poll_seconds, max_seconds),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )

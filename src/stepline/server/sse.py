"""Server-sent events: poll the store, and stream the page sections that changed.

The store has no change feed the server can subscribe to on both backends, so each stream
polls: every `poll_seconds` it reads a cheap state key; when the key changed it renders the
sections and sends those whose HTML differs from what this client last got. A stream whose
subject has ended sends a final `end` event (the page closes its EventSource on it) and stops.
Streams also stop after `max_seconds`; browsers reconnect by themselves and get fresh state,
and at once when the server starts stopping (`close_streams`), so that open pages do not hold
a shutdown. A stream whose token is revoked ends within `REVALIDATE_SECONDS` (`auth.still_valid`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from stepline.server.auth import still_valid
from stepline.server.metrics import stream_open

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 300.0
RETRY_MILLISECONDS = 2000
REVALIDATE_SECONDS = 2.0  # how often a stream checks that its token still opens the server
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


def close_streams(app: Starlette) -> None:
    """End every open stream of `app` on the running loop now, and any opened on it later."""
    _closing(app).set()


def _closing(app: Starlette) -> asyncio.Event:
    """The app's "streams must end" flag on the running loop (an app may be served again)."""
    flags: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] | None
    flags = getattr(app.state, "sse_closing", None)
    if flags is None:
        flags = app.state.sse_closing = weakref.WeakKeyDictionary()
    return flags.setdefault(asyncio.get_running_loop(), asyncio.Event())


async def _closed_within(closing: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`; True as soon as `closing` is set."""
    try:
        async with asyncio.timeout(seconds):
            await closing.wait()
    except TimeoutError:
        return False
    return True


async def _messages(
    poll: Callable[[], Snapshot],
    poll_seconds: float,
    max_seconds: float,
    closing: asyncio.Event,
    valid: Callable[[], bool] | None,
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    sent: dict[str, str] = {}
    last_key: str | None = None
    started = last_write = checked = time.monotonic()
    while not closing.is_set():
        if valid is not None and time.monotonic() - checked > REVALIDATE_SECONDS:
            checked = time.monotonic()
            if not await run_in_threadpool(valid):
                return  # its token was revoked: the client's reconnection is refused
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
        if await _closed_within(closing, poll_seconds):
            return


class _EventStream(StreamingResponse):
    """An SSE response whose messages start once it knows its app (to end with its streams)."""

    def __init__(self, poll: Callable[[], Snapshot], poll_seconds: float, max_seconds: float):
        super().__init__(
            self._body(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
        self._poll = poll
        self._poll_seconds = poll_seconds
        self._max_seconds = max_seconds
        self._app_closing = asyncio.Event()
        self._valid: Callable[[], bool] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._app_closing = _closing(scope["app"])
        self._valid = still_valid(Request(scope))
        with stream_open(scope["app"]):  # counted in `stepline_sse_clients` while open
            await super().__call__(scope, receive, send)

    async def _body(self) -> AsyncIterator[str]:
        messages = _messages(
            self._poll, self._poll_seconds, self._max_seconds, self._app_closing, self._valid
        )
        async for message in messages:
            yield message


def stream(
    poll: Callable[[], Snapshot],
    *,
    poll_seconds: float = POLL_SECONDS,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> StreamingResponse:
    """An SSE response fed by `poll` (a blocking store read, run in the thread pool).

    Starlette cancels the stream when the client disconnects; `close_streams` ends it too.
    """
    return _EventStream(poll, poll_seconds, max_seconds)

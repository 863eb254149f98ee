"""Server-sent events: stream the page sections that changed, fed by one change feed per app.

A process's streams share one `ChangeFeed`: every `POLL_SECONDS` it reads the store's change
mark (one cheap query, `Store.change_mark`), and only when the mark moved do the streams poll
their subject. Streams of the same subject (the same page, run or filter, for a viewer with the
same rights) share that poll and its rendering: 200 open streams of one page cost one query
per change, not 400 a second. A stream also re-polls every `RESYNC_SECONDS` for what moves
with time alone (a relative range). When its key changed it sends the sections whose HTML
differs from what this client last got. A stream whose subject has ended sends a final `end`
event (the page closes its EventSource on it) and stops. Streams also stop after
`max_seconds`; browsers reconnect by themselves and get fresh state, and at once when the
server starts stopping (`close_streams`), so that open pages do not hold a shutdown. A stream
whose token is revoked ends within `REVALIDATE_SECONDS` (`auth.still_valid`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from stepline import errors
from stepline.server.auth import still_valid
from stepline.server.metrics import stream_open

logger = logging.getLogger("stepline.server")
POLL_SECONDS = 0.5
RESYNC_SECONDS = 10.0  # a stream polls its subject at least this often, changed or not
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


class ChangeFeed:
    """The store's changes for this app's streams on one loop, and their shared polls.

    Args:
        mark: `Store.change_mark` (a blocking read, run in the thread pool).
    """

    def __init__(self, mark: Callable[[], object]) -> None:
        self._mark = mark
        self.version = 0  # moves on once per change seen
        self._changed = asyncio.Event()
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self._polls: dict[tuple[object, int], asyncio.Future[Snapshot]] = {}

    @contextmanager
    def watched(self) -> Iterator[None]:
        """While a stream is open: the feed reads the mark (it stops when none is open)."""
        self._watchers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow())
        try:
            yield
        finally:
            self._watchers -= 1

    async def _follow(self) -> None:
        last = await run_in_threadpool(self._mark)
        while self._watchers:
            await asyncio.sleep(POLL_SECONDS)
            mark = await run_in_threadpool(self._mark)
            if mark != last:
                last = mark
                self.version += 1
                self._polls.clear()  # (the older versions' polls are stale)
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()

    async def changed(self, seen: int, seconds: float) -> None:
        """Return once the version is past `seen`, or after `seconds`."""
        if self.version == seen:
            with suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._changed.wait()

    async def snapshot(self, subject: object, poll: Callable[[], Snapshot]) -> Snapshot:
        """`poll()` for this version, shared by every stream of `subject` (None: not shared)."""
        if subject is None:
            return _shared_render(await run_in_threadpool(poll))
        key = (subject, self.version)
        found = self._polls.get(key)
        if found is None:
            found = self._polls[key] = asyncio.ensure_future(_polled(poll))
        return await asyncio.shield(found)


async def _polled(poll: Callable[[], Snapshot]) -> Snapshot:
    return _shared_render(await run_in_threadpool(poll))


def _shared_render(snapshot: Snapshot) -> Snapshot:
    """The snapshot, its sections rendered at most once for all the streams sharing it."""
    rendered: list[dict[str, str]] = []

    def render() -> dict[str, str]:
        if not rendered:
            rendered.append(snapshot.render())
        return rendered[0]

    return Snapshot(key=snapshot.key, render=render, final=snapshot.final)


def _feed(app: Starlette) -> ChangeFeed:
    """The app's change feed on the running loop (its store's mark is `app.state.change_mark`)."""
    feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChangeFeed] | None
    feeds = getattr(app.state, "sse_feeds", None)
    if feeds is None:
        feeds = app.state.sse_feeds = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    if loop not in feeds:
        feeds[loop] = ChangeFeed(app.state.change_mark)
    return feeds[loop]


@dataclass(frozen=True, kw_only=True)
class _Source:
    """What one stream reads: its subject's poll, through its app's feed."""

    poll: Callable[[], Snapshot]
    subject: object
    feed: ChangeFeed
    closing: asyncio.Event
    valid: Callable[[], bool] | None
    max_seconds: float


_GONE = Snapshot(key="", render=dict, final=True)  # its subject is gone: `end`, nothing else


async def _snapshot(source: _Source) -> Snapshot | None:
    """The subject's snapshot now.

    `_GONE` if it no longer exists (pruned by retention); None if the store failed (the
    stream ends, and the client reconnects by itself).
    """
    try:
        return await source.feed.snapshot(source.subject, source.poll)
    except errors.NotFound:
        return _GONE
    except errors.StoreError as exc:
        logger.warning("live stream ended: %s", exc)
        return None


async def _messages(source: _Source) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    feed = source.feed
    sent: dict[str, str] = {}
    last_key: str | None = None
    seen = -1
    started = last_write = checked = polled = time.monotonic()
    while not source.closing.is_set():
        now = time.monotonic()
        if source.valid is not None and now - checked > REVALIDATE_SECONDS:
            checked = now
            if not await run_in_threadpool(source.valid):
                return  # its token was revoked: the client's reconnection is refused
        if feed.version != seen or now - polled > RESYNC_SECONDS:
            seen, polled = feed.version, now
            snapshot = await _snapshot(source)
            if snapshot is None:
                return
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
        if now - started > source.max_seconds:
            return
        if now - last_write > HEARTBEAT_SECONDS:
            # A comment: keeps proxies from timing the stream out; EventSource ignores it.
            last_write = now
            yield ": heartbeat\n\n"
        await _next_change(source, seen)


async def _next_change(source: _Source, seen: int) -> None:
    """Wait for the feed's next change, the server's stop, or the next check, whichever first."""
    changed = asyncio.ensure_future(source.feed.changed(seen, REVALIDATE_SECONDS))
    closing = asyncio.ensure_future(source.closing.wait())
    try:
        await asyncio.wait({changed, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        changed.cancel()
        closing.cancel()


class _EventStream(StreamingResponse):
    """An SSE response whose messages start once it knows its app (to end with its streams)."""

    def __init__(self, poll: Callable[[], Snapshot], subject: object, max_seconds: float):
        super().__init__(
            self._body(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
        self._poll = poll
        self._subject = subject
        self._max_seconds = max_seconds
        self._source: _Source | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        feed = _feed(app)
        self._source = _Source(
            poll=self._poll,
            subject=self._subject,
            feed=feed,
            closing=_closing(app),
            valid=still_valid(Request(scope)),
            max_seconds=self._max_seconds,
        )
        with stream_open(app), feed.watched():  # counted in `stepline_sse_clients` while open
            await super().__call__(scope, receive, send)

    async def _body(self) -> AsyncIterator[str]:
        assert self._source is not None, "the stream starts once it knows its app"
        async for message in _messages(self._source):
            yield message


def stream(
    poll: Callable[[], Snapshot],
    *,
    subject: object = None,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> StreamingResponse:
    """An SSE response fed by `poll` (a blocking store read, run in the thread pool).

    `subject` (hashable) names what `poll` reads, for a viewer with given rights: the streams
    of one subject share each poll. None: this stream polls for itself (still only when the
    store changed). Starlette cancels the stream when the client disconnects;
    `close_streams` ends it too.
    """
    return _EventStream(poll, subject, max_seconds)

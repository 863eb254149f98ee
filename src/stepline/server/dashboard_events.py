"""The events list, newest first, by name prefix, with data previews, live; "Send event".

The first page is live over SSE, as the runs list's. `name` (exact) stays for the links from
a function's triggers; the form filters by `prefix`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline import errors
from stepline.engine.events import MAX_NAME_LENGTH
from stepline.engine.operations import Operations
from stepline.server import dashboard_models as models
from stepline.server import sse
from stepline.server.dashboard_auth import sender
from stepline.server.dashboard_filters import PAGE_SIZE, event_filter
from stepline.server.forms import parse_payload, read_form
from stepline.server.templating import page, render
from stepline.store.base import EventRecord

Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
PREVIEW_CHARS = 80


@dataclass(frozen=True, kw_only=True, slots=True)
class EventsFilter:
    """The list's criteria: a name prefix, an exact name (the triggers' links), a cursor."""

    prefix: str | None
    name: str | None
    before: str | None

    def params(self, **extra: str | None) -> dict[str, str]:
        """The filled-in criteria (and `extra`) as query parameters."""
        values = {"prefix": self.prefix, "name": self.name, **extra}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True, kw_only=True, slots=True)
class EventLine:
    """An events-table line with its data on one line, cut at `PREVIEW_CHARS`."""

    row: models.EventRow
    preview: str
    preview_full: str


def events_filter(params: Mapping[str, str]) -> EventsFilter:
    """The list's criteria, checked as `GET /v1/events` checks `name` and `before`.

    Raises:
        InvalidInput: A bad `name` or `before`, or a `prefix` longer than any event name.
    """
    query = event_filter(params)
    prefix = params.get("prefix", "")
    if len(prefix) > MAX_NAME_LENGTH:
        raise errors.InvalidInput(f"longer than {MAX_NAME_LENGTH} characters", "prefix")
    return EventsFilter(prefix=prefix or None, name=query.name, before=query.before)


def event_line(event: EventRecord) -> EventLine:
    """An events-table line."""
    text = json.dumps(json.loads(event.data), ensure_ascii=False, separators=(", ", ": "))
    cut = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return EventLine(row=models.event_row(event), preview=cut, preview_full=text)


class EventPages:
    """The events list, its stream and "Send event" over one `Operations`."""

    def __init__(self, operations: Operations, *, guard: Guard, context: Context) -> None:
        self.ops = operations
        self._guard = guard
        self._context = context

    def _lines(self, query: EventsFilter, limit: int) -> list[EventRecord]:
        return self.ops.store.list_events(query.name, limit, query.before, name_prefix=query.prefix)

    def _values(self, query: EventsFilter) -> dict[str, Any]:
        events = self._lines(query, PAGE_SIZE + 1)
        lines = [event_line(e) for e in events[:PAGE_SIZE]]
        older = None
        if len(events) > PAGE_SIZE:
            older = "/events?" + urlencode(query.params(before=lines[-1].row.internal_id))
        stream = None if query.before else "/events/stream?" + urlencode(query.params())
        return {
            "lines": lines,
            "query": query,
            "older_href": older,
            "newest_href": "/events?" + urlencode(query.params()) if query.before else None,
            "stream_url": stream,
        }

    def _page(
        self, request: Request, form: dict[str, str], error: str | None, status: int = 200
    ) -> Response:
        values = self._values(events_filter(request.query_params))
        context = self._context(request, "events", "Events", form=form, error=error, **values)
        return page("events.html", context, status=status)

    async def page(self, request: Request) -> Response:
        """GET /events: events newest first, filtered, live; and "Send event"."""

        async def inner(request: Request) -> Response:
            form = {"name": "", "data": "{}"}
            return await run_in_threadpool(self._page, request, form, None)

        return await self._guard(request, inner)

    async def send(self, request: Request) -> Response:
        """POST /events: send `{name, data}`; go to the stored event."""

        async def inner(request: Request) -> Response:
            form = await read_form(request)
            form = {"name": form.get("name", ""), "data": form.get("data", "")}
            try:
                data = parse_payload(form["data"], "data")
                event = {"name": form["name"], "data": data}
                by = sender(request)
                ids = await run_in_threadpool(lambda: self.ops.send(event, sent_by=by))
            except errors.InvalidInput as exc:
                return await run_in_threadpool(self._page, request, form, str(exc), 400)
            return RedirectResponse(models.event_href(ids[0]), status_code=303)

        return await self._guard(request, inner)

    async def stream(self, request: Request) -> Response:
        """GET /events/stream: SSE `events` with the first page's rows when they change."""

        async def inner(request: Request) -> Response:
            query = events_filter(request.query_params)
            if query.before is not None:
                raise errors.InvalidInput("only the first page is live", "before")

            def poll() -> sse.Snapshot:
                events = self._lines(query, PAGE_SIZE)
                return sse.Snapshot(
                    key=repr([e.internal_id for e in events]),
                    render=lambda: {
                        "events": render(
                            "_events_rows.html", {"lines": [event_line(e) for e in events]}
                        )
                    },
                )

            return sse.stream(poll, subject=("events", repr(query)))

        return await self._guard(request, inner, stream=True)

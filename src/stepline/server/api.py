"""REST API v1 handlers: events, runs, functions, apps, workers; every payload is `{"data": ...}`.

Routes and their models are listed once, in `server/app.py`. `Api.endpoint` turns a table
entry into a Starlette endpoint that checks the token and its role (`server.auth`), validates
the path, query and body with the entry's models and calls the handler with the parsed values
(and `principal`, who asks, if the handler takes it), so what the OpenAPI document promises is
what is enforced. Run handlers are in `api_runs`, output downloads in `api_outputs`, app
handlers in `api_apps`, token, key and audit handlers in `api_access`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stepline import errors
from stepline.engine import views
from stepline.engine.access import Principal
from stepline.engine.inngest.names import to_stepline
from stepline.engine.inngest.sync import syncer_for
from stepline.engine.metrics import Metrics
from stepline.engine.operations import Operations
from stepline.engine.outputs import Outputs
from stepline.server import scope
from stepline.server.api_access import AccessHandlers
from stepline.server.api_apps import AppHandlers
from stepline.server.api_outputs import OutputHandlers
from stepline.server.api_runs import RunHandlers
from stepline.server.auth import AuthSettings, authorize, bearer
from stepline.server.body import read_json
from stepline.server.inngest import rest
from stepline.server.intake import bounded_batch, intake_endpoint
from stepline.server.models import EventQuery, InvokeBody, ReasonBody, parse
from stepline.server.openapi import Endpoint, document

Handler = Callable[[Request], Awaitable[Response]]
_NO_BODY = object()


def path_value(request: Request, name: str) -> str:
    """A path parameter; `InvalidInput` if it holds a NUL (no stored id does)."""
    value: str = request.path_params[name]
    if "\x00" in value:
        raise errors.InvalidInput("must not contain NUL characters", name)
    return value


SIGNING_KEY = "signing-key"  # who a request authenticated by an SDK signing key is


def _reads_store(auth: AuthSettings, request: Request) -> bool:
    """Whether identifying `request` reads the store (a named token), so not on the event loop.

    An open server, and the bootstrap token, are known without it.
    """
    if auth.open:
        return False
    given = bearer(request)
    return given is not None and not auth.is_token(given)


class Api(RunHandlers, OutputHandlers, AppHandlers, AccessHandlers):
    """The `/v1` handlers over one `Operations`."""

    def __init__(
        self, operations: Operations, auth: AuthSettings, endpoints: tuple[Endpoint, ...]
    ) -> None:
        super().__init__(operations)
        self.auth = auth
        self.syncer = syncer_for(operations, auth.signing_keys)
        self._endpoints = endpoints
        self._intake: Any = intake_endpoint(operations, auth)
        self._document: dict[str, Any] | None = None
        self.metrics: Metrics | None = None  # counts the events accepted (`create_app`)

    def endpoint(self, spec: Endpoint) -> Handler:
        """The Starlette endpoint for one table entry."""
        handler = getattr(self, spec.handler)
        if spec.plain:
            return handler  # type: ignore[no-any-return]  # a method taking the Request
        wants_principal = "principal" in inspect.signature(handler).parameters
        wants_trace = "traceparent" in inspect.signature(handler).parameters

        async def endpoint(request: Request) -> Response:
            kwargs: dict[str, Any] = {}
            principal = (
                await run_in_threadpool(self._authorize, spec, request)
                if _reads_store(self.auth, request)
                else self._authorize(spec, request)  # no lookup: no trip to the thread pool
            )
            if wants_principal:
                kwargs["principal"] = principal
            if wants_trace:  # a W3C trace context the runs it starts continue
                kwargs["traceparent"] = request.headers.get("traceparent")
            if spec.inngest:
                kwargs["inngest"] = rest.speaks_inngest(request, self.auth.signing_keys)
            kwargs.update((name, path_value(request, name)) for name in spec.path_params)
            params = dict(request.query_params)
            if spec.query is not None:
                kwargs["query"] = parse(spec.query, params, where="query")
            elif params:
                name = sorted(params)[0]
                raise errors.InvalidInput(f"unknown query parameter {name!r}", name)
            if spec.body is not None:
                body = await read_json(request, required=spec.body_required, absent=_NO_BODY)
                if body is _NO_BODY:
                    body = None
                elif not spec.raw_body:
                    body = parse(spec.body, body, where="body")
                kwargs["body"] = body
            response: Response = await handler(**kwargs)
            return response

        return endpoint

    def _authorize(self, spec: Endpoint, request: Request) -> Principal:
        """Who asks, checked for the route's role and function scope (see `server.auth`)."""
        if not spec.auth:
            return Principal(name="api", role="read")
        keys = self.auth.signing_keys
        signed = keys is not None and keys.accepts_bearer(request.headers.get("authorization"))
        if spec.inngest and signed:
            return Principal(name=SIGNING_KEY, role="admin")
        principal = authorize(self.auth, request, spec.role, way="api")
        if principal.functions is not None and not spec.per_function:
            raise errors.Forbidden(
                f"the token {principal.name!r} is limited to functions "
                f"{scope.limited_to(principal)}; {spec.method} {spec.path} spans every function"
            )
        return principal

    # -- documents -------------------------------------------------------------------------

    async def openapi(self) -> JSONResponse:
        """GET /v1/openapi.json: this API's OpenAPI 3.1 document."""
        if self._document is None:
            self._document = document(self._endpoints, version=metadata.version("stepline"))
        return JSONResponse(self._document)

    async def intake(self, request: Request) -> Response:
        """POST /e/{event_key}: Inngest-compatible event intake (see `server.intake`)."""
        response: Response = await self._intake(request)
        return response

    # -- events ------------------------------------------------------------------------------

    def _accepted(self, ids: list[str]) -> list[str]:
        """`ids`, counted as events accepted through the API."""
        if self.metrics is not None:
            self.metrics.intake_events.labels("api").inc(len(ids))
        return ids

    async def list_events(self, query: EventQuery, inngest: bool) -> JSONResponse:
        """GET /v1/events: events newest first, by name and time received, paged.

        Inngest clients name system events `inngest/...` and get 20 events unless they ask.
        """
        name, limit = query.name, query.limit
        if inngest:
            name = None if name is None else to_stepline(name)
            limit = limit if "limit" in query.model_fields_set else rest.DEFAULT_EVENTS

        def page() -> dict[str, Any]:
            events, cursor = self.ops.events_page(
                name,
                limit,
                query.start,
                received_after=query.received_after,
                received_before=query.received_before,
                name_prefix=query.name_prefix,
            )
            if inngest:
                return rest.payload([rest.event_view(e) for e in events])
            return {"data": [views.event_view(e) for e in events], "next_cursor": cursor}

        return JSONResponse(await run_in_threadpool(page))

    async def get_event(self, event_id: str, inngest: bool) -> JSONResponse:
        """GET /v1/events/{id}: one event, by its internal or sender's id."""
        view = rest.event_view if inngest else views.event_view
        return await self._shaped(lambda: view(self.ops.get_event(event_id)), inngest)

    async def send_events(
        self, body: Any, principal: Principal, traceparent: str | None
    ) -> JSONResponse:
        """POST /v1/events: store one event or a list (all or none); start their runs.

        Each event records the token it came with, and so do the runs it starts; they continue
        the trace of a `traceparent` header.
        """
        sent_by = None if self.auth.open else principal.name
        return await self._data(
            lambda: {
                "ids": self._accepted(
                    self.ops.send(bounded_batch(body), sent_by=sent_by, traceparent=traceparent)
                )
            }
        )

    async def event_runs(self, event_id: str, inngest: bool, principal: Principal) -> JSONResponse:
        """GET /v1/events/{id}/runs: the runs an event started (a limited token's: of its own)."""

        def runs() -> list[dict[str, Any]]:
            found = scope.visible(principal, self.ops.runs_for_event(event_id))
            if inngest:
                return rest.runs_view(found, Outputs(self.ops.store))
            return [views.run_view(r) for r in found]

        return await self._shaped(runs, inngest)

    # -- functions ---------------------------------------------------------------------------

    def _function(self, function_id: str, principal: Principal) -> dict[str, Any]:
        scope.check_function(principal, function_id)
        fn = self.ops.function(function_id)
        stats, cron, now = self.ops.function_stats(), self.ops.cron_states(), self.ops.clock.now()
        return views.function_view(
            fn, stats.get(fn.id), now, cron.get(fn.id), retention=self.ops.retention
        )

    async def list_functions(self, principal: Principal) -> JSONResponse:
        """GET /v1/functions: functions with next cron ticks, newest run, 24 h success rate."""

        def functions() -> list[dict[str, Any]]:
            stats, cron, now = (
                self.ops.function_stats(),
                self.ops.cron_states(),
                self.ops.clock.now(),
            )
            return [
                views.function_view(
                    f, stats.get(f.id), now, cron.get(f.id), retention=self.ops.retention
                )
                for f in scope.visible(principal, self.ops.list_functions())
            ]

        return await self._data(functions)

    async def get_function(self, function_id: str, principal: Principal) -> JSONResponse:
        """GET /v1/functions/{id}: one function."""
        return await self._data(lambda: self._function(function_id, principal))

    async def pause_function(
        self, function_id: str, body: ReasonBody | None, principal: Principal
    ) -> JSONResponse:
        """POST /v1/functions/{id}/pause: its events and cron ticks start no runs.

        The function records the pause's time, the token that asked, and `{"reason"}` if given.
        """
        reason = body.reason if body is not None else None

        def pause() -> dict[str, Any]:
            scope.check_function(principal, function_id)
            self.ops.pause(function_id, by=principal.name, reason=reason)
            return self._function(function_id, principal)

        return await self._data(pause)

    async def resume_function(self, function_id: str, principal: Principal) -> JSONResponse:
        """POST /v1/functions/{id}/resume: its events and cron ticks start runs again."""

        def resume() -> dict[str, Any]:
            scope.check_function(principal, function_id)
            self.ops.resume(function_id, by=principal.name)
            return self._function(function_id, principal)

        return await self._data(resume)

    async def invoke_function(
        self,
        function_id: str,
        body: InvokeBody | None,
        principal: Principal,
        traceparent: str | None,
    ) -> JSONResponse:
        """POST /v1/functions/{id}/invoke: start a run now with `{"data": {...}}` (or no body).

        The run's `trigger.by` is the token's name; it continues a `traceparent` header's trace.
        """
        data = body.data if body is not None else {}
        dry_run = body.dry_run if body is not None else False

        def invoke() -> dict[str, str]:
            scope.check_function(principal, function_id)
            run_id = self.ops.invoke(
                function_id, data, by=principal.name, dry_run=dry_run, traceparent=traceparent
            )
            return {"run_id": run_id}

        return await self._data(invoke, status=201)

    # -- workers -----------------------------------------------------------------------------

    async def list_workers(self) -> JSONResponse:
        """GET /v1/workers: workers with capacity, runs in flight and liveness."""
        return await self._data(
            lambda: [views.worker_view(w) for w in self.ops.store.list_workers()]
        )

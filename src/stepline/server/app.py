"""`create_app`: the ASGI application, with every route listed here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from stepline import errors
from stepline.engine.access import Role
from stepline.engine.metrics import Metrics
from stepline.engine.operations import Operations
from stepline.server import access_models as am
from stepline.server import models as m
from stepline.server.api import Api
from stepline.server.auth import AuthSettings
from stepline.server.cross_site import CrossSiteGuard
from stepline.server.dashboard import Dashboard
from stepline.server.errors import error_response, handle_stepline_error, refusal
from stepline.server.inngest.routes import inngest_routes
from stepline.server.metrics import MetricsEndpoint, RejectionCounter
from stepline.server.openapi import Endpoint
from stepline.server.security_headers import SecurityHeaders


async def health(request: Request) -> JSONResponse:
    """Liveness: 200 when the server answers."""
    return JSONResponse({"status": 200, "message": "OK"})


Inner = Callable[[Request], Awaitable[Response]]
_FAVICON = resources.files("stepline.server").joinpath("static/favicon.svg").read_bytes()


async def favicon(request: Request) -> Response:
    """GET /favicon.ico: the dashboard's icon (SVG), for clients that ask there by habit."""
    return Response(
        _FAVICON, media_type="image/svg+xml", headers={"cache-control": "public, max-age=86400"}
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    message = f"no route for {request.method} {request.url.path}"
    return refusal(request.url.path, request.headers.get("accept", ""), 404, message)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    allowed = ", ".join(_methods_at(request))
    message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return error_response(405, message, headers={"allow": allowed})


def _methods_at(request: Request) -> list[str]:
    """The methods of the first path matching the request (one path may have several routes).

    Literal paths come before `{parameter}` ones, so `/v1/runs/cancel` allows POST alone, as
    the OpenAPI document, which matches literal paths first, says.
    """
    routes = [
        route
        for route in request.app.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE
    ]
    if not routes:
        return ["GET", "HEAD"]  # not a route: the static files
    same = [route.methods or set() for route in routes if route.path == routes[0].path]
    return sorted(set().union(*same))


_EVENTS, _RUNS, _FUNCTIONS, _ACCESS = "events", "runs", "functions", "access"
# Every API route, in matching order (a literal segment before a `{parameter}` one).
API: tuple[Endpoint, ...] = (
    Endpoint(
        method="POST",
        path="/e/{event_key}",
        handler="intake",
        summary="Send events (Inngest-compatible; the key is an event key)",
        tag=_EVENTS,
        response=m.IntakeResponse,
        body=m.IntakeEventsIn,
        errors=(401, 413),
        auth=False,
        plain=True,
        error_model=m.IntakeResponse,
    ),
    Endpoint(
        method="GET",
        path="/v1/openapi.json",
        handler="openapi",
        summary="This document",
        tag="meta",
        auth=False,
    ),
    Endpoint(
        method="GET",
        path="/v1/events",
        handler="list_events",
        summary="List events, newest first",
        tag=_EVENTS,
        response=m.EventsPage,
        query=m.EventQuery,
        inngest=True,
        inngest_response=m.InngestEvents,
    ),
    Endpoint(
        method="POST",
        path="/v1/events",
        handler="send_events",
        summary="Send one event or a list (all or none)",
        tag=_EVENTS,
        response=m.SentResponse,
        body=m.EventsIn,
        raw_body=True,
        errors=(413,),
        role="operate",
    ),
    Endpoint(
        method="GET",
        path="/v1/events/{event_id}",
        handler="get_event",
        summary="Get an event by its internal or sender's id",
        tag=_EVENTS,
        response=m.EventResponse,
        errors=(404,),
        inngest=True,
        inngest_response=m.InngestEventResponse,
    ),
    Endpoint(
        method="GET",
        path="/v1/events/{event_id}/runs",
        handler="event_runs",
        summary="The runs an event started",
        tag=_EVENTS,
        response=m.RunList,
        errors=(404,),
        inngest=True,
        inngest_response=m.InngestRuns,
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs",
        handler="list_runs",
        summary="List runs, newest first, keyset-paged",
        tag=_RUNS,
        response=m.RunsPage,
        query=m.RunQuery,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs/stream",
        handler="runs_stream",
        summary="Server-sent `runs` events with the page whenever it changes",
        tag=_RUNS,
        query=m.RunQuery,
        stream=True,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/runs/cancel",
        handler="cancel_runs",
        summary="Cancel every active run matching a filter",
        tag=_RUNS,
        response=m.AffectedResponse,
        body=m.BulkSelection,
        errors=(413,),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/runs/replay",
        handler="replay_runs",
        summary="Replay every run matching a filter",
        tag=_RUNS,
        response=m.AffectedResponse,
        status=201,
        body=m.BulkSelection,
        errors=(404, 409, 413),
        previews=True,
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs/{run_id}",
        handler="get_run",
        summary="Get a run with its steps, attempts, logs, progress and counters",
        tag=_RUNS,
        response=m.RunDetailResponse,
        errors=(404,),
        inngest=True,
        inngest_response=m.InngestRunResponse,
        per_function=True,
    ),
    Endpoint(
        method="DELETE",
        path="/v1/runs/{run_id}",
        handler="cancel_run",
        summary="Cancel a run (as POST /v1/runs/{run_id}/cancel)",
        tag=_RUNS,
        response=m.RunResponse,
        errors=(404,),
        inngest=True,
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs/{run_id}/stream",
        handler="run_stream",
        summary="Server-sent `run` events whenever the run changes, then `end`",
        tag=_RUNS,
        stream=True,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs/{run_id}/output",
        handler="run_output",
        summary="Download the run's output (its function's result) as a JSON file",
        tag=_RUNS,
        download=True,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/runs/{run_id}/steps/{step_hash}/output",
        handler="step_output",
        summary="Download a step's output as a JSON file (the step by its hash)",
        tag=_RUNS,
        download=True,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/runs/{run_id}/cancel",
        handler="cancel_run",
        summary="Cancel a run (a no-op on an ended run), with an optional reason",
        tag=_RUNS,
        response=m.RunResponse,
        body=m.ReasonBody,
        body_required=False,
        errors=(404, 413),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/runs/{run_id}/replay",
        handler="replay_run",
        summary="Start a new run with the same trigger, linked to this one",
        tag=_RUNS,
        response=m.CreatedRun,
        status=201,
        body=m.ReasonBody,
        body_required=False,
        errors=(404, 409, 413),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/runs/{run_id}/rerun",
        handler="rerun_run",
        summary="Start a new run linked to this one, from one of its steps, maybe with new data",
        tag=_RUNS,
        response=m.CreatedRun,
        status=201,
        body=m.RerunBody,
        body_required=False,
        errors=(404, 409, 413),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/functions",
        handler="list_functions",
        summary="List functions with next cron ticks, newest run and 24 h success rate",
        tag=_FUNCTIONS,
        response=m.FunctionList,
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/functions/{function_id}",
        handler="get_function",
        summary="Get a function",
        tag=_FUNCTIONS,
        response=m.FunctionResponse,
        errors=(404,),
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/functions/{function_id}/pause",
        handler="pause_function",
        summary="Pause: its events and cron ticks start no runs (an optional reason is kept)",
        tag=_FUNCTIONS,
        response=m.FunctionResponse,
        body=m.ReasonBody,
        body_required=False,
        errors=(404, 413),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/functions/{function_id}/resume",
        handler="resume_function",
        summary="Resume a paused function",
        tag=_FUNCTIONS,
        response=m.FunctionResponse,
        errors=(404,),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="POST",
        path="/v1/functions/{function_id}/invoke",
        handler="invoke_function",
        summary="Start a run now with the given event data",
        tag=_FUNCTIONS,
        response=m.CreatedRun,
        status=201,
        body=m.InvokeBody,
        body_required=False,
        errors=(404, 409, 413),
        role="operate",
        per_function=True,
    ),
    Endpoint(
        method="GET",
        path="/v1/apps",
        handler="list_apps",
        summary="List apps (Python and SDK) with their functions",
        tag="apps",
        response=m.AppList,
    ),
    Endpoint(
        method="POST",
        path="/v1/apps",
        handler="sync_app",
        summary="Sync (or re-sync) an SDK app by its serve URL; the app as now stored",
        tag="apps",
        response=m.AppResponse,
        body=m.SyncAppBody,
        errors=(413, 502),
        role="admin",
    ),
    Endpoint(
        method="GET",
        path="/v1/workers",
        handler="list_workers",
        summary="List workers with capacity, load and liveness",
        tag="workers",
        response=m.WorkerList,
    ),
    Endpoint(
        method="GET",
        path="/v1/tokens",
        handler="list_tokens",
        summary="List API tokens (names, roles, use; never secrets), revoked ones too",
        tag=_ACCESS,
        response=am.TokenList,
        role="admin",
    ),
    Endpoint(
        method="POST",
        path="/v1/tokens",
        handler="create_token",
        summary="Create a named API token with a role; its secret is shown in this answer only",
        tag=_ACCESS,
        response=am.CreatedTokenResponse,
        status=201,
        body=am.TokenBody,
        errors=(409, 413),
        role="admin",
    ),
    Endpoint(
        method="POST",
        path="/v1/tokens/{name}/revoke",
        handler="revoke_token",
        summary="Revoke an API token: refused from the next request on",
        tag=_ACCESS,
        response=am.TokenResponse,
        body=m.ReasonBody,
        body_required=False,
        errors=(404, 413),
        role="admin",
    ),
    Endpoint(
        method="GET",
        path="/v1/keys",
        handler="list_keys",
        summary="List named event keys (never secrets), revoked ones too",
        tag=_ACCESS,
        response=am.KeyList,
        role="admin",
    ),
    Endpoint(
        method="POST",
        path="/v1/keys",
        handler="create_key",
        summary="Create a named event key; its secret is shown in this answer only",
        tag=_ACCESS,
        response=am.CreatedKeyResponse,
        status=201,
        body=am.KeyBody,
        errors=(409, 413),
        role="admin",
    ),
    Endpoint(
        method="POST",
        path="/v1/keys/{name}/revoke",
        handler="revoke_key",
        summary="Revoke an event key: intake refuses it from the next request on",
        tag=_ACCESS,
        response=am.KeyResponse,
        body=m.ReasonBody,
        body_required=False,
        errors=(404, 413),
        role="admin",
    ),
    Endpoint(
        method="GET",
        path="/v1/audit",
        handler="list_audit",
        summary="The audit log: operator actions, newest first, keyset-paged",
        tag=_ACCESS,
        response=am.AuditPage,
        query=am.AuditQuery,
        errors=(404,),
        role="admin",
    ),
)


def _pages(ui: Dashboard) -> list[tuple[str, str, Inner, Role]]:
    """The dashboard's routes, in matching order, and the role each needs (`server.auth`).

    Pages and streams need `read`; forms that act need `operate`; syncing apps and the audit
    log need `admin`. The forms' confirmation pages (GET) need `operate` too.
    """
    f = ui.functions
    return [
        ("GET", "/", ui.functions_page, "read"),
        ("GET", "/functions", ui.functions_page, "read"),
        ("GET", "/functions/{function_id}", f.page, "read"),
        ("POST", "/functions/{function_id}/invoke", ui.invoke, "operate"),
        ("POST", "/functions/{function_id}/run", f.run, "operate"),
        ("GET", "/functions/{function_id}/pause", f.confirm_page("pause"), "operate"),
        ("POST", "/functions/{function_id}/pause", f.toggle("pause"), "operate"),
        ("GET", "/functions/{function_id}/resume", f.confirm_page("resume"), "operate"),
        ("POST", "/functions/{function_id}/resume", f.toggle("resume"), "operate"),
        ("GET", "/runs", ui.runs_page, "read"),
        ("GET", "/runs/stream", ui.runs_stream, "read"),  # before /runs/{run_id}
        ("GET", "/runs/replay", ui.bulk.preview_page("replay"), "operate"),
        ("POST", "/runs/replay", ui.bulk.confirm("replay"), "operate"),
        ("GET", "/runs/cancel", ui.bulk.preview_page("cancel"), "operate"),
        ("POST", "/runs/cancel", ui.bulk.confirm("cancel"), "operate"),
        ("GET", "/runs/{run_id}", ui.run_page, "read"),
        ("GET", "/runs/{run_id}/stream", ui.run_stream, "read"),
        ("GET", "/runs/{run_id}/output", ui.output, "read"),
        ("GET", "/runs/{run_id}/steps/{step_hash}/output", ui.output, "read"),
        ("GET", "/runs/{run_id}/cancel", ui.run_actions.cancel_page, "operate"),
        ("POST", "/runs/{run_id}/cancel", ui.run_actions.cancel, "operate"),
        ("POST", "/runs/{run_id}/replay", ui.run_actions.replay, "operate"),
        ("POST", "/runs/{run_id}/rerun", ui.reruns.rerun, "operate"),
        ("GET", "/events", ui.events.page, "read"),
        ("POST", "/events", ui.events.send, "operate"),
        ("GET", "/events/stream", ui.events.stream, "read"),  # before /events/{event_id}
        ("GET", "/events/{event_id}", ui.event_page, "read"),
        ("GET", "/workers", ui.workers.page, "read"),
        ("GET", "/workers/stream", ui.workers.stream, "read"),
        ("GET", "/apps", ui.apps_page, "read"),
        ("POST", "/apps", ui.sync_app, "admin"),
        ("GET", "/audit", ui.audit.page, "admin"),
    ]


def create_app(
    operations: Operations, auth: AuthSettings | None = None, metrics: Metrics | None = None
) -> Starlette:
    """The server: event intake at `/e/{key}`, REST under `/v1`, health, metrics, dashboard.

    Args:
        operations: What the handlers act on.
        auth: Event keys and API token; open when empty (only `stepline dev` allows that), and
            then guarded against requests from web pages (see `server.cross_site`).
        metrics: This process's metrics, served at `/metrics` with the deployment's
            gauges (`stepline dev` passes its engine's); new ones when None.
    """
    auth = replace(auth or AuthSettings(), credentials=operations.credentials)
    api = Api(operations, auth, API)
    ui = Dashboard(operations, auth)
    metrics = metrics or Metrics(operations.store.tally)
    api.metrics = metrics
    routes: list[BaseRoute] = [
        # dashboard: HTML pages, plain form posts (303 redirects), SSE streams
        *(Route(path, ui.needs(role, h), methods=[method]) for method, path, h, role in _pages(ui)),
        Route("/login", ui.auth.login_page, methods=["GET"]),
        Route("/login", ui.auth.login, methods=["POST"]),
        Route("/logout", ui.auth.logout, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("stepline.server", "static")]), name="static"),
        Route("/health", health, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/metrics", MetricsEndpoint(metrics, operations, auth).serve, methods=["GET"]),
        # intake and REST: one table, also the OpenAPI document's source
        *(Route(e.path, api.endpoint(e), methods=[e.method]) for e in API),
        # what the Inngest SDKs and their test tooling read runs through (protocol §7.3, §12)
        *inngest_routes(operations, auth),
        Route("/v0/runs/{run_id}", api.cancel_run_v0, methods=["DELETE"]),  # Inngest's legacy
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RejectionCounter, metrics=metrics),  # outermost: sees every refusal
            Middleware(CrossSiteGuard, open_server=auth.open),
            Middleware(SecurityHeaders),
        ],
        exception_handlers={
            errors.SteplineError: handle_stepline_error,
            404: _not_found,
            405: _method_not_allowed,
        },
    )
    app.state.auth = auth  # for `server.auth.require_role`
    app.state.metrics = metrics  # the event counts and open streams (`server.metrics`)
    app.state.change_mark = operations.store.change_mark  # the live streams' feed (`sse`)
    return app

"""`create_app`: the ASGI application, with every route listed here."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stepline import errors
from stepline.engine.operations import Operations
from stepline.server.api import Api
from stepline.server.auth import AuthSettings
from stepline.server.dashboard import Dashboard
from stepline.server.errors import error_response, handle_stepline_error
from stepline.server.intake import intake_endpoint
from stepline.server.templating import page


async def health(request: Request) -> JSONResponse:
    """Liveness: 200 when the server answers."""
    return JSONResponse({"status": 200, "message": "OK"})


async def _not_found(request: Request, exc: Exception) -> Response:
    message = f"no route for {request.method} {request.url.path}"
    if "text/html" in request.headers.get("accept", ""):
        context = {"title": "Not found", "nav": "", "signed_in": False, "status": 404}
        return page("error.html", {**context, "message": message}, status=404)
    return error_response(404, message)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return error_response(405, f"{request.method} is not allowed on {request.url.path}")


def create_app(operations: Operations, auth: AuthSettings | None = None) -> Starlette:
    """The server: event intake at `/e/{key}`, REST under `/v1`, health, and the dashboard.

    Args:
        operations: What the handlers act on.
        auth: Event keys and API token; open when empty (only `stepline dev` allows that).
    """
    auth = auth or AuthSettings()
    api = Api(operations, auth)
    ui = Dashboard(operations, auth)
    routes: list[BaseRoute] = [
        # dashboard: HTML pages, plain form posts (303 redirects), SSE streams
        Route("/", ui.functions_page, methods=["GET"]),
        Route("/functions", ui.functions_page, methods=["GET"]),
        Route("/functions/{function_id}/invoke", ui.invoke, methods=["POST"]),
        Route("/runs", ui.runs_page, methods=["GET"]),
        Route("/runs/stream", ui.runs_stream, methods=["GET"]),  # before /runs/{run_id}
        Route("/runs/{run_id}", ui.run_page, methods=["GET"]),
        Route("/runs/{run_id}/stream", ui.run_stream, methods=["GET"]),
        Route("/runs/{run_id}/cancel", ui.cancel, methods=["POST"]),
        Route("/runs/{run_id}/replay", ui.replay, methods=["POST"]),
        Route("/events", ui.events_page, methods=["GET"]),
        Route("/events", ui.send_event, methods=["POST"]),
        Route("/events/{event_id}", ui.event_page, methods=["GET"]),
        Route("/login", ui.auth.login_page, methods=["GET"]),
        Route("/login", ui.auth.login, methods=["POST"]),
        Route("/logout", ui.auth.logout, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("stepline.server", "static")]), name="static"),
        # health, intake, REST
        Route("/health", health, methods=["GET"]),
        Route("/e/{event_key}", intake_endpoint(operations, auth), methods=["POST"]),  # type: ignore[arg-type]
        Route("/v1/events", api.list_events, methods=["GET"]),
        Route("/v1/events", api.send_events, methods=["POST"]),
        Route("/v1/events/{event_id}", api.get_event, methods=["GET"]),
        Route("/v1/events/{event_id}/runs", api.event_runs, methods=["GET"]),
        Route("/v1/runs", api.list_runs, methods=["GET"]),
        Route("/v1/runs/{run_id}", api.get_run, methods=["GET"]),
        Route("/v1/runs/{run_id}", api.cancel_run, methods=["DELETE"]),
        Route("/v1/runs/{run_id}/cancel", api.cancel_run, methods=["POST"]),
        Route("/v1/runs/{run_id}/replay", api.replay_run, methods=["POST"]),
        Route("/v1/functions", api.list_functions, methods=["GET"]),
        Route("/v1/workers", api.list_workers, methods=["GET"]),
        Route("/v1/functions/{function_id}/invoke", api.invoke_function, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            errors.SteplineError: handle_stepline_error,
            404: _not_found,
            405: _method_not_allowed,
        },
    )

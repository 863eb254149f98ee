"""`create_app`: the ASGI application, with every route listed here."""

from __future__ import annotations

import html

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from stepline import errors
from stepline.engine.operations import Operations
from stepline.server.api import Api
from stepline.server.auth import AuthSettings
from stepline.server.errors import error_response, handle_stepline_error
from stepline.server.intake import intake_endpoint
from stepline.store.base import RunFilter


async def health(request: Request) -> JSONResponse:
    """Liveness: 200 when the server answers."""
    return JSONResponse({"status": 200, "message": "OK"})


def _placeholder(operations: Operations) -> object:
    async def home(request: Request) -> HTMLResponse:
        def render() -> str:
            functions = operations.list_functions()
            runs = operations.list_runs(RunFilter(limit=20))
            items = "".join(f"<li>{html.escape(f.id)}</li>" for f in functions)
            rows = "".join(
                f"<tr><td>{html.escape(r.id)}</td><td>{html.escape(r.function_id)}</td>"
                f"<td>{r.status}</td><td>{r.created_at:%Y-%m-%d %H:%M:%S}Z</td></tr>"
                for r in runs
            )
            return (
                "<!doctype html><title>Stepline</title><h1>Stepline</h1>"
                "<p>The dashboard arrives in a later version; the REST API is under /v1.</p>"
                f"<h2>Functions</h2><ul>{items}</ul>"
                f"<h2>Recent runs</h2><table>{rows}</table>"
            )

        return HTMLResponse(await run_in_threadpool(render))

    return home


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, f"no route for {request.method} {request.url.path}")


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return error_response(405, f"{request.method} is not allowed on {request.url.path}")


def create_app(operations: Operations, auth: AuthSettings | None = None) -> Starlette:
    """The server: event intake at `/e/{key}`, REST under `/v1`, health, and `/`.

    Args:
        operations: What the handlers act on.
        auth: Event keys and API token; open when empty (only `stepline dev` allows that).
    """
    auth = auth or AuthSettings()
    api = Api(operations, auth)
    routes = [
        Route("/", _placeholder(operations), methods=["GET"]),  # type: ignore[arg-type]
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

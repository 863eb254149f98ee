"""Event intake, Inngest-compatible: `POST /e/{event_key}` with one event or a list."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_event_key
from stepline.server.body import read_json

# Inngest's own cap. One request is one transaction; a bounded one keeps other intake flowing.
MAX_EVENTS_PER_REQUEST = 5000


def bounded_batch(body: Any) -> Any:
    """`body` (one event or a list); `PayloadTooLarge` for more than `MAX_EVENTS_PER_REQUEST`."""
    if isinstance(body, list) and len(body) > MAX_EVENTS_PER_REQUEST:
        raise errors.PayloadTooLarge(
            f"{len(body)} events in one request; send at most {MAX_EVENTS_PER_REQUEST} per request",
            "events",
        )
    return body


def intake_endpoint(operations: Operations, auth: AuthSettings) -> object:
    """The handler for `POST /e/{event_key}`: `{"ids": [...], "status": 200}`.

    A rejected request stores nothing: `{"ids": [], "status": 400, "error": ..., "field": ...}`.
    """

    async def send_events(request: Request) -> JSONResponse:
        try:
            check_event_key(auth, request.path_params["event_key"])
            body = bounded_batch(await read_json(request))
            ids = await run_in_threadpool(operations.send, body)
        except errors.Unauthorized as exc:
            return JSONResponse({"ids": [], "status": 401, "error": str(exc)}, status_code=401)
        except errors.InvalidInput as exc:
            status = 413 if isinstance(exc, errors.PayloadTooLarge) else 400
            body = {"ids": [], "status": status, "error": str(exc), "field": exc.field}
            return JSONResponse(body, status_code=status)
        return JSONResponse({"ids": ids, "status": 200})

    return send_events

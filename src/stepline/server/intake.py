"""Event intake, Inngest-compatible: `POST /e/{event_key}` with one event or a list."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_event_key
from stepline.server.body import read_json


def intake_endpoint(operations: Operations, auth: AuthSettings) -> object:
    """The handler for `POST /e/{event_key}`: `{"ids": [...], "status": 200}`.

    A rejected request stores nothing: `{"ids": [], "status": 400, "error": ..., "field": ...}`.
    """

    async def send_events(request: Request) -> JSONResponse:
        try:
            check_event_key(auth, request.path_params["event_key"])
            body = await read_json(request)
            ids = await run_in_threadpool(operations.send, body)
        except errors.Unauthorized as exc:
            return JSONResponse({"ids": [], "status": 401, "error": str(exc)}, status_code=401)
        except errors.InvalidInput as exc:
            status = 413 if isinstance(exc, errors.PayloadTooLarge) else 400
            body = {"ids": [], "status": status, "error": str(exc), "field": exc.field}
            return JSONResponse(body, status_code=status)
        return JSONResponse({"ids": ids, "status": 200})

    return send_events

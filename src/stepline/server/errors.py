"""Map Stepline errors to HTTP statuses and one consistent JSON error body.

A client sees the message of a 4xx error; a 5xx error's text (which may come from the
database driver: SQL, constraint names, hosts) goes to the server's log instead.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stepline import errors
from stepline.server.templating import page
from stepline.server.throttle import TooManyFailures

logger = logging.getLogger("stepline.server")

STATUS: dict[type[errors.SteplineError], int] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    TooManyFailures: 429,
    errors.StoreUnavailable: 503,
}
UNAVAILABLE = "the database is unavailable; try again shortly"
INTERNAL = "internal error; details are in the server log"


def public_error(exc: errors.SteplineError) -> tuple[int, str]:
    """The HTTP status for `exc` and the message the client may see; logs server errors."""
    status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 500)
    if status == 503:
        logger.warning("%s: %s", type(exc).__name__, exc)
        return status, UNAVAILABLE
    if status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc, exc_info=exc)
        return status, INTERNAL
    return status, str(exc)


def retry_headers(exc: Exception) -> dict[str, str]:
    """`Retry-After` for a throttled request; nothing otherwise."""
    if isinstance(exc, TooManyFailures):
        return {"retry-after": str(exc.retry_after)}
    return {}


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    run_id: str | None = None,
) -> JSONResponse:
    """`{"error": message, "status": status, "field": field, "run_id": ...}` with that status.

    `run_id` names the run in the way of a 409 (a busy singleton's active run).
    """
    body: dict[str, object] = {"error": message, "status": status}
    if field is not None:
        body["field"] = field
    if run_id is not None:
        body["run_id"] = run_id
    return JSONResponse(body, status_code=status, headers=headers)


def refusal(path: str, accept: str, status: int, message: str) -> Response:
    """An error answered outside the handlers: intake's shape, JSON, or a page for browsers.

    `/e/` answers in intake's shape, `/v1/` and clients not asking for HTML get JSON.
    """
    if path.startswith("/e/"):
        return JSONResponse({"ids": [], "status": status, "error": message}, status_code=status)
    if path.startswith("/v1/") or "text/html" not in accept:
        return error_response(status, message)
    context = {"title": f"Error {status}", "nav": "", "signed_in": False, "status": status}
    return page("error.html", {**context, "message": message}, status=status)


async def handle_stepline_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler for every `SteplineError`."""
    assert isinstance(exc, errors.SteplineError)
    status, message = public_error(exc)
    field = exc.field if isinstance(exc, errors.InvalidInput) else None
    run_id = exc.run_id if isinstance(exc, errors.Conflict) else None
    return error_response(status, message, field, retry_headers(exc), run_id)

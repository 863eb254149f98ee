"""Map Stepline errors to HTTP statuses and one consistent JSON error body."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors

STATUS: dict[type[errors.SteplineError], int] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.StoreUnavailable: 503,
}


def error_response(status: int, message: str, field: str | None = None) -> JSONResponse:
    """`{"error": message, "status": status, "field": field}` with that HTTP status."""
    body: dict[str, object] = {"error": message, "status": status}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status)


async def handle_stepline_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette exception handler for every `SteplineError`."""
    assert isinstance(exc, errors.SteplineError)
    for error_type, status in STATUS.items():
        if isinstance(exc, error_type):
            if isinstance(exc, errors.InvalidInput):
                return error_response(status, str(exc), exc.field)
            return error_response(status, str(exc))
    return error_response(500, str(exc))

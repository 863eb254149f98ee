"""Read an HTML form post (`application/x-www-form-urlencoded`), size-limited; JSON typed in."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from stepline import errors
from stepline.server.body import MAX_BODY_BYTES, parse_json

FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request, *, limit: int = MAX_BODY_BYTES) -> dict[str, str]:
    """The posted fields (the last value of a repeated name wins).

    Raises:
        PayloadTooLarge: The body is larger than `limit` bytes.
        InvalidInput: The body is not a URL-encoded form.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise errors.InvalidInput(f"expected a form post ({FORM_TYPE})", "body")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"form is larger than {limit} bytes", "body")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode()
    except UnicodeDecodeError:
        raise errors.InvalidInput("form is not UTF-8", "body") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def parse_payload(text: str, field: str) -> dict[str, Any]:
    """A JSON object typed into a form; blank means `{}`.

    Raises:
        InvalidInput: Not JSON, nested too deeply, or not an object.
    """
    if not text.strip():
        return {}
    value = parse_json(text, field)
    if not isinstance(value, dict):
        raise errors.InvalidInput('must be a JSON object, like {"key": "value"}', field)
    return value

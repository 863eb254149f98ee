"""Read a JSON request body with a size limit."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from stepline import errors

MAX_BODY_BYTES = 3 * 1024 * 1024


async def read_json(request: Request, *, limit: int = MAX_BODY_BYTES, required: bool = True) -> Any:
    """The parsed body; `PayloadTooLarge` past `limit` bytes, `InvalidInput` if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes", "body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise errors.InvalidInput("request body is empty; expected JSON", "body")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"request body is not valid JSON: {exc}", "body") from None

"""Read a JSON request body with limits on its size and on how deeply it nests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from stepline import errors
from stepline._checks import too_deep

MAX_BODY_BYTES = 3 * 1024 * 1024
# Arrays and objects inside one another, the top level counting as 1. Deeper values would hit
# Python's recursion limit somewhere downstream (encoding, CEL, templates) and answer 500.
MAX_JSON_DEPTH = 100
# Larger bodies are parsed in the thread pool, so that they do not stall other requests.
INLINE_PARSE_BYTES = 64 * 1024


def _located(field: str, path: Sequence[str | int]) -> str:
    """`field` and `path` up to its first key: `body[0].data`, `body.data`, `payload[1][0]`."""
    located = field
    for step in path[:2]:
        if isinstance(step, str):
            return f"{located}.{step}"
        located += f"[{step}]"
    return located


def parse_json(text: str | bytes, field: str) -> Any:
    """JSON text as a value.

    Raises:
        InvalidInput: Not JSON, or arrays and objects nested deeper than `MAX_JSON_DEPTH`; the
            field is `field`, followed by where the nesting goes too deep.
    """
    deep = f"is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects"
    try:
        value = json.loads(text)
    except RecursionError:
        raise errors.InvalidInput(deep, field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"not valid JSON: {exc}", field) from None
    path = too_deep(value, MAX_JSON_DEPTH)
    if path is not None:
        raise errors.InvalidInput(deep, _located(field, path))
    return value


def declared_small(request: Request) -> bool:
    """Whether the request declares a body of at most `INLINE_PARSE_BYTES` (`Content-Length`).

    The server buffers about that much of any request anyway, so reading such a body before
    checking the request's credentials costs nothing more.
    """
    declared = request.headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) <= INLINE_PARSE_BYTES


async def read_body(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body; `PayloadTooLarge` past `limit` bytes (declared or sent)."""
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
    return b"".join(chunks)


def parse_body(raw: bytes, *, required: bool = True, absent: Any = None) -> Any:
    """A raw body as JSON: `InvalidInput` if not JSON, or if empty when `required`.

    An empty body is `absent` when not `required` (a JSON `null` is not empty).
    """
    if not raw.strip():
        if required:
            raise errors.InvalidInput("request body is empty; expected JSON", "body")
        return absent
    return parse_json(raw, "body")


async def read_json(
    request: Request, *, limit: int = MAX_BODY_BYTES, required: bool = True, absent: Any = None
) -> Any:
    """The parsed body; `PayloadTooLarge` past `limit` bytes, `InvalidInput` if not JSON.

    An empty body is `InvalidInput` when `required`, else `absent` (which a JSON `null` is not).
    """
    raw = await read_body(request, limit=limit)
    if len(raw) <= INLINE_PARSE_BYTES:
        return parse_body(raw, required=required, absent=absent)
    return await run_in_threadpool(parse_body, raw, required=required, absent=absent)

"""Event intake, Inngest-compatible: `POST /e/{event_key}` with one event or a list.

Events are taken as Inngest's event API takes them (`events.INTAKE_EVENTS`: up to 3 MiB each,
the JS SDK's `meta` ignored, `data._inngest` dropped), with internal ids derived from the SDKs'
`X-Inngest-Event-Id-Seed` header so that a retried request is stored once. A request is stored
whole or not at all: a bad event refuses it with no ids, where Inngest keeps the events before
the bad one; both SDKs treat either answer as a failed send.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.events import INTAKE_EVENTS
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_event_key
from stepline.server.body import declared_small, parse_body, read_body
from stepline.server.metrics import count_events
from stepline.server.rate_limit import RateLimited, key_bucket

# Inngest's cap. One request is one transaction; a bounded one keeps other intake flowing.
MAX_EVENTS_PER_REQUEST = 5000
# Inngest's server streams a request and bounds only each event (3 MiB) and their number; this
# server parses a request whole, so it bounds it: room for inngest-py's 8 events of 1 MiB
# twice over, or five events of the 3 MiB maximum.
MAX_INTAKE_BODY_BYTES = 16 * 1024 * 1024
SEED_HEADER = "x-inngest-event-id-seed"


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

    The events record the name of their key (`sent_by`), as the runs they start do.

    A rejected request stores nothing: `{"ids": [], "status": 400, "error": ..., "field": ...}`.
    The key is checked (a read of the store) before the body is parsed; a body the client
    declares small (`body.declared_small`, the usual event) is read first, so that checking the
    key, parsing and storing take one trip to the thread pool instead of two.
    """

    def admit(key: str) -> str | None:
        """The key's name, once the key is valid and within its rate limit."""
        sent_by = check_event_key(auth, key)
        if auth.intake_limit is not None:
            auth.intake_limit.take(key_bucket(key), sent_by or "(open intake)")
        return sent_by

    def store(raw: bytes, sent_by: str | None, request: Request) -> list[str]:
        return operations.send(
            bounded_batch(parse_body(raw)),
            rules=INTAKE_EVENTS,
            seed=request.headers.get(SEED_HEADER),
            sent_by=sent_by,
            traceparent=request.headers.get("traceparent"),
        )

    def admit_and_store(key: str, raw: bytes, request: Request) -> list[str]:
        return store(raw, admit(key), request)

    async def send_events(request: Request) -> JSONResponse:
        try:
            key = request.path_params["event_key"]
            if declared_small(request):
                raw = await read_body(request, limit=MAX_INTAKE_BODY_BYTES)
                ids = await run_in_threadpool(admit_and_store, key, raw, request)
            else:
                sent_by = await run_in_threadpool(admit, key)
                raw = await read_body(request, limit=MAX_INTAKE_BODY_BYTES)
                ids = await run_in_threadpool(store, raw, sent_by, request)
        except errors.Unauthorized as exc:
            return JSONResponse({"ids": [], "status": 401, "error": str(exc)}, status_code=401)
        except RateLimited as exc:
            body = {"ids": [], "status": 429, "error": str(exc)}
            headers = {"Retry-After": str(exc.retry_after)}
            return JSONResponse(body, status_code=429, headers=headers)
        except errors.InvalidInput as exc:
            status = 413 if isinstance(exc, errors.PayloadTooLarge) else 400
            body = {"ids": [], "status": status, "error": str(exc), "field": exc.field}
            return JSONResponse(body, status_code=status)
        count_events(request, "intake", len(ids))
        return JSONResponse({"ids": ids, "status": 200})

    return send_events

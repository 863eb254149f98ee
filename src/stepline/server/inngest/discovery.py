"""Readiness and dev-server discovery (protocol §13): `POST /v0/connect/start` and `GET /dev`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings


async def connect_start(request: Request) -> Response:
    """POST /v0/connect/start: 200 with no body once the server answers.

    inngest-py's dev-server helper polls it for readiness. Connect workers, which expect a
    protobuf answer here, are not supported.
    """
    return Response(status_code=200)


def dev_info_endpoint(
    operations: Operations, auth: AuthSettings
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The handler for GET /dev: what the Inngest dev server says of itself, for Stepline.

    JS SDKs in inferred dev mode take any JSON answer for "a dev server is here". Keys are
    required once the server has an API token or a signing key, as Go's `--require-keys`;
    event keys are missing when there is neither an `--event-key` nor a named key unrevoked.
    """
    require_keys = not auth.open or auth.signing_keys is not None

    def has_named_key() -> bool:
        return any(not key.revoked for key in operations.store.list_credentials("key"))

    async def dev_info(request: Request) -> JSONResponse:
        functions = await run_in_threadpool(operations.list_functions)
        has_key = bool(auth.event_keys) or await run_in_threadpool(has_named_key)
        body: dict[str, Any] = {
            "version": metadata.version("stepline"),
            "authed": False,
            "startOpts": {"autodiscover": False, "poll": False, "requireKeys": require_keys},
            "functions": [{"id": f.id, "name": f.name, "slug": f.id} for f in functions],
            "handlers": [],
            "isSingleNodeService": True,
            "isMissingSigningKey": require_keys and auth.signing_keys is None,
            "isMissingEventKeys": require_keys and not has_key,
            "features": {},
        }
        return JSONResponse(body)

    return dev_info

"""`POST /fn/register`: an SDK app registers (syncs) its functions (protocol §5.2).

Both SDKs read the answer's JSON: the JS SDK answers its sync PUT with the `status` field, so
every answer carries one. A rejected sync stores nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.events import new_id
from stepline.engine.inngest.sync import AppSyncer
from stepline.server.body import read_json


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "status": status, "error": message}, status_code=status)


def register_endpoint(syncer: AppSyncer) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The handler for `POST /fn/register`."""

    async def register(request: Request) -> JSONResponse:
        expected = request.headers.get("x-inngest-expected-server-kind")
        if expected and expected != syncer.kind:
            return _refused(400, f"Expected server kind {expected}, got {syncer.kind}")
        try:
            body = await read_json(request)
            synced = await run_in_threadpool(syncer.register, body)
        except errors.InvalidInput as exc:
            return _refused(413 if isinstance(exc, errors.PayloadTooLarge) else 400, str(exc))
        except errors.Conflict as exc:
            return _refused(409, str(exc))
        return JSONResponse(
            {
                "ok": True,
                "status": 200,
                "modified": synced.modified,
                "app_id": synced.app_id,
                "sync_id": new_id(),
            }
        )

    return register

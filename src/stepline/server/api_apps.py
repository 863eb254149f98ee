"""REST API v1 app handlers: list the apps, and sync an SDK app by its serve URL."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from stepline.engine import apps
from stepline.engine.access import Principal
from stepline.engine.inngest.sync import AppSyncer, SyncFailed
from stepline.engine.operations import Operations
from stepline.server.errors import error_response
from stepline.server.models import SyncAppBody

BAD_GATEWAY = 502


class AppHandlers:
    """The `/v1/apps` handlers."""

    ops: Operations
    syncer: AppSyncer

    async def list_apps(self) -> JSONResponse:
        """GET /v1/apps: every app, by id, with its function ids."""
        return JSONResponse({"data": await run_in_threadpool(apps.app_views, self.ops.store)})

    async def sync_app(self, body: SyncAppBody, principal: Principal) -> JSONResponse:
        """POST /v1/apps: sync the SDK app served at `url`; the app as now stored (audited).

        502 when the app could not be reached, refused, or registered somewhere else.
        """
        try:
            app = await apps.sync_by_url(self.syncer, self.ops.store, body.url)
        except SyncFailed as exc:
            return error_response(BAD_GATEWAY, str(exc))
        await run_in_threadpool(
            lambda: self.ops.audit.record("app.sync", actor=principal.name, target=body.url)
        )
        return JSONResponse({"data": await run_in_threadpool(apps.app_view, self.ops.store, app)})

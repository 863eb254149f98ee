"""REST API v1 run handlers: list, fetch, cancel, replay (one or by filter), rerun, live streams.

`GET` and `DELETE /v1/runs/{id}` answer Inngest clients as Inngest does (`server.inngest.rest`);
`DELETE /v0/runs/{id}` is Inngest's legacy cancel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stepline import errors
from stepline.engine import views
from stepline.engine.access import Principal
from stepline.engine.operations import Operations
from stepline.engine.outputs import Outputs
from stepline.server import scope, sse
from stepline.server.auth import AuthSettings
from stepline.server.inngest import rest
from stepline.server.inngest.reads import parse_run_id
from stepline.server.inngest.routes import check_sdk_auth
from stepline.server.models import BulkSelection, ReasonBody, RerunBody, RunQuery

RUN_EVENT = "run"
RUNS_EVENT = "runs"


def _dumps(value: Any) -> str:
    """Compact JSON on one line: one SSE `data:` line."""
    return json.dumps(value, separators=(",", ":"))


_Selection = TypeVar("_Selection", RunQuery, BulkSelection)


def _scoped(selection: _Selection, principal: Principal) -> _Selection:
    """The selection narrowed to the function a limited token may see (see `server.scope`)."""
    function_id = scope.listed_function(principal, selection.function_id)
    if function_id == selection.function_id:
        return selection
    return selection.model_copy(update={"function_id": function_id})


class RunHandlers:
    """The `/v1/runs` handlers."""

    auth: AuthSettings

    def __init__(self, operations: Operations) -> None:
        self.ops = operations

    async def _data(self, call: Callable[[], Any], status: int = 200) -> JSONResponse:
        """`{"data": call()}`, the call made in the thread pool (the store blocks)."""
        return JSONResponse({"data": await run_in_threadpool(call)}, status_code=status)

    async def _shaped(self, call: Callable[[], Any], inngest: bool) -> JSONResponse:
        """`call()` as Inngest's answer (with `metadata`) or Stepline's (`{"data": ...}`)."""
        data = await run_in_threadpool(call)
        return JSONResponse(rest.payload(data) if inngest else {"data": data})

    def _page(self, query: RunQuery) -> dict[str, Any]:
        runs, cursor = self.ops.runs_page(query.run_filter(before=query.before, limit=query.limit))
        now, waiting = self.ops.clock.now(), self.ops.waiting(runs)
        data = [views.run_view(r, now, waiting.get(r.id)) for r in runs]
        return {"data": data, "next_cursor": cursor}

    async def list_runs(self, query: RunQuery, principal: Principal) -> JSONResponse:
        """GET /v1/runs: runs newest first, filtered, keyset-paged by `before`."""
        return JSONResponse(await run_in_threadpool(self._page, _scoped(query, principal)))

    async def get_run(self, run_id: str, inngest: bool, principal: Principal) -> JSONResponse:
        """GET /v1/runs/{id}: a run with steps, attempts, logs, progress and counters.

        Inngest clients get its summary; an id that is no ULID is 400 to them, as Inngest says.
        """
        if inngest:
            run_id = parse_run_id(run_id, "run_id")
            return await self._shaped(
                lambda: rest.run_view(
                    scope.visible_run(self.ops, principal, run_id), Outputs(self.ops.store)
                ),
                True,
            )

        def detail() -> dict[str, Any]:
            scope.visible_run(self.ops, principal, run_id)
            return views.run_detail_view(self.ops.run_detail(run_id), self.ops.clock.now())

        return await self._data(detail)

    async def cancel_run(
        self,
        run_id: str,
        principal: Principal,
        inngest: bool = False,
        body: ReasonBody | None = None,
    ) -> Response:
        """POST /v1/runs/{id}/cancel: cancel a run (a no-op on an ended run); the run.

        The run records the token that asked, and `{"reason"}` if given. `DELETE
        /v1/runs/{id}` too (no body), which answers Inngest clients with an empty 200.
        """
        reason = body.reason if body is not None else None
        if inngest:
            run_id = parse_run_id(run_id, "run_id")

        def cancel() -> dict[str, Any]:
            scope.visible_run(self.ops, principal, run_id)
            return views.run_view(self.ops.cancel(run_id, by=principal.name, reason=reason))

        cancelled = await run_in_threadpool(cancel)
        return rest.cancelled() if inngest else JSONResponse({"data": cancelled})

    async def cancel_run_v0(self, request: Request) -> Response:
        """DELETE /v0/runs/{id}: Inngest's legacy cancel, as its dev server answers it.

        204; 404 for an unknown run, 409 for a completed or failed one, 400 for no ULID.
        """
        check_sdk_auth(self.auth, request)
        run_id = parse_run_id(request.path_params["run_id"], "run_id")
        run = await run_in_threadpool(lambda: self.ops.cancel(run_id, by="api"))
        if run.status in ("COMPLETED", "FAILED"):
            raise errors.Conflict("This function has already completed")
        return Response(status_code=204)

    async def replay_run(
        self, run_id: str, body: ReasonBody | None, principal: Principal
    ) -> JSONResponse:
        """POST /v1/runs/{id}/replay: start a new run with the same trigger (and `reason`)."""
        reason = body.reason if body is not None else None

        def replay() -> dict[str, str]:
            scope.visible_run(self.ops, principal, run_id)
            return {"run_id": self.ops.replay(run_id, by=principal.name, reason=reason)}

        return await self._data(replay, status=201)

    async def rerun_run(
        self, run_id: str, body: RerunBody | None, principal: Principal
    ) -> JSONResponse:
        """POST /v1/runs/{id}/rerun: a new run from `from_step`, with `data` if given."""
        body = body or RerunBody()

        def rerun() -> dict[str, str]:
            scope.visible_run(self.ops, principal, run_id)
            return {
                "run_id": self.ops.rerun(
                    run_id,
                    from_step=body.from_step,
                    data=body.data,
                    dry_run=body.dry_run,
                    reason=body.reason,
                    by=principal.name,
                )
            }

        return await self._data(rerun, status=201)

    async def cancel_runs(self, body: BulkSelection, principal: Principal) -> JSONResponse:
        """POST /v1/runs/cancel: cancel every active run matching the filter (or preview it)."""
        body = _scoped(body, principal)
        if body.preview:
            return await self._data(lambda: self._preview(body, active_only=True))
        return await self._data(
            lambda: {
                "affected": self.ops.cancel_matching(
                    body.run_filter(), by=principal.name, reason=body.reason
                )
            }
        )

    async def replay_runs(self, body: BulkSelection, principal: Principal) -> JSONResponse:
        """POST /v1/runs/replay: replay every run matching the filter (or preview it)."""
        body = _scoped(body, principal)
        if body.preview:
            return await self._data(lambda: self._preview(body, active_only=False))
        return await self._data(
            lambda: {
                "affected": self.ops.replay_matching(
                    body.run_filter(), by=principal.name, reason=body.reason
                )
            },
            status=201,
        )

    def _preview(self, body: BulkSelection, *, active_only: bool) -> dict[str, Any]:
        count, sample = self.ops.preview_matching(body.run_filter(), active_only=active_only)
        return {
            "affected": 0,
            "preview": True,
            "count": count,
            "sample": [views.run_view(run) for run in sample],
        }

    async def run_stream(self, run_id: str, principal: Principal) -> Response:
        """GET /v1/runs/{id}/stream: SSE `run` with the run whenever it changes, then `end`."""
        # NotFound → 404, not a stream
        await run_in_threadpool(scope.visible_run, self.ops, principal, run_id)

        def poll() -> sse.Snapshot:
            detail = self.ops.run_detail(run_id)
            return sse.Snapshot(
                key=repr(detail),
                render=lambda: {
                    RUN_EVENT: _dumps(views.run_detail_view(detail, self.ops.clock.now()))
                },
                final=detail.run.ended,
            )

        return sse.stream(poll, subject=("api-run", run_id))

    async def runs_stream(self, query: RunQuery, principal: Principal) -> Response:
        """GET /v1/runs/stream: SSE `runs` with the page (as `GET /v1/runs`) when it changes."""
        query = _scoped(query, principal)
        run_filter = query.run_filter(before=query.before, limit=query.limit)
        await run_in_threadpool(self.ops.list_runs, run_filter)  # an unknown cursor → 404 here

        def poll() -> sse.Snapshot:
            runs, cursor = self.ops.runs_page(run_filter)
            now = self.ops.clock.now()
            page = {"data": [views.run_view(r, now) for r in runs], "next_cursor": cursor}
            return sse.Snapshot(key=repr(runs), render=lambda: {RUNS_EVENT: _dumps(page)})

        return sse.stream(poll, subject=("api-runs", repr(run_filter)))

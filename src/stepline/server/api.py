"""REST API v1: events, runs, functions; every payload wrapped as `{"data": ...}`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine import views
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_token
from stepline.server.body import read_json
from stepline.store.base import RunFilter, RunStatus, TriggerKind

Handler = Callable[[Request], Awaitable[JSONResponse]]
MAX_LIMIT = 500


def _limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.InvalidInput(f"must be an integer from 1 to {MAX_LIMIT}", "limit")
    return int(raw)


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise errors.InvalidInput(f"must be one of {', '.join(allowed)}", name)
    return value


def run_filter(request: Request) -> RunFilter:
    """Parse `function_id`, `status`, `trigger_kind`, `event_id`, `before`, `limit`."""
    unknown = set(request.query_params) - {
        "function_id",
        "status",
        "trigger_kind",
        "event_id",
        "before",
        "limit",
    }
    if unknown:
        raise errors.InvalidInput(
            f"unknown query parameter(s) {sorted(unknown)}", sorted(unknown)[0]
        )
    params = request.query_params
    return RunFilter(
        function_id=params.get("function_id"),
        status=_choice(request, "status", get_args(RunStatus)),  # type: ignore[arg-type]
        trigger_kind=_choice(request, "trigger_kind", get_args(TriggerKind)),  # type: ignore[arg-type]
        event_id=params.get("event_id"),
        before=params.get("before"),
        limit=_limit(request),
    )


class Api:
    """The `/v1` handlers over one `Operations`."""

    def __init__(self, operations: Operations, auth: AuthSettings) -> None:
        self.ops = operations
        self.auth = auth

    async def _data(
        self, request: Request, call: Callable[[], Any], status: int = 200
    ) -> JSONResponse:
        check_token(self.auth, request)
        return JSONResponse({"data": await run_in_threadpool(call)}, status_code=status)

    async def list_events(self, request: Request) -> JSONResponse:
        """GET /v1/events: events newest first, filtered by `name`."""
        name = request.query_params.get("name")
        limit = _limit(request)
        before = request.query_params.get("before")
        return await self._data(
            request,
            lambda: [views.event_view(e) for e in self.ops.store.list_events(name, limit, before)],
        )

    async def get_event(self, request: Request) -> JSONResponse:
        """GET /v1/events/{id}: one event."""
        event_id = request.path_params["event_id"]
        return await self._data(request, lambda: views.event_view(self.ops.get_event(event_id)))

    async def send_events(self, request: Request) -> JSONResponse:
        """POST /v1/events: send events with the API token."""
        check_token(self.auth, request)
        body = await read_json(request)
        return await self._data(request, lambda: {"ids": self.ops.send(body)})

    async def event_runs(self, request: Request) -> JSONResponse:
        """GET /v1/events/{id}/runs: the runs an event started."""
        event_id = request.path_params["event_id"]
        return await self._data(
            request, lambda: [views.run_view(r) for r in self.ops.runs_for_event(event_id)]
        )

    async def list_runs(self, request: Request) -> JSONResponse:
        """GET /v1/runs: runs newest first, filtered and paged."""
        query = run_filter(request)
        return await self._data(
            request, lambda: [views.run_view(r) for r in self.ops.list_runs(query)]
        )

    async def get_run(self, request: Request) -> JSONResponse:
        """GET /v1/runs/{id}: a run with steps, attempts, logs, progress and counters."""
        run_id = request.path_params["run_id"]
        return await self._data(request, lambda: views.run_detail_view(self.ops.run_detail(run_id)))

    async def cancel_run(self, request: Request) -> JSONResponse:
        """POST /v1/runs/{id}/cancel: cancel a run."""
        run_id = request.path_params["run_id"]
        return await self._data(request, lambda: views.run_view(self.ops.cancel(run_id)))

    async def replay_run(self, request: Request) -> JSONResponse:
        """POST /v1/runs/{id}/replay: start a new run with the same trigger."""
        run_id = request.path_params["run_id"]
        return await self._data(request, lambda: {"run_id": self.ops.replay(run_id)}, status=201)

    async def list_functions(self, request: Request) -> JSONResponse:
        """GET /v1/functions: the registered functions."""
        return await self._data(
            request, lambda: [views.function_view(f) for f in self.ops.list_functions()]
        )

    async def list_workers(self, request: Request) -> JSONResponse:
        """GET /v1/workers: workers with capacity, runs in flight and liveness."""
        return await self._data(
            request, lambda: [views.worker_view(w) for w in self.ops.store.list_workers()]
        )

    async def invoke_function(self, request: Request) -> JSONResponse:
        """POST /v1/functions/{id}/invoke: start a run with `{"data": {...}}`."""
        check_token(self.auth, request)
        function_id = request.path_params["function_id"]
        body = await read_json(request, required=False)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise errors.InvalidInput('must be a JSON object like {"data": {...}}', "body")
        unknown = set(body) - {"data"}
        if unknown:
            raise errors.InvalidInput(f"unknown field(s) {sorted(unknown)}", "body")
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            raise errors.InvalidInput("must be a JSON object", "data")
        return await self._data(
            request,
            lambda: {"run_id": self.ops.invoke(function_id, data, by="api")},
            status=201,
        )

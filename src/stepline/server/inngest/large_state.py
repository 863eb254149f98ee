"""A run's state for SDKs told to fetch it (`use_api`, protocol §7.3): its events and memo map.

`GET /v0/runs/{run_id}/batch` answers the run's trigger events and `GET /v0/runs/{run_id}/actions`
the `steps` map the call request would have held. Errors are `{"error": ..., "status": ...}`:
400 for a malformed run id, 404 for an unknown run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from stepline.engine.inngest.memo import memo
from stepline.engine.operations import Operations
from stepline.engine.outputs import Outputs
from stepline.server.inngest.reads import parse_run_id, run_steps, sdk_events
from stepline.store.base import RunRecord


class LargeState:
    """The `/v0/runs/{run_id}/...` handlers over one `Operations`."""

    def __init__(self, operations: Operations) -> None:
        self.ops = operations
        self._outputs = Outputs(operations.store)

    async def batch(self, request: Request) -> Response:
        """GET /v0/runs/{run_id}/batch: the run's trigger events, a JSON array."""
        return await self._answer(request, lambda run: sdk_events(self.ops.store, run))

    async def actions(self, request: Request) -> Response:
        """GET /v0/runs/{run_id}/actions: the run's memo map (hashed step id → result)."""
        return await self._answer(
            request, lambda run: memo(run_steps(self.ops.store, run), self._outputs)[0]
        )

    async def _answer(self, request: Request, read: Callable[[RunRecord], Any]) -> Response:
        """`read(run)` as JSON, read and encoded in the thread pool (state may be megabytes)."""
        run_id = parse_run_id(request.path_params["run_id"], "run_id")

        def body() -> bytes:
            value = read(self.ops.store.get_run(run_id))
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

        return Response(await run_in_threadpool(body), media_type="application/json")

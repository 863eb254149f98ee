"""Downloads of outputs: `GET /v1/runs/{id}/output` and `/v1/runs/{id}/steps/{hash}/output`.

The API shows a large output (kept as a blob, see `engine.outputs`) as its size and one of
these URLs; they serve any output, large or not, as a file of JSON, streamed a chunk at a time
(`engine.downloads`). The dashboard serves the same files at `/runs/{id}/output` and
`/runs/{id}/steps/{hash}/output`, for its signed-in users (`Dashboard.output`).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from stepline.engine.access import Principal
from stepline.engine.downloads import OutputFile, output_file
from stepline.engine.operations import Operations
from stepline.server import scope


def download(found: OutputFile) -> Response:
    """The output as an `application/json` attachment with its length, streamed.

    The chunks are read in the thread pool (the store blocks).
    """
    return StreamingResponse(
        found.chunks,
        media_type="application/json",
        headers={
            "content-length": str(found.size),
            "content-disposition": f'attachment; filename="{found.filename}"',
        },
    )


class OutputHandlers:
    """The download handlers of the API."""

    ops: Operations

    async def run_output(self, run_id: str, principal: Principal) -> Response:
        """GET /v1/runs/{id}/output: the run's output (its function's result) as a file."""
        return await self._download(run_id, None, principal)

    async def step_output(self, run_id: str, step_hash: str, principal: Principal) -> Response:
        """GET /v1/runs/{id}/steps/{hash}/output: a step's output as a file."""
        return await self._download(run_id, step_hash, principal)

    async def _download(self, run_id: str, step_hash: str | None, principal: Principal) -> Response:
        def find() -> OutputFile:
            run = scope.visible_run(self.ops, principal, run_id)
            return output_file(self.ops.store, run, step_hash)

        return download(await run_in_threadpool(find))

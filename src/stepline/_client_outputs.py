"""`Client`'s output downloads: a run's or a step's output as its JSON bytes, streamed.

The API shows a large output (kept as a blob, see `engine.outputs`) as `output_blob`, its
size and download URL, with `output` null; these methods read any output, large or not: over
HTTP from `GET /v1/runs/{id}[/steps/{hash}]/output`, on a local client from the database.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import httpx

from stepline import errors
from stepline.engine.downloads import output_file
from stepline.engine.operations import Operations


class OutputBackend(Protocol):
    """What `OutputMethods` needs of a transport."""

    def download(self, run_id: str, step_hash: str | None, file: BinaryIO) -> int: ...


def output_path(run_id: str, step_hash: str | None) -> str:
    """The API path serving the output of a run (`step_hash` None) or of its step."""
    step = "" if step_hash is None else f"/steps/{step_hash}"
    return f"/v1/runs/{run_id}{step}/output"


class HttpOutputs:
    """Downloads over the REST API.

    `refusal(response)` is the error for an error answer (read whole); `unreachable(exc)` the
    error for no answer.
    """

    def __init__(
        self,
        http: httpx.Client,
        refusal: Callable[[httpx.Response], errors.SteplineError],
        unreachable: Callable[[httpx.HTTPError], errors.SteplineError],
    ) -> None:
        self._http = http
        self._refusal = refusal
        self._unreachable = unreachable

    def download(self, run_id: str, step_hash: str | None, file: BinaryIO) -> int:
        written = 0
        try:
            with self._http.stream("GET", output_path(run_id, step_hash)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refusal(response)
                for chunk in response.iter_bytes():
                    file.write(chunk)
                    written += len(chunk)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return written


class LocalOutputs:
    """Downloads from the database, through the engine's operations."""

    def __init__(self, ops: Operations) -> None:
        self._ops = ops

    def download(self, run_id: str, step_hash: str | None, file: BinaryIO) -> int:
        store = self._ops.store
        found = output_file(store, store.get_run(run_id), step_hash)
        for chunk in found.chunks:
            file.write(chunk)
        return found.size


class _Client(Protocol):
    _outputs: OutputBackend

    def get_run(self, run_id: str) -> dict[str, Any]: ...


class OutputMethods:
    """`Client`'s methods for outputs, large or not."""

    def download_output(
        self: _Client, run_id: str, file: BinaryIO, *, step: str | None = None
    ) -> int:
        """Write the output of a run, or of its step `step` (an id or a hash), to `file`.

        The bytes written are the output's JSON exactly, streamed (a large output is never
        whole in memory); returns how many. A step of a parallel branch is a step of the
        branch's run (see the run's `children`).

        Raises:
            NotFound: No such run or step, or it has no output (it has not completed, or it
                failed: its error is in the run).
        """
        step_hash = None if step is None else _step_hash(self.get_run(run_id), step)
        return self._outputs.download(run_id, step_hash, file)

    def output(self: _Client, run_id: str, *, step: str | None = None) -> Any:
        """The output of a run, or of its step `step` (an id or a hash), decoded.

        Also a large one, which `get_run` shows as `output_blob` only. Raises as
        `download_output`.
        """
        buffer = io.BytesIO()
        OutputMethods.download_output(self, run_id, buffer, step=step)
        return json.loads(buffer.getvalue())


def _step_hash(run: dict[str, Any], step: str) -> str:
    """The hash of the run's step `step`, named by its id or its hash."""
    for key in ("id", "hash"):
        found = [s["hash"] for s in run["steps"] if s[key] == step]
        if found:
            return str(found[0])
    known = ", ".join(repr(s["id"]) for s in run["steps"]) or "none"
    raise errors.NotFound(f"run {run['id']} has no step {step!r} (its steps: {known})")

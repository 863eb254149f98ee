"""A run's or a step's output as a file: its JSON bytes, a chunk at a time.

What the download routes (`GET /v1/runs/{id}/output`, `.../steps/{hash}/output`, the
dashboard's) and `Client.download_output` serve. An output kept as a blob (`engine.outputs`)
is read from the blob store a chunk at a time, never whole; an inline one is its row's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from stepline import errors
from stepline.store.base import RunRecord, Store
from stepline.store.blobs import blob_ref

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_CHARS = 60  # of a step id in a file name


@dataclass(frozen=True, kw_only=True)
class OutputFile:
    """An output's JSON bytes: how many, a file name for them, and the bytes in chunks."""

    size: int
    filename: str
    chunks: Iterator[bytes]


def output_file(store: Store, run: RunRecord, step_hash: str | None = None) -> OutputFile:
    """The output of `run` (`step_hash` None) or of its step with that hash.

    A blob's first chunk is looked up here, so a missing one raises before any byte is sent.

    Raises:
        NotFound: The run has no such step, or it (or the step) has no output: it has not
            completed, or it failed (its error is in the run). Also a blob gone missing.
    """
    if step_hash is None:
        output, what, name = run.output, f"run {run.id}", f"{run.id}-output.json"
        if output is None:
            raise errors.NotFound(f"{what} has no output ({_run_state(run)})")
    else:
        step = next((s for s in store.get_steps(run.id) if s.hash == step_hash), None)
        if step is None:
            raise errors.NotFound(f"run {run.id} has no step with hash {step_hash!r}")
        output, what = step.output, f"step {step.id!r} of run {run.id}"
        name = f"{run.id}-{_UNSAFE.sub('-', step.id)[:_NAME_CHARS]}-output.json"
        if output is None:
            raise errors.NotFound(f"{what} has no output (it is {step.status})")
    ref = blob_ref(output)
    if ref is None:
        data = output.encode()
        return OutputFile(size=len(data), filename=name, chunks=iter((data,)))
    return OutputFile(size=ref.size, filename=name, chunks=store.blob_chunks(ref))


def _run_state(run: RunRecord) -> str:
    if run.status == "FAILED":
        return "it failed; its error is in the run"
    return f"it is {run.status}"

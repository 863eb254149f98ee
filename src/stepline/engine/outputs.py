"""Step and run outputs as stored: JSON inline, or a blob's reference when large.

An output (JSON text) up to `OutputLimits.inline_bytes` is stored in its row as it is; a larger
one goes to the store's blob store (`store/blobs.py`) and the row keeps the reference. Above
`OutputLimits.max_bytes` it is not stored at all: the step fails, not retried, with an error
naming the step and the size. Replays, SDK apps' call requests and the Inngest-compatible API
read outputs through `Outputs.text`/`value`, which fetch a blob's bytes; the REST API and the
dashboard show a blob's size and a download link instead (`views.output_fields`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stepline import errors
from stepline._sizes import format_size
from stepline.engine.clock import Clock, SystemClock
from stepline.store.blobs import BlobRef, BlobStore, blob_ref

DEFAULT_INLINE_BYTES = 256 * 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class OutputLimits:
    """How large outputs are kept.

    Attributes:
        inline_bytes: Outputs larger than this (256 KiB) go to the blob store.
        max_bytes: Outputs larger than this (64 MiB) fail their step, not retried.
    """

    inline_bytes: int = DEFAULT_INLINE_BYTES
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if not 0 < self.inline_bytes <= self.max_bytes:
            raise errors.ConfigurationError(
                f"the inline output limit ({format_size(self.inline_bytes)}) must be positive "
                f"and at most the output limit ({format_size(self.max_bytes)})"
            )


class Outputs:
    """Outputs between the engine and the store: offloaded when large, fetched when read."""

    def __init__(
        self, store: BlobStore, limits: OutputLimits | None = None, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.limits = limits or OutputLimits()
        self.clock = clock or SystemClock()  # a blob's write time (read only when one is written)

    def stored(self, step_id: str, text: str) -> str:
        """What to store for the output `text` of `step_id`: itself, or a blob's reference.

        Raises `StepOutputError` (not retried) when it is larger than `max_bytes`.
        """
        if len(text) * 4 <= self.limits.inline_bytes:  # no UTF-8 text is longer than that
            return text
        data = text.encode()
        if len(data) > self.limits.max_bytes:
            raise errors.StepOutputError(too_large(step_id, len(data), self.limits.max_bytes))
        if len(data) <= self.limits.inline_bytes:
            return text
        return self.store.put_blob(data, self.clock.now()).text()

    def text(self, output: str | None) -> str | None:
        """The JSON text of a stored output, read from the blob store if it is there."""
        ref = blob_ref(output)
        return output if ref is None else self.store.read_blob(ref).decode()

    def value(self, output: str | None) -> Any:
        """A stored output, decoded (None for no output)."""
        text = self.text(output)
        return None if text is None else json.loads(text)


def blob_link(run_id: str, step_hash: str | None, ref: BlobRef) -> dict[str, Any]:
    """What the API shows of an output kept as a blob: its size and where to download it."""
    path = f"/v1/runs/{run_id}" + ("" if step_hash is None else f"/steps/{step_hash}")
    return {"size": ref.size, "download_url": f"{path}/output"}


def too_large(step_id: str, size: int, limit: int) -> str:
    """The error message of an output over the limit."""
    who = (
        "the function's result" if step_id == FUNCTION_RESULT else f"the output of step {step_id!r}"
    )
    return (
        f"{who} is {format_size(size)} of JSON, over the limit of {format_size(limit)} "
        "(--max-output-size); return less, or store the data elsewhere and return where it is"
    )


FUNCTION_RESULT = "(function result)"
"""The name a run's own output goes by where a step id would be."""

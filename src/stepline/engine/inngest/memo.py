"""How an SDK app's steps are stored, and the memo map an SDK reads them back as.

Steps of a run executed over HTTP are stored like any other: `hash` is the SDK's hashed step
id, `id` its display name, `output` the step's raw result as JSON text and `error` the SDK's
error object as JSON text (`{name, message, stack, ...}`). The SDKs read them back wrapped
(protocol §7.5): a `step.run` or invoke result as `{"data": ...}`, a failure as
`{"error": ...}`, a sleep as `null`, a waited-for event raw (or `null` on timeout).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from stepline.engine.outputs import Outputs
from stepline.store.base import StepRecord

_DONE = ("completed", "failed")
_UNWRAPPED = ("sleep", "wait")  # their results are sent raw
_INTERNAL = ("parallel", "branch")  # in-process bookkeeping, never seen by an SDK
_EPOCH = datetime.fromtimestamp(0, UTC)


def sdk_error(stored: str | None) -> dict[str, Any]:
    """A stored error as the SDKs read it: `{name, message, stack}`."""
    error = json.loads(stored or "{}")
    if not isinstance(error, dict):
        error = {"message": str(error)}
    cause = error.get("cause")
    if isinstance(cause, dict) and cause.get("message"):
        error = cause  # an invoked run's failure: its own error, as the SDKs expect
    return {
        "name": str(error.get("name") or "Error"),
        "message": str(error.get("message") or ""),
        "stack": str(error.get("stack") or error.get("traceback") or ""),
    }


def memo_value(step: StepRecord, outputs: Outputs) -> Any:
    """What an SDK finds under the step's hash in `steps` (a large output read from its blob)."""
    if step.status == "failed":
        return {"error": sdk_error(step.error)}
    value = outputs.value(step.output)
    if step.kind in _UNWRAPPED:
        return value
    return {"data": value}


def finished(steps: Iterable[StepRecord]) -> list[StepRecord]:
    """The steps an SDK may replay, in the order they finished (the call's `ctx.stack`)."""
    done = [s for s in steps if s.status in _DONE and s.kind not in _INTERNAL]
    return sorted(done, key=lambda s: (s.ended_at or _EPOCH, s.position))


def memo(steps: Iterable[StepRecord], outputs: Outputs) -> tuple[dict[str, Any], list[str]]:
    """The call request's `steps` map and its stack of hashes in completion order."""
    done = finished(steps)
    return {step.hash: memo_value(step, outputs) for step in done}, [step.hash for step in done]

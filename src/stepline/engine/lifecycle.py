"""The system events announcing a run's end, shaped as Inngest's `inngest/function.*`.

`data` holds `function_id`, `run_id`, `event` (the first triggering event), `events`, and
`result` (completed) or `error` (failed: `{error, name, message, stack}`), plus
`_inngest.status`. A result kept as a blob (`engine/outputs.py`) is not copied into the event:
`result` is null and `result_blob` has its `size` and `download_url`.
`stepline/function.failed` and `stepline/function.cancelled` carry the run id as their event
id, so each can be stored once only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stepline.engine.events import build_event
from stepline.engine.outputs import blob_link
from stepline.store.base import FINISHED_EVENT, EventRecord, RunEnd
from stepline.store.blobs import blob_ref

_STATUS = {"COMPLETED": "Completed", "FAILED": "Failed", "CANCELLED": "Cancelled"}


def _error(stored: str | None) -> dict[str, Any]:
    error = json.loads(stored or "{}")
    name, message = error.get("name", "Error"), error.get("message", "")
    return {
        "error": f"{name}: {message}" if message else name,
        "name": name,
        "message": message,
        "stack": error.get("stack") or error.get("traceback", ""),  # an SDK app's, or ours
    }


def _result(ended: RunEnd) -> dict[str, Any]:
    """`result`, or for a result kept as a blob its size and where to download it."""
    ref = blob_ref(ended.output)
    if ref is None:
        return {"result": None if ended.output is None else json.loads(ended.output)}
    return {"result": None, "result_blob": blob_link(ended.run_id, None, ref)}


def lifecycle_data(ended: RunEnd, events: Sequence[EventRecord]) -> dict[str, Any]:
    """The `data` of a run's lifecycle events."""
    payloads = [event.payload() for event in events]
    data: dict[str, Any] = {
        "function_id": ended.function_id,
        "run_id": ended.run_id,
        "event": payloads[0] if payloads else {},
        "events": payloads,
        "_inngest": {"status": _STATUS.get(ended.status, ended.status)},
    }
    if ended.status == "COMPLETED":
        data.update(_result(ended))
    if ended.status == "FAILED":
        data["error"] = _error(ended.error)
    if ended.status == "CANCELLED" and ended.reason:
        data["reason"] = ended.reason
    if ended.parent_run_id and ended.parent_step:
        data["correlation_id"] = f"{ended.parent_run_id}.{ended.parent_step}"
    return data


def lifecycle_events(
    ended: RunEnd, events: Sequence[EventRecord], names: Sequence[str], now: datetime
) -> list[EventRecord]:
    """One event per name in `names`, for the run that just ended."""
    data = lifecycle_data(ended, events)
    return [
        build_event(
            {
                "name": name,
                "data": data,
                **({} if name == FINISHED_EVENT else {"id": ended.run_id}),
            },
            now=now,
            source="system",
            internal=True,
        )
        for name in names
    ]

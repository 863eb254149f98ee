"""Inngest's REST API beside Stepline's (protocol §11): who gets its shape, and the shape.

Inngest's REST API and Stepline's share five routes: `GET /v1/events`, `GET /v1/events/{id}`,
`GET /v1/events/{id}/runs`, `GET /v1/runs/{id}` and `DELETE /v1/runs/{id}`. Their answers
differ where both cannot hold: a run's status is `Completed` there and `COMPLETED` here,
`output` holds a failed run's error there, payloads come with `metadata`, a cancel answers an
empty body. So each request gets one shape whole: Inngest's when it says it is an Inngest
client (`speaks_inngest`), Stepline's otherwise. On these routes a signing key is a credential
as good as an admin token (`Api._authorize`), as on Inngest's server.

Stepline has one account and one environment; they carry the ids the Inngest dev server gives
its own, and every function is at version 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stepline.engine.inngest.names import to_inngest
from stepline.engine.inngest.signing import SigningKeys
from stepline.engine.outputs import Outputs
from stepline.server.auth import bearer
from stepline.store.base import EventRecord, RunRecord, RunStatus

SHAPE_HEADER = "x-stepline-shape"
SHAPES = ("inngest", "stepline")
SDK_HEADER = "x-inngest-sdk"
ACCOUNT_ID = "00000000-0000-4000-a000-000000000000"
ENVIRONMENT_ID = "00000000-0000-4000-b000-000000000000"
FUNCTION_VERSION = 1
DEFAULT_EVENTS = 20  # Inngest's page size when `limit` is not given
STATUS: dict[RunStatus, str] = {
    "QUEUED": "Scheduled",
    "RUNNING": "Running",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
    "SKIPPED": "Skipped",
}


def speaks_inngest(request: Request, keys: SigningKeys | None) -> bool:
    """Whether to answer in Inngest's shape.

    `X-Stepline-Shape: inngest` or `stepline` decides. Otherwise an Inngest client: the SDKs
    send `X-Inngest-SDK` and a `User-Agent` starting `inngest-`; code calling Inngest's REST API
    authenticates with a signing key (`signkey-...`, or its hash when the server has keys).
    """
    chosen = request.headers.get(SHAPE_HEADER, "").strip().lower()
    if chosen in SHAPES:
        return chosen == "inngest"
    if SDK_HEADER in request.headers:
        return True
    if request.headers.get("user-agent", "").startswith("inngest-"):
        return True
    token = bearer(request) or ""
    authorization = request.headers.get("authorization")
    return token.startswith("signkey-") or (keys is not None and keys.accepts_bearer(authorization))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(data: Any) -> dict[str, Any]:
    """`{"data": data, "metadata": {"fetched_at": now}}`, as Inngest's REST API answers."""
    return {"data": data, "metadata": {"fetched_at": _iso(datetime.now(UTC))}}


def cancelled() -> Response:
    """What Inngest's `DELETE /v1/runs/{id}` answers: 200 with no body."""
    return Response(status_code=200, media_type="application/json")


def event_view(event: EventRecord) -> dict[str, Any]:
    """A stored event as Inngest's REST API shows it; system events under `inngest/` names."""
    return {
        "internal_id": event.internal_id,
        "account_id": ACCOUNT_ID,
        "environment_id": ENVIRONMENT_ID,
        "source": event.source,
        "source_id": None,
        "received_at": _iso(event.received_at),
        "id": event.id,
        "name": to_inngest(event.name),
        "data": json.loads(event.data),
        "user": json.loads(event.user),
        "ts": event.ts,
    }


def run_view(run: RunRecord, outputs: Outputs) -> dict[str, Any]:
    """A run as Inngest's REST API shows it.

    `output` is the function's result, or a failed run's error; absent while it has neither.
    A result kept as a blob is read from `outputs`' store: Inngest clients expect the data.
    """
    view: dict[str, Any] = {
        "run_id": run.id,
        "run_started_at": _iso(run.started_at or run.created_at),
        "function_id": run.function_id,
        "function_version": FUNCTION_VERSION,
        "environment_id": ENVIRONMENT_ID,
        "event_id": run.event_id,
        "status": STATUS[run.status],
        "ended_at": None if run.ended_at is None else _iso(run.ended_at),
    }
    if run.replay_of is not None:
        view["original_run_id"] = run.replay_of
    output = run.error if run.status == "FAILED" else outputs.text(run.output)
    if output is not None:
        view["output"] = json.loads(output)
    return view


def runs_view(runs: Iterable[RunRecord], outputs: Outputs) -> list[dict[str, Any]]:
    """Runs as Inngest's REST API lists them: parallel branches are parts of their run."""
    return [run_view(run, outputs) for run in runs if run.trigger_kind != "parallel"]

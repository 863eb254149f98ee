"""The call request: what the server POSTs to an SDK app's serve URL (protocol §7.1).

A discovery request (`stepId=step`) asks the app to replay the function and report what comes
next; a targeted one (`stepId=<hash>`) asks it to run one planned step. A body past
`USE_API_BYTES` goes without events and steps, flagged `use_api`: the SDK fetches them from
`/v0/runs/{id}/batch` and `/v0/runs/{id}/actions`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stepline.engine.inngest.names import to_inngest
from stepline.store.base import EventRecord

USE_API_BYTES = 4 * 1024 * 1024
DISCOVERY = "step"


def sdk_event(event: EventRecord) -> dict[str, Any]:
    """An event as the SDKs read it (`ts` an integer; system events under `inngest/` names)."""
    return {
        "id": event.id,
        "name": to_inngest(event.name),
        "data": json.loads(event.data),
        "user": json.loads(event.user),
        "ts": int(event.ts),
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Call:
    """One call request's content."""

    run_id: str
    function_id: str
    step_id: str  # DISCOVERY or the hash of the planned step to run
    events: Sequence[dict[str, Any]]
    steps: dict[str, Any]
    stack: Sequence[str]
    attempt: int
    max_attempts: int

    def payload(self, *, use_api: bool = False) -> dict[str, Any]:
        """The JSON body (see the module docstring for `use_api`)."""
        return {
            "event": self.events[0] if self.events else {},
            "events": [] if use_api else list(self.events),
            "steps": {} if use_api else self.steps,
            "ctx": {
                "run_id": self.run_id,
                "attempt": self.attempt,
                "max_attempts": self.max_attempts,
                "disable_immediate_execution": self.step_id != DISCOVERY,
                "use_api": use_api,
                "stack": {"stack": [] if use_api else list(self.stack), "current": len(self.stack)},
                "step_id": self.step_id,
                "env": "",
            },
            "use_api": use_api,
            "version": -1,  # the SDK chooses; it answers the same way for every call of a run
        }

    def url(self, base: str) -> str:
        """The function's runtime URL with this call's `fnId` and `stepId`."""
        parts = urlsplit(base)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("fnId", "stepId")]
        query += [("fnId", self.function_id), ("stepId", self.step_id)]
        return urlunsplit(parts._replace(query=urlencode(query)))

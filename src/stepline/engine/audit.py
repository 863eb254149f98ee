"""The audit log's writer: every operator action, appended with who asked, when and why.

Actions are named `<thing>.<verb>`: `function.invoke`, `function.pause`, `function.resume`,
`run.cancel`, `run.replay`, `run.rerun`, `runs.cancel` and `runs.replay` (bulk: the filter and
the count in `details`), `token.create`, `token.revoke`, `key.create`, `key.revoke`,
`app.sync`, `login` and `login.failed`. An entry is appended after its action succeeded, in a
transaction of its own.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from stepline.engine.clock import Clock
from stepline.store.access import AuditEntry
from stepline.store.base import RunFilter, Store

ACTIONS = (
    "function.invoke",
    "function.pause",
    "function.resume",
    "run.cancel",
    "run.replay",
    "run.rerun",
    "runs.cancel",
    "runs.replay",
    "token.create",
    "token.revoke",
    "key.create",
    "key.revoke",
    "app.sync",
    "login",
    "login.failed",
)
# Who acts when no one is named: a call of the Python API in this process (`Engine.cancel`).
UNNAMED = "local"


class Audit:
    """Appends audit entries to a store, timed by a clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        action: str,
        *,
        actor: str | None,
        target: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry; an actor of None is recorded as `UNNAMED`."""
        entry = AuditEntry(
            at=self.clock.now(),
            actor=actor or UNNAMED,
            action=action,
            target=target,
            reason=reason,
            details=details or {},
        )
        self.store.append_audit(entry)


def filter_details(run_filter: RunFilter) -> dict[str, Any]:
    """A bulk action's filter as JSON: only the criteria given (times in ISO 8601)."""
    given: dict[str, Any] = {}
    for item in fields(run_filter):
        value = getattr(run_filter, item.name)
        if value is None or item.name in ("limit", "before"):
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        given[item.name] = value
    return given

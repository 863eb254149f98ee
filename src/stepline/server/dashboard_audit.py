"""The audit page: operator actions newest first (who, when, what, on what, why), paged.

Only admins see it (and its link in the navigation), as only they read `GET /v1/audit`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from stepline.engine.operations import Operations
from stepline.server import dashboard_models as models
from stepline.server.templating import page
from stepline.store.access import AuditEntry, AuditQuery

Inner = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Awaitable[Response]]
Context = Callable[..., dict[str, Any]]
PAGE_SIZE = 50


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRow:
    """An audit entry as the page shows it."""

    at: models.Moment
    actor: str
    action: str
    target: str | None
    target_href: str | None
    reason: str | None
    details: str  # "key: value" pairs, or ""


def _target_href(entry: AuditEntry) -> str | None:
    if entry.target is None:
        return None
    if entry.action.startswith("run."):
        return models.run_href(entry.target)
    if entry.action.startswith("function."):
        return models.function_page_href(entry.target)
    return None


def _details(details: dict[str, Any]) -> str:
    return "; ".join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
        for key, value in details.items()
        if value is not None
    )


def audit_row(entry: AuditEntry) -> AuditRow:
    """One row of the audit table."""
    return AuditRow(
        at=models.moment(entry.at),
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        target_href=_target_href(entry),
        reason=entry.reason,
        details=_details(entry.details),
    )


def _before(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() and 0 < int(text) < 2**62 else None


class AuditPages:
    """The audit page over one `Operations`."""

    def __init__(self, operations: Operations, *, guard: Guard, context: Context) -> None:
        self.ops = operations
        self._guard = guard
        self._context = context

    def _rows(self, before: int | None) -> tuple[list[AuditRow], str | None]:
        entries = self.ops.store.list_audit(AuditQuery(before=before, limit=PAGE_SIZE + 1))
        more = None
        if len(entries) > PAGE_SIZE:
            more = "/audit?" + urlencode({"before": entries[PAGE_SIZE - 1].seq})
        return [audit_row(entry) for entry in entries[:PAGE_SIZE]], more

    async def page(self, request: Request) -> Response:
        """GET /audit: the audit log, newest first (`before`: the next page's cursor)."""

        async def inner(request: Request) -> Response:
            before = _before(request.query_params.get("before"))
            rows, more = await run_in_threadpool(self._rows, before)
            context = self._context(request, "audit", "Audit", rows=rows, more=more)
            return page("audit.html", context)

        return await self._guard(request, inner)

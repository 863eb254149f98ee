"""REST API v1 admin handlers: named tokens, named event keys, and the audit log."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.access import Principal
from stepline.engine.access_views import audit_view, created_view, credential_view
from stepline.engine.operations import Operations
from stepline.server.access_models import AuditQuery, KeyBody, TokenBody
from stepline.server.models import ReasonBody
from stepline.store import access
from stepline.store.access import CredentialKind


def _sequence(cursor: str) -> int:
    """An audit cursor as the sequence number it is; `NotFound` for anything else."""
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18) or int(cursor) == 0:
        raise errors.NotFound(f"before: no audit entry {cursor!r} to page from")
    return int(cursor)


class AccessHandlers:
    """The `/v1/tokens`, `/v1/keys` and `/v1/audit` handlers (all need the admin role)."""

    ops: Operations

    async def _answer(self, call: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"data": await run_in_threadpool(call)}, status_code=status)

    async def _list(self, kind: CredentialKind) -> JSONResponse:
        credentials = self.ops.credentials
        return await self._answer(
            lambda: [credential_view(kind, r) for r in credentials.list(kind)]
        )

    async def _create(
        self,
        kind: CredentialKind,
        name: str,
        principal: Principal,
        role: str | None = None,
        functions: list[str] | None = None,
    ) -> JSONResponse:
        def create() -> dict[str, Any]:
            created = self.ops.credentials.create(
                kind, name, by=principal.name, role=role, functions=functions
            )
            return created_view(kind, created)

        return await self._answer(create, status=201)

    async def _revoke(
        self, kind: CredentialKind, name: str, body: ReasonBody | None, principal: Principal
    ) -> JSONResponse:
        reason = body.reason if body is not None else None
        credentials = self.ops.credentials
        return await self._answer(
            lambda: credential_view(
                kind, credentials.revoke(kind, name, by=principal.name, reason=reason)
            )
        )

    async def list_tokens(self) -> JSONResponse:
        """GET /v1/tokens: every API token (never a secret), revoked ones too."""
        return await self._list("token")

    async def create_token(self, body: TokenBody, principal: Principal) -> JSONResponse:
        """POST /v1/tokens: a named token with a role; its secret is in this answer only."""
        return await self._create("token", body.name, principal, body.role, body.functions)

    async def revoke_token(
        self, name: str, body: ReasonBody | None, principal: Principal
    ) -> JSONResponse:
        """POST /v1/tokens/{name}/revoke: refused from the next request on (idempotent)."""
        return await self._revoke("token", name, body, principal)

    async def list_keys(self) -> JSONResponse:
        """GET /v1/keys: every named event key (never a secret), revoked ones too."""
        return await self._list("key")

    async def create_key(self, body: KeyBody, principal: Principal) -> JSONResponse:
        """POST /v1/keys: a named event key; its secret is in this answer only."""
        return await self._create("key", body.name, principal)

    async def revoke_key(
        self, name: str, body: ReasonBody | None, principal: Principal
    ) -> JSONResponse:
        """POST /v1/keys/{name}/revoke: intake refuses it from the next request on."""
        return await self._revoke("key", name, body, principal)

    async def list_audit(self, query: AuditQuery) -> JSONResponse:
        """GET /v1/audit: operator actions newest first, by actor or action, keyset-paged.

        A `before` that is no page's `next_cursor` (no entry's sequence number) is 404.
        """
        before = None if query.before is None else _sequence(query.before)

        def page() -> dict[str, Any]:
            entries = self.ops.store.list_audit(
                access.AuditQuery(
                    actor=query.actor,
                    action=query.action,
                    before=before,
                    limit=query.limit + 1,
                )
            )
            cursor = str(entries[query.limit - 1].seq) if len(entries) > query.limit else None
            return {"data": [audit_view(e) for e in entries[: query.limit]], "next_cursor": cursor}

        return JSONResponse(await run_in_threadpool(page))

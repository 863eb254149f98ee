"""`Client`'s admin calls: named API tokens, named event keys and the audit log.

Over HTTP they need an `admin` token; on a local client (`Client.local(db)`) they act on the
database directly, recorded in the audit log as `client` (how the first admin token of a
server without a bootstrap token is made).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from stepline.engine.access_views import audit_view, created_view, credential_view
from stepline.engine.operations import Operations
from stepline.store.access import AuditQuery

Kind = Literal["token", "key"]
_PATHS: dict[Kind, str] = {"token": "/v1/tokens", "key": "/v1/keys"}
LOCAL = "client"  # the actor of a local client's changes


class AccessBackend(Protocol):
    """What `AccessMethods` needs of a transport."""

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]: ...
    def list(self, kind: Kind) -> list[dict[str, Any]]: ...
    def revoke(self, kind: Kind, name: str, reason: str | None) -> dict[str, Any]: ...
    def audit(self, query: dict[str, Any]) -> dict[str, Any]: ...


class HttpAccess:
    """The admin calls over the REST API (`call(method, path, **httpx kwargs)` → JSON)."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._call("POST", _PATHS[kind], json=body)["data"]
        return created

    def list(self, kind: Kind) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", _PATHS[kind])["data"]
        return found

    def revoke(self, kind: Kind, name: str, reason: str | None) -> dict[str, Any]:
        body = {"reason": reason} if reason else None
        path = f"{_PATHS[kind]}/{name}/revoke"
        revoked: dict[str, Any] = self._call("POST", path, json=body)["data"]
        return revoked

    def audit(self, query: dict[str, Any]) -> dict[str, Any]:
        params = {key: value for key, value in query.items() if value is not None}
        page: dict[str, Any] = self._call("GET", "/v1/audit", params=params)
        return page


class LocalAccess:
    """The admin calls on the database, through the engine's operations."""

    def __init__(self, ops: Operations) -> None:
        self._ops = ops

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        created = self._ops.credentials.create(
            kind,
            body["name"],
            by=LOCAL,
            role=body.get("role"),
            functions=body.get("functions"),
        )
        return created_view(kind, created)

    def list(self, kind: Kind) -> list[dict[str, Any]]:
        return [credential_view(kind, r) for r in self._ops.credentials.list(kind)]

    def revoke(self, kind: Kind, name: str, reason: str | None) -> dict[str, Any]:
        record = self._ops.credentials.revoke(kind, name, by=LOCAL, reason=reason)
        return credential_view(kind, record)

    def audit(self, query: dict[str, Any]) -> dict[str, Any]:
        limit = query["limit"]
        before = query["before"]
        entries = self._ops.store.list_audit(
            AuditQuery(
                actor=query["actor"],
                action=query["action"],
                before=None if before is None else int(before),
                limit=limit + 1,
            )
        )
        cursor = str(entries[limit - 1].seq) if len(entries) > limit else None
        return {"data": [audit_view(e) for e in entries[:limit]], "next_cursor": cursor}


class AccessMethods:
    """`Client`'s methods for tokens, event keys and the audit log."""

    _access: AccessBackend

    def create_token(
        self, name: str, *, role: str, functions: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Create a named API token; returns `{"token": {...}, "secret": ...}`.

        The secret is shown this once: only its hash is stored. `role` is read, operate or
        admin; `functions` limits the token to those functions' runs.

        Raises:
            InvalidInput: A bad name, role or function id.
            Conflict: A token of that name exists (revoked ones keep their names).
        """
        body: dict[str, Any] = {"name": name, "role": role}
        if functions:
            body["functions"] = list(functions)
        return self._access.create("token", body)

    def tokens(self) -> list[dict[str, Any]]:
        """Every API token (never a secret), revoked ones too, by name."""
        return self._access.list("token")

    def revoke_token(self, name: str, *, reason: str | None = None) -> dict[str, Any]:
        """Revoke an API token: refused from the next request on. Raises `NotFound`."""
        return self._access.revoke("token", name, reason)

    def create_event_key(self, name: str) -> dict[str, Any]:
        """Create a named event key; returns `{"key": {...}, "secret": ...}` (shown once)."""
        return self._access.create("key", {"name": name})

    def event_keys(self) -> list[dict[str, Any]]:
        """Every named event key (never a secret), revoked ones too, by name."""
        return self._access.list("key")

    def revoke_event_key(self, name: str, *, reason: str | None = None) -> dict[str, Any]:
        """Revoke an event key: intake refuses it from the next request on."""
        return self._access.revoke("key", name, reason)

    def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The audit log, newest first: `{"data": [entry, ...], "next_cursor": ...}`."""
        query = {"actor": actor, "action": action, "before": before, "limit": limit}
        return self._access.audit(query)

"""Tokens, event keys and audit entries as JSON-ready dicts (the API's, the CLI's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stepline.engine.access import Created
from stepline.store.access import AuditEntry, CredentialKind, CredentialRecord


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def credential_view(kind: CredentialKind, record: CredentialRecord) -> dict[str, Any]:
    """A token (with role and function limit) or an event key; never a secret or its hash."""
    view: dict[str, Any] = {"name": record.name}
    if kind == "token":
        view["role"] = record.role
        view["functions"] = None if record.functions is None else list(record.functions)
    view.update(
        created_at=_iso(record.created_at),
        created_by=record.created_by,
        revoked_at=_iso(record.revoked_at),
        last_used_at=_iso(record.last_used_at),
    )
    return view


def created_view(kind: CredentialKind, created: Created) -> dict[str, Any]:
    """A credential just created, with its secret (`{"token"|"key": ..., "secret": ...}`)."""
    return {kind: credential_view(kind, created.record), "secret": created.secret}


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry."""
    return {
        "seq": entry.seq,
        "at": _iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
        "details": entry.details,
    }

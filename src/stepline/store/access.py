"""Named API tokens, named event keys and the audit log: their records and their queries.

Credentials are looked up by the SHA-256 of the secret presented (`credential_by_hash`), one
read of the unique index per request, so a revocation takes effect on the very next request of
every process. Being on every request, that read (and intake's `credential_and_others`) is
compiled once per dialect and run on a driver connection (`SqlStore._quick_read`; on
PostgreSQL one round trip instead of four), where Core would cost about 100 µs more per call.
The audit log is append-only; it is read newest first, keyset-paged by `seq`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

from sqlalchemy import Table, bindparam, insert, literal, select, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import IntegrityError

from stepline import errors
from stepline.store import schema as t
from stepline.store._prepared import Prepared, Row

CredentialKind = Literal["token", "key"]
_TABLES: dict[CredentialKind, Table] = {"token": t.api_tokens, "key": t.event_keys}
_NOUNS: dict[CredentialKind, str] = {"token": "API token", "key": "event key"}


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _maybe_at(value: float | None) -> datetime | None:
    return None if value is None else _at(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class CredentialRecord:
    """A named API token (with its role) or event key (role None), as stored: never the secret.

    `functions`: the functions a token is limited to (None: all).
    """

    name: str
    secret_hash: str
    created_at: datetime
    role: str | None = None
    functions: tuple[str, ...] | None = None
    created_by: str | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CredentialRecord:
        """Build from a row of `api_tokens` or `event_keys`."""
        functions = row.get("functions")
        return cls(
            name=row["name"],
            secret_hash=row["secret_hash"],
            created_at=_at(row["created_at"]),
            role=row.get("role"),
            functions=None if functions is None else tuple(json.loads(functions)),
            created_by=row["created_by"],
            revoked_at=_maybe_at(row["revoked_at"]),
            last_used_at=_maybe_at(row["last_used_at"]),
        )

    @property
    def revoked(self) -> bool:
        """True once revoked."""
        return self.revoked_at is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One operator action: who, when, what, on what, why, and details (a JSON object).

    `seq` is 0 for an entry not yet appended.
    """

    at: datetime
    actor: str
    action: str
    target: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AuditEntry:
        """Build from a row of `audit_log`."""
        return cls(
            seq=int(row["seq"]),
            at=_at(row["at"]),
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            reason=row["reason"],
            details=json.loads(row["details"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    """Which audit entries to list, newest first: before `before` (a seq), by actor, action."""

    actor: str | None = None
    action: str | None = None
    before: int | None = None
    limit: int = 50


class AccessStore(Protocol):
    """The part of `Store` that keeps credentials and the audit log."""

    def create_credential(self, kind: CredentialKind, record: CredentialRecord) -> None:
        """Store a new token or key; `Conflict` if its name (or hash) is taken, revoked or not."""
        ...

    def list_credentials(self, kind: CredentialKind) -> list[CredentialRecord]:
        """Every token or key, revoked ones too, by name."""
        ...

    def credential_by_hash(self, kind: CredentialKind, secret_hash: str) -> CredentialRecord | None:
        """The token or key whose secret hashes to `secret_hash` (revoked or not), or None."""
        ...

    def credential_and_others(
        self, kind: CredentialKind, secret_hash: str
    ) -> tuple[CredentialRecord | None, bool]:
        """`credential_by_hash`, and whether any token or key was ever made; one read.

        Revoked ones count as made: open intake stays closed once a key was made.
        """
        ...

    def revoke_credential(self, kind: CredentialKind, name: str, now: datetime) -> CredentialRecord:
        """Revoke a token or key by name; idempotent (the first time is kept); `NotFound`."""
        ...

    def touch_credential(self, kind: CredentialKind, name: str, now: datetime) -> None:
        """Record that a token or key was used at `now`."""
        ...

    def append_audit(self, entry: AuditEntry) -> int:
        """Append an audit entry; returns its `seq`."""
        ...

    def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Audit entries matching the query, newest first."""
        ...


class _Connections(Protocol):
    engine: Engine

    def _read(self) -> AbstractContextManager[Connection]: ...

    def _write(self) -> AbstractContextManager[Connection]: ...

    def _quick_read(self, statement: Prepared, **params: Any) -> Row | None: ...


@dataclass(frozen=True, slots=True)
class _Lookups:
    """The per-request reads of one credential table, compiled for one dialect."""

    by_hash: Prepared
    with_others: Prepared  # one row: the credential's columns (or nulls), and `made`


@lru_cache(maxsize=8)
def _lookups(dialect: Dialect, kind: CredentialKind) -> _Lookups:
    table = _TABLES[kind]
    matches = table.c.secret_hash == bindparam("secret_hash")
    one_row = select(literal(1).label("one")).subquery("one")
    made = select(literal(1)).select_from(table).exists().label("made")
    return _Lookups(
        by_hash=Prepared(select(table).where(matches), dialect),
        with_others=Prepared(
            select(table, made).select_from(one_row.outerjoin(table, matches)), dialect
        ),
    )


def _values(kind: CredentialKind, record: CredentialRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": record.name,
        "secret_hash": record.secret_hash,
        "created_at": record.created_at.timestamp(),
        "created_by": record.created_by,
    }
    if kind == "token":
        functions = record.functions
        values["role"] = record.role
        values["functions"] = None if functions is None else json.dumps(list(functions))
    return values


class AccessMixin:
    """`SqlStore`'s credentials and audit log (see the module docstring)."""

    def create_credential(
        self: _Connections, kind: CredentialKind, record: CredentialRecord
    ) -> None:
        """Store a new token or key; `Conflict` if its name (or hash) is taken."""
        table = _TABLES[kind]
        try:
            with self._write() as conn:
                taken = conn.execute(
                    select(table.c.name).where(table.c.name == record.name)
                ).first()
                if taken is not None:
                    raise errors.Conflict(
                        f"an {_NOUNS[kind]} named {record.name!r} exists (revoked ones keep "
                        "their names); choose another name"
                    )
                conn.execute(insert(table).values(_values(kind, record)))
        except IntegrityError as exc:  # a concurrent create of the same name
            raise errors.Conflict(f"an {_NOUNS[kind]} named {record.name!r} exists") from exc

    def list_credentials(self: _Connections, kind: CredentialKind) -> list[CredentialRecord]:
        """Every token or key, revoked ones too, by name."""
        table = _TABLES[kind]
        with self._read() as conn:
            rows = conn.execute(select(table).order_by(table.c.name)).mappings()
            return [CredentialRecord.from_row(row) for row in rows]

    def credential_by_hash(
        self: _Connections, kind: CredentialKind, secret_hash: str
    ) -> CredentialRecord | None:
        """The token or key whose secret hashes to `secret_hash`, or None (on every request)."""
        statement = _lookups(self.engine.dialect, kind).by_hash
        row = self._quick_read(statement, secret_hash=secret_hash)
        return None if row is None else CredentialRecord.from_row(row)

    def credential_and_others(
        self: _Connections, kind: CredentialKind, secret_hash: str
    ) -> tuple[CredentialRecord | None, bool]:
        """`credential_by_hash`, and whether any was ever made: one statement (each intake)."""
        statement = _lookups(self.engine.dialect, kind).with_others
        row = self._quick_read(statement, secret_hash=secret_hash)
        assert row is not None  # the outer join returns exactly one row
        found = None if row["name"] is None else CredentialRecord.from_row(row)
        return found, bool(row["made"])

    def revoke_credential(
        self: _Connections, kind: CredentialKind, name: str, now: datetime
    ) -> CredentialRecord:
        """Revoke a token or key by name; idempotent; `NotFound` naming the known ones."""
        table = _TABLES[kind]
        with self._write() as conn:
            conn.execute(
                update(table)
                .where(table.c.name == name, table.c.revoked_at.is_(None))
                .values(revoked_at=now.timestamp())
            )
            row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
            if row is None:
                names = conn.execute(select(table.c.name).order_by(table.c.name)).scalars()
                known = ", ".join(names) or "none"
                raise errors.NotFound(f"no {_NOUNS[kind]} named {name!r} (known: {known})")
        return CredentialRecord.from_row(row)

    def touch_credential(
        self: _Connections, kind: CredentialKind, name: str, now: datetime
    ) -> None:
        """Record that a token or key was used at `now`."""
        table = _TABLES[kind]
        with self._write() as conn:
            conn.execute(
                update(table).where(table.c.name == name).values(last_used_at=now.timestamp())
            )

    def append_audit(self: _Connections, entry: AuditEntry) -> int:
        """Append an audit entry; returns its `seq`."""
        values = {
            "at": entry.at.timestamp(),
            "actor": entry.actor,
            "action": entry.action,
            "target": entry.target,
            "reason": entry.reason,
            "details": json.dumps(entry.details, separators=(",", ":"), default=str),
        }
        with self._write() as conn:
            seq = conn.execute(insert(t.audit_log).values(values)).inserted_primary_key
        return int(seq[0]) if seq else 0

    def list_audit(self: _Connections, query: AuditQuery) -> list[AuditEntry]:
        """Audit entries matching the query, newest first."""
        a = t.audit_log.c
        where: list[Any] = []
        if query.actor is not None:
            where.append(a.actor == query.actor)
        if query.action is not None:
            where.append(a.action == query.action)
        if query.before is not None:
            where.append(a.seq < query.before)
        statement = select(t.audit_log).where(*where).order_by(a.seq.desc()).limit(query.limit)
        with self._read() as conn:
            return [AuditEntry.from_row(row) for row in conn.execute(statement).mappings()]

"""Who may do what: named API tokens with roles, named event keys, and who a request is.

Roles are ordered: `read` (runs, events, functions, workers, apps: what a page polling a
job's status needs) < `operate` (also send events, invoke, cancel, replay, rerun, pause and
resume) < `admin` (also tokens, event keys, app syncs and the audit log). A token may be
limited to some functions: it then sees and acts on runs of those functions only.

Secrets are 32 random bytes (URL-safe text) shown once, at creation; the store keeps their
SHA-256 only. A presented secret is hashed and looked up on every request, so a revoked
credential is refused by every process on its next request. `last_used_at` is written at most
once a minute per credential and process, so reads stay reads.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from stepline import errors
from stepline.engine.audit import Audit
from stepline.engine.clock import Clock
from stepline.store.access import CredentialKind, CredentialRecord
from stepline.store.base import Store

Role = Literal["read", "operate", "admin"]
ROLES: tuple[Role, ...] = ("read", "operate", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
TOUCH_SECONDS = 60.0


def hash_secret(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh secret: 32 random bytes as URL-safe text (43 characters)."""
    return secrets.token_urlsafe(32)


def allows(role: Role, needed: Role) -> bool:
    """Whether `role` includes `needed`."""
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(text: str, field: str = "role") -> Role:
    """`text` as a role; `InvalidInput` naming the roles otherwise."""
    for role in ROLES:
        if text == role:
            return role
    raise errors.InvalidInput(f"must be one of {', '.join(ROLES)}, not {text!r}", field)


def check_name(text: str, field: str = "name") -> str:
    """`text` as a credential name; `InvalidInput` saying what a name may hold."""
    if not NAME.fullmatch(text):
        raise errors.InvalidInput(
            "must be 1 to 100 letters, digits, '_', '.', '@' or '-', starting with a letter "
            f"or digit, not {text!r}",
            field,
        )
    return text


def _function_ids(functions: Sequence[str]) -> tuple[str, ...]:
    """A token's function limit: distinct ids, sorted; `InvalidInput` for one no id can be."""
    for function_id in functions:
        if not function_id or "\x00" in function_id or len(function_id) > 255:
            raise errors.InvalidInput(f"not a function id: {function_id!r}", "functions")
    return tuple(sorted(set(functions)))


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """Who a request is: a name (recorded as the actor), a role and maybe a function limit."""

    name: str
    role: Role
    functions: frozenset[str] | None = None

    def may(self, needed: Role) -> bool:
        """Whether this principal's role includes `needed`."""
        return allows(self.role, needed)

    def sees(self, function_id: str) -> bool:
        """Whether this principal may see and act on runs of `function_id`."""
        return self.functions is None or function_id in self.functions


@dataclass(frozen=True, kw_only=True, slots=True)
class Created:
    """A credential just created, and its secret (shown once, never stored)."""

    record: CredentialRecord
    secret: str


class Credentials:
    """Create, list, revoke and recognise named tokens and event keys; each change audited."""

    def __init__(self, store: Store, clock: Clock, audit: Audit) -> None:
        self.store = store
        self.clock = clock
        self.audit = audit
        self._touched: dict[tuple[CredentialKind, str], float] = {}
        self._lock = threading.Lock()

    def create(
        self,
        kind: CredentialKind,
        name: str,
        *,
        by: str | None,
        role: str | None = None,
        functions: Sequence[str] | None = None,
    ) -> Created:
        """Create a token (with `role`, maybe limited to `functions`) or an event key.

        Raises:
            InvalidInput: A bad name, role or function list (naming the field).
            Conflict: The name is taken.
        """
        name = check_name(name)
        checked_role = check_role(role or "") if kind == "token" else None
        limit = None
        if functions:
            if kind == "key":
                raise errors.InvalidInput("event keys are not limited to functions", "functions")
            limit = _function_ids(functions)
        secret = new_secret()
        record = CredentialRecord(
            name=name,
            secret_hash=hash_secret(secret),
            created_at=self.clock.now(),
            role=checked_role,
            functions=limit,
            created_by=by,
        )
        self.store.create_credential(kind, record)
        details = {} if kind == "key" else {"role": checked_role, "functions": limit}
        self.audit.record(f"{kind}.create", actor=by, target=name, details=details)
        return Created(record=record, secret=secret)

    def revoke(
        self, kind: CredentialKind, name: str, *, by: str | None, reason: str | None = None
    ) -> CredentialRecord:
        """Revoke by name (refused from the next request on); `NotFound` if unknown."""
        record = self.store.revoke_credential(kind, name, self.clock.now())
        self.audit.record(f"{kind}.revoke", actor=by, target=name, reason=reason)
        return record

    def list(self, kind: CredentialKind) -> list[CredentialRecord]:
        """Every token or key, revoked ones too, by name."""
        return self.store.list_credentials(kind)

    def token(self, secret: str) -> Principal | None:
        """The principal of a named API token, or None for an unknown or revoked one."""
        record = self._recognise("token", secret)
        if record is None or record.role is None:
            return None
        limit = None if record.functions is None else frozenset(record.functions)
        return Principal(name=record.name, role=check_role(record.role), functions=limit)

    def key(self, secret: str) -> tuple[str | None, bool]:
        """A named event key's name (None if unknown or revoked), and whether any key was made.

        Revoked keys count as made. One read of the store.
        """
        record, made = self.store.credential_and_others("key", hash_secret(secret))
        found = self._used("key", record)
        return (None if found is None else found.name), made

    def _recognise(self, kind: CredentialKind, secret: str) -> CredentialRecord | None:
        return self._used(kind, self.store.credential_by_hash(kind, hash_secret(secret)))

    def _used(
        self, kind: CredentialKind, record: CredentialRecord | None
    ) -> CredentialRecord | None:
        """`record` unless missing or revoked; its use is recorded (`_touch`)."""
        if record is None or record.revoked:
            return None
        self._touch(kind, record.name)
        return record

    def _touch(self, kind: CredentialKind, name: str) -> None:
        """Write `last_used_at`, at most once per `TOUCH_SECONDS` per credential here."""
        now = time.monotonic()
        with self._lock:
            last = self._touched.get((kind, name))
            if last is not None and now - last < TOUCH_SECONDS:
                return
            self._touched[(kind, name)] = now
        self.store.touch_credential(kind, name, self.clock.now())

"""The API's models for tokens, event keys and the audit log (see `server.models`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from stepline.engine.access import NAME
from stepline.server.models import Cursor, Limit, Model, Text

Name = Field(
    min_length=1,
    max_length=100,
    pattern=NAME.pattern,
    description="letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
)
FunctionId = Annotated[Text, Field(min_length=1, max_length=255)]


# -- requests ------------------------------------------------------------------------------


class TokenBody(Model):
    """`POST /v1/tokens`: a named token with a role, maybe limited to some functions."""

    name: str = Name
    role: Literal["read", "operate", "admin"]
    functions: list[FunctionId] | None = Field(
        default=None,
        max_length=100,
        description="limit the token to these functions' runs (absent: every function)",
    )


class KeyBody(Model):
    """`POST /v1/keys`: a named event key."""

    name: str = Name


class AuditQuery(Model):
    """`GET /v1/audit`: entries newest first, by actor or action, keyset-paged."""

    actor: Text | None = None
    action: Text | None = None
    before: Cursor = None
    limit: Limit = 50


# -- responses -----------------------------------------------------------------------------


class Token(Model):
    """A named API token (never its secret)."""

    name: str
    role: Literal["read", "operate", "admin"]
    functions: list[str] | None
    created_at: AwareDatetime
    created_by: str | None
    revoked_at: AwareDatetime | None
    last_used_at: AwareDatetime | None


class Key(Model):
    """A named event key (never its secret)."""

    name: str
    created_at: AwareDatetime
    created_by: str | None
    revoked_at: AwareDatetime | None
    last_used_at: AwareDatetime | None


class CreatedToken(Model):
    """A token just created, with its secret: shown this once, never again."""

    token: Token
    secret: str


class CreatedKey(Model):
    """An event key just created, with its secret: shown this once, never again."""

    key: Key
    secret: str


class AuditEntry(Model):
    """One operator action."""

    seq: int
    at: AwareDatetime
    actor: str
    action: str
    target: str | None
    reason: str | None
    details: dict[str, Any]


class TokenList(Model):
    """Every token, revoked ones too, by name."""

    data: list[Token]


class TokenResponse(Model):
    """One token."""

    data: Token


class CreatedTokenResponse(Model):
    """A token just created."""

    data: CreatedToken


class KeyList(Model):
    """Every event key, revoked ones too, by name."""

    data: list[Key]


class KeyResponse(Model):
    """One event key."""

    data: Key


class CreatedKeyResponse(Model):
    """An event key just created."""

    data: CreatedKey


class AuditPage(Model):
    """Audit entries, newest first, and the cursor of the next page (null on the last)."""

    data: list[AuditEntry]
    next_cursor: str | None

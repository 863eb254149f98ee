"""Event keys and API tokens, compared in constant time."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from stepline import errors


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """Who may send events and call the API. Empty means open (only allowed in `dev`)."""

    event_keys: tuple[str, ...] = ()
    api_token: str | None = None


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_event_key(settings: AuthSettings, key: str) -> None:
    """Raise `Unauthorized` unless `key` is a configured event key (or none are configured)."""
    if settings.event_keys and not any(_equal(key, k) for k in settings.event_keys):
        raise errors.Unauthorized("Event key not found")


def check_token(settings: AuthSettings, request: Request) -> None:
    """Raise `Unauthorized` unless the request carries the API token (if one is configured)."""
    if settings.api_token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _equal(token.strip(), settings.api_token):
        raise errors.Unauthorized(
            "missing or wrong API token; send 'Authorization: Bearer <token>'"
        )

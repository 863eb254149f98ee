"""Event keys and API tokens, compared in constant time; wrong tokens are throttled."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from starlette.requests import Request

from stepline import errors
from stepline.engine.inngest.signing import SigningKeys
from stepline.server.throttle import FailureLimiter, client_address


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """Who may send events and call the API. Empty means open (only allowed in `dev`).

    `signing_keys`: SDK apps present the hash of their signing key (protocol §4.4) on the
    endpoints they call (`/fn/register`, `/v0/...`).

    `limiter` counts wrong API tokens per client address (see `server.throttle`).
    """

    event_keys: tuple[str, ...] = ()
    api_token: str | None = None
    signing_keys: SigningKeys | None = None
    limiter: FailureLimiter = field(default_factory=FailureLimiter, compare=False, repr=False)

    @property
    def open(self) -> bool:
        """True without an API token: `/v1` and the dashboard need no credentials."""
        return self.api_token is None

    def is_token(self, given: str) -> bool:
        """Whether `given` is the API token (compared in constant time; not throttled)."""
        return self.api_token is not None and _equal(given, self.api_token)

    def token_matches(self, request: Request, given: str) -> bool:
        """Whether `given` (a token the request presented) is the API token, throttled.

        Raises:
            TooManyFailures: This client presented too many wrong tokens lately.
        """
        address = client_address(request)
        self.limiter.check(address)
        if self.is_token(given):
            return True
        self.limiter.failed(address)
        return False


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if the request has one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_event_key(settings: AuthSettings, key: str) -> None:
    """Raise `Unauthorized` unless `key` is a configured event key (or none are configured)."""
    if settings.event_keys and not any(_equal(key, k) for k in settings.event_keys):
        raise errors.Unauthorized("Event key not found")


def check_token(settings: AuthSettings, request: Request) -> None:
    """Raise `Unauthorized` unless the request carries the API token (if one is configured).

    Raises:
        Unauthorized: No token, or a wrong one.
        TooManyFailures: This client presented too many wrong tokens lately.
    """
    if settings.api_token is None:
        return
    given = bearer(request)
    if given is None or not settings.token_matches(request, given):
        raise errors.Unauthorized(
            "missing or wrong API token; send 'Authorization: Bearer <token>'"
        )

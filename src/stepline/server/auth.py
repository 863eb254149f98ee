"""Who a request is, and whether its role allows what it asks: the one place every route asks.

API tokens: the bootstrap token of `--api-token-file` (compared in constant time; an `admin`
named `bootstrap`) and the named tokens of `stepline tokens create`, looked up by the SHA-256
of the presented secret on every request (so a revoked token is refused at once, by every
process; see `engine.access`). Event keys: the keys of `--event-key-file` and the named keys
of `stepline keys create`, the same way. Wrong tokens are throttled per client address
(`server.throttle`).

Each route needs a role (`read`, `operate` or `admin`): the API's are in its route table
(`server/app.py`), the dashboard's in `DASHBOARD_ROLES` there. A token short of the role gets
403 naming the role needed. A token limited to some functions gets 404 for the runs and
functions of others (as if they did not exist) and 403 on the routes that span every function
(events, workers, apps). On an open server (`stepline dev`) everyone is an `admin`, named
after the way in ("api", "dashboard"), as no credential tells people apart. A response that
lasts (a live stream) checks again every few seconds that its token still opens the server
(`still_valid`), so revoking a token closes its open streams too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from stepline import errors
from stepline.engine.access import Credentials, Principal, Role
from stepline.engine.inngest.signing import SigningKeys
from stepline.server.rate_limit import KeyBuckets
from stepline.server.throttle import FailureLimiter, client_address

COOKIE = "stepline_token"  # the dashboard's sign-in cookie: a token (`server.dashboard_auth`)
BOOTSTRAP = "bootstrap"  # the name of the configured API token
FILE_KEY = "event-key-file"  # the name events sent with a configured event key record
_STATE = "stepline_principal"


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """Who may send events and call the API. Empty means open (only allowed in `dev`).

    `api_token`: the bootstrap token (an `admin`). `closed`: credentials are required even
    without it (named tokens and keys only). `signing_keys`: SDK apps present the hash of
    their signing key (protocol §4.4) on the endpoints they call (`/fn/register`, `/v0/...`).
    `credentials`: the named tokens and keys (`create_app` sets them from its operations).
    `limiter` counts wrong API tokens per client address (see `server.throttle`).
    `intake_limit`: each event key's rate limit at `/e/` (see `server.rate_limit`), if any.
    """

    event_keys: tuple[str, ...] = ()
    api_token: str | None = None
    closed: bool = False
    signing_keys: SigningKeys | None = None
    credentials: Credentials | None = field(default=None, compare=False, repr=False)
    limiter: FailureLimiter = field(default_factory=FailureLimiter, compare=False, repr=False)
    intake_limit: KeyBuckets | None = field(default=None, compare=False, repr=False)

    @property
    def open(self) -> bool:
        """True without an API token or `closed`: `/v1` and the dashboard need no credentials."""
        return self.api_token is None and not self.closed

    @property
    def keys_required(self) -> bool:
        """True when intake needs an event key: keys configured, or the server `closed`."""
        return bool(self.event_keys) or self.closed

    def is_token(self, given: str) -> bool:
        """Whether `given` is the bootstrap token (compared in constant time; not throttled)."""
        return self.api_token is not None and _equal(given, self.api_token)

    def principal(self, given: str) -> Principal | None:
        """Who `given` (a presented token) is: the bootstrap token or a named one; not throttled."""
        if self.is_token(given):
            return Principal(name=BOOTSTRAP, role="admin")
        if self.credentials is None:
            return None
        return self.credentials.token(given)

    def identify(self, request: Request, given: str) -> Principal | None:
        """Who `given` (a token the request presented) is, throttled: None when wrong.

        Raises:
            TooManyFailures: This client presented too many wrong tokens lately.
        """
        address = client_address(request)
        self.limiter.check(address)
        found = self.principal(given)
        if found is None:
            self.limiter.failed(address)
        return found


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if the request has one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_event_key(settings: AuthSettings, key: str) -> str | None:
    """The name of the event key `key` (None when intake is open and `key` is no known key).

    Intake is open while the server has no event key at all (`stepline dev`); once it has one,
    configured or named (even revoked), it takes only valid keys.

    Raises:
        Unauthorized: Intake needs a key and `key` is none (or a revoked one).
    """
    if any(_equal(key, k) for k in settings.event_keys):
        return FILE_KEY
    credentials = settings.credentials
    name, made = (None, False) if credentials is None else credentials.key(key)
    if name is None and (settings.keys_required or made):
        raise errors.Unauthorized("Event key not found")
    return name


def forbidden(principal: Principal, needed: Role) -> errors.Forbidden:
    """The refusal of a principal whose role lacks `needed`, naming both."""
    return errors.Forbidden(
        f"this needs the {needed} role; the token {principal.name!r} has the {principal.role} role"
    )


def authorize(settings: AuthSettings, request: Request, needed: Role, *, way: str) -> Principal:
    """Who the request is, checked for `needed`; remembered on the request (`principal_of`).

    `way`: the actor's name on an open server ("api", "dashboard").

    Raises:
        Unauthorized: No token, or a wrong or revoked one.
        Forbidden: The token's role lacks `needed`.
        TooManyFailures: This client presented too many wrong tokens lately.
    """
    if settings.open:
        principal = Principal(name=way, role="admin")
    else:
        given = bearer(request)
        found = None if given is None else settings.identify(request, given)
        if found is None:
            raise errors.Unauthorized(
                "missing, wrong or revoked API token; send 'Authorization: Bearer <token>'"
            )
        principal = found
    if not principal.may(needed):
        raise forbidden(principal, needed)
    request.scope[_STATE] = principal
    return principal


def principal_of(request: Request) -> Principal | None:
    """The principal `authorize` found for this request, if it ran."""
    found = request.scope.get(_STATE)
    return found if isinstance(found, Principal) else None


def remember(request: Request, principal: Principal) -> None:
    """Record who the request is (for a check made elsewhere, such as the dashboard's)."""
    request.scope[_STATE] = principal


async def require_role(request: Request, needed: Role) -> Principal:
    """Who the request is, if its token has the role `needed` (for routes outside the tables).

    For example `/metrics`: `await require_role(request, "read")`. Open servers let everyone
    in. The store is read in the thread pool.

    Raises:
        Unauthorized: No token, or a wrong or revoked one (401).
        Forbidden: The token's role lacks `needed` (403).
        TooManyFailures: Too many wrong tokens from this address lately (429).
    """
    settings: AuthSettings = request.app.state.auth
    return await run_in_threadpool(authorize, settings, request, needed, way="api")


def check_token(settings: AuthSettings, request: Request, needed: Role = "read") -> None:
    """Raise unless the request's token has the role `needed` (always passes when open).

    Raises:
        Unauthorized: No token, or a wrong or revoked one.
        Forbidden: The token's role lacks `needed`.
        TooManyFailures: This client presented too many wrong tokens lately.
    """
    authorize(settings, request, needed, way="api")


def still_valid(request: Request) -> Callable[[], bool] | None:
    """For a response that lasts: whether the token `request` came with still opens the server.

    The token is the bearer header's or the dashboard's cookie; None on an open server (or an
    app without auth settings), where there is nothing to revoke.
    """
    settings: AuthSettings | None = getattr(request.app.state, "auth", None)
    if settings is None or settings.open:
        return None
    given = bearer(request) or request.cookies.get(COOKIE)
    return lambda: given is not None and settings.principal(given) is not None

"""Refuse requests that a web page, rather than the developer, makes to the server.

Any page a developer visits may send "simple" requests to any address, 127.0.0.1 included:
a POST with a `text/plain`, form or empty body and no custom header. The page cannot read the
answer, but the request takes effect (events sent, runs invoked or cancelled, functions
paused). A page whose host name re-resolves to 127.0.0.1 (DNS rebinding) can even read the
answers. Without an API token (`stepline dev`) nothing else stops such requests, so:

- `Host` must be a loopback name: `localhost`, `127.x.x.x` or `[::1]`, any port (else 421),
  or the unspecified address `0.0.0.0` / `[::]`, which connects to this machine (the Inngest
  SDKs' test tooling calls its server at `http://0.0.0.0:<port>`) and which no attacker's
  DNS name can be rebound to;
- `Origin`, when sent, must be this server's own origin (else 403);
- a POST, PUT, PATCH or DELETE to `/e/`, `/v1/`, `/v0/` or `/fn/` (the SDK endpoints) must
  carry JSON, `Content-Type: application/json`, or no body at all (else 415).

The SDKs, the CLI and scripts send JSON and no `Origin`, and the dashboard's own pages post
from its origin, so none of them is affected. With a token, the server answers to real host
names (so `Host` is not checked) and the token stops foreign requests; a foreign `Origin` is
still refused, since no other site's page has a reason to call this server.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from stepline.server.errors import refusal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_PATHS = ("/e/", "/v1/", "/v0/", "/fn/")
_THIS_MACHINE = ("0.0.0.0", "::")  # noqa: S104  # unspecified addresses: not names


def is_loopback(host: str) -> bool:
    """True for "localhost", 127.0.0.0/8 and ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str | None:
    """The name in a `Host` header, without port or IPv6 brackets (None if malformed)."""
    if "@" in host or "/" in host:
        return None
    try:
        return urlsplit(f"//{host}").hostname
    except ValueError:
        return None


def _same_origin(origin: str, host: str | None) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (host or "").lower()


def _sends_json(headers: Headers) -> bool:
    """JSON by its media type (`application/json`, `application/*+json`), or no body."""
    content_type = headers.get("content-type")
    if content_type is None:
        return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def check(headers: Headers, method: str, path: str, *, open_server: bool) -> tuple[int, str] | None:
    """Why a request is refused, as (status, message); None when it may proceed."""
    host = headers.get("host")
    if open_server and host is not None:
        name = _host_name(host)
        if name is None or not (is_loopback(name) or name in _THIS_MACHINE):
            return 421, (
                f"this server has no API token, so it answers only to localhost, 127.0.0.1, "
                f"[::1] and 0.0.0.0, not to {host!r}; start it with --api-token to serve "
                "other names"
            )
    origin = headers.get("origin")
    if origin is not None and not _same_origin(origin, host):
        return 403, f"requests from pages of other sites ({origin}) are refused"
    posts = method not in SAFE_METHODS and path.startswith(JSON_PATHS)
    if open_server and posts and not _sends_json(headers):
        given = headers.get("content-type", "none")
        return 415, (
            f"send JSON with 'Content-Type: application/json' (got {given!r}); "
            "without an API token other types are refused, since web pages can send them"
        )
    return None


class CrossSiteGuard:
    """ASGI middleware applying `check` to every HTTP request."""

    def __init__(self, app: ASGIApp, *, open_server: bool) -> None:
        self.app = app
        self.open_server = open_server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request at once; pass the others on."""
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            refused = check(headers, scope["method"], scope["path"], open_server=self.open_server)
            if refused is not None:
                status, message = refused
                response = refusal(scope["path"], headers.get("accept", ""), status, message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""Who may use the dashboard, and the checks that stop cross-site request forgery.

Unless the server is open, every dashboard page needs an API token (the bootstrap token or a
named one, of any role), either as `Authorization: Bearer <token>` (scripts) or as the
`stepline_token` cookie that the form at `/login` sets. The cookie is HttpOnly (page scripts
cannot read it), SameSite=Strict (browsers never attach it to a request another site starts)
and Secure when served over HTTPS; it lasts until the browser closes or `/logout`. The token
is looked up on every request, so revoking it signs its holders out at once. Pages show what
its role allows (a `read` token sees no action buttons, and is refused the actions: 403); a
token limited to some functions cannot sign in (it is for the API). Sign-ins, right and wrong,
go to the audit log, the actor named `dashboard:<token name>`.

Forms post to the dashboard with that cookie, so each post is also checked for forgery: its
`Origin` header (or, when a browser leaves it out, `Referer`) must name this server's host.
Browsers send `Origin` on every form post, so a post from another site is refused even by a
browser that ignores SameSite. A post with neither header is accepted only with the bearer
header, which browsers never add by themselves. Without a token (`stepline dev` on loopback)
the dashboard is open, and a post naming another origin is still refused.

Wrong tokens, whichever way they come (form, cookie, header), count against the client's
address (`server.throttle`): after too many, it gets 429 until the window passes. A cookie
that no longer opens the dashboard (the token changed) is deleted on the way to `/login`.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline.engine.access import Principal
from stepline.engine.audit import Audit
from stepline.server.auth import COOKIE, AuthSettings, bearer, principal_of
from stepline.server.errors import retry_headers
from stepline.server.forms import read_form
from stepline.server.templating import page
from stepline.server.throttle import TooManyFailures, client_address

OPEN = "dashboard"  # the actor on an open server
WRONG_TOKEN = "That token is not an API token of this server (or it was revoked)."  # noqa: S105
LIMITED = "That token is limited to some functions: it opens the API, not the dashboard."


def actor(principal: Principal) -> str:
    """The name the dashboard's actions record: `dashboard:<token name>` (open: "dashboard")."""
    return principal.name if principal.name == OPEN else f"{OPEN}:{principal.name}"


def acting(request: Request) -> str:
    """Who acts in this dashboard request (see `actor`), as `Dashboard._guard` found."""
    found = principal_of(request)
    return OPEN if found is None else actor(found)


def sender(request: Request) -> str | None:
    """Who sends events from this request: `acting`, but None on an open server."""
    found = principal_of(request)
    return None if found is None or found.name == OPEN else actor(found)


def safe_next(target: str | None) -> str:
    """A local path to go back to after login; anything else (other hosts too) becomes "/"."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login page, coming back to this page afterwards; drops a stale cookie."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?{urlencode({'next': here})}", status_code=303)
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


class DashboardAuth:
    """The dashboard's sign-in, over the API tokens of `AuthSettings`."""

    def __init__(self, settings: AuthSettings, audit: Audit) -> None:
        self.settings = settings
        self.audit = audit

    @property
    def required(self) -> bool:
        """True unless the server is open."""
        return not self.settings.open

    def _bearer(self, request: Request) -> bool:
        given = bearer(request)
        return given is not None and self.settings.principal(given) is not None

    def who(self, request: Request) -> Principal | None:
        """Who is signed in (header or cookie); everyone is an admin on an open server.

        None for no token, a wrong or revoked one, or one limited to some functions.

        Raises:
            TooManyFailures: The client presented too many wrong tokens lately.
        """
        if self.settings.open:
            return Principal(name=OPEN, role="admin")
        given = bearer(request) or request.cookies.get(COOKIE)
        found = None if given is None else self.settings.identify(request, given)
        return found if found is not None and found.functions is None else None

    def cross_site(self, request: Request) -> bool:
        """True when the request's `Origin` (or `Referer`) names another host."""
        source = request.headers.get("origin") or request.headers.get("referer")
        return source is not None and urlsplit(source).netloc != request.headers.get("host", "")

    def forged(self, request: Request) -> bool:
        """True when a form post may be forged (see the module docstring)."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if source is None:
            return self.required and not self._bearer(request)
        return self.cross_site(request)

    async def login_page(self, request: Request) -> Response:
        """GET /login: the token form (or straight on when no token is needed)."""
        target = safe_next(request.query_params.get("next"))
        if not self.required:
            return RedirectResponse(target, status_code=303)
        return self._form(target, error=None, status=200)

    async def login(self, request: Request) -> Response:
        """POST /login: check the token; on success set the cookie and go to `next`.

        Each sign-in and each refused token is audited (`login`, `login.failed`).
        """
        if self.settings.open:
            return RedirectResponse("/", status_code=303)
        if self.cross_site(request):
            return self._form("/", error="This form was posted from another site.", status=403)
        fields = await read_form(request)
        target = safe_next(fields.get("next"))
        token = fields.get("token", "")
        try:
            found = await run_in_threadpool(self.settings.identify, request, token)
        except TooManyFailures as exc:
            return self._form(target, error=f"{exc}.", status=429, headers=retry_headers(exc))
        if found is None or found.functions is not None:
            await self._audit_failure(request, found)
            error = WRONG_TOKEN if found is None else LIMITED
            return self._form(target, error=error, status=401 if found is None else 403)
        await run_in_threadpool(
            lambda: self.audit.record("login", actor=actor(found), details={"role": found.role})
        )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def _audit_failure(self, request: Request, found: Principal | None) -> None:
        details = {"address": client_address(request)}
        name = "dashboard:?" if found is None else actor(found)
        await run_in_threadpool(
            lambda: self.audit.record("login.failed", actor=name, details=details)
        )

    async def logout(self, request: Request) -> Response:
        """POST /logout: forget the cookie."""
        if self.forged(request):
            return self._form("/", error="This form was posted from another site.", status=403)
        response = RedirectResponse("/login" if self.required else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _form(
        self,
        target: str,
        *,
        error: str | None,
        status: int,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return page(
            "login.html",
            {"title": "Sign in", "nav": "", "next": target, "error": error, "signed_in": False},
            status=status,
            headers=headers,
        )

"""Who may use the dashboard, and the checks that stop cross-site request forgery.

With an API token configured (`AuthSettings.api_token`), every dashboard page needs it, either
as `Authorization: Bearer <token>` (scripts) or as the `stepline_token` cookie that the form at
`/login` sets. The cookie is HttpOnly (page scripts cannot read it), SameSite=Strict (browsers
never attach it to a request another site starts) and Secure when served over HTTPS; it lasts
until the browser closes or `/logout`.

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

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stepline.server.auth import AuthSettings, bearer
from stepline.server.errors import retry_headers
from stepline.server.forms import read_form
from stepline.server.templating import page
from stepline.server.throttle import TooManyFailures

COOKIE = "stepline_token"


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
    """The dashboard's sign-in, over the API token of `AuthSettings`."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    @property
    def required(self) -> bool:
        """True when a token is configured."""
        return self.settings.api_token is not None

    def _bearer(self, request: Request) -> bool:
        given = bearer(request)
        return given is not None and self.settings.is_token(given)

    def signed_in(self, request: Request) -> bool:
        """True when no token is needed, or the request carries it (header or cookie).

        Raises:
            TooManyFailures: The client presented too many wrong tokens lately.
        """
        if self.settings.api_token is None:
            return True
        given = bearer(request) or request.cookies.get(COOKIE)
        return given is not None and self.settings.token_matches(request, given)

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
        """POST /login: check the token; on success set the cookie and go to `next`."""
        token = self.settings.api_token
        if token is None:
            return RedirectResponse("/", status_code=303)
        if self.cross_site(request):
            return self._form("/", error="This form was posted from another site.", status=403)
        fields = await read_form(request)
        target = safe_next(fields.get("next"))
        try:
            right = self.settings.token_matches(request, fields.get("token", ""))
        except TooManyFailures as exc:
            return self._form(target, error=f"{exc}.", status=429, headers=retry_headers(exc))
        if not right:
            return self._form(target, error="That token is not the API token.", status=401)
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

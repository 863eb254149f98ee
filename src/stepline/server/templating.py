"""The dashboard's Jinja2 environment: package templates, autoescaped, strict about names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

_ENV = Environment(
    loader=PackageLoader("stepline.server", "templates"),
    # Every value is escaped unless a template says otherwise (none does).
    autoescape=True,
    # A misspelt name fails the render (and the tests) instead of printing nothing.
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# What the signed-in token's role shows (see `Dashboard._context`); fragments rendered without
# a page's context (live updates) are given `can_operate` by their handlers.
_ENV.globals.update(can_operate=True, is_admin=False)


def render(name: str, context: Mapping[str, Any]) -> str:
    """Render a template (a page or a fragment) to text."""
    return _ENV.get_template(name).render(context)


def page(
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a template into an HTML response that no cache keeps."""
    response = HTMLResponse(render(name, context), status_code=status, headers=headers)
    response.headers.setdefault("cache-control", "no-store")
    return response

"""Options and start-up shared by the commands that serve HTTP (`dev`, `server`)."""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import click
import uvicorn
from starlette.applications import Starlette

from stepline import errors
from stepline.server.auth import AuthSettings

_OPTIONS = (
    click.option(
        "--host",
        envvar="STEPLINE_HOST",
        default="127.0.0.1",
        show_default=True,
        show_envvar=True,
        help="Address to listen on.",
    ),
    click.option(
        "--port",
        envvar="STEPLINE_PORT",
        default=8288,
        show_default=True,
        type=click.IntRange(1, 65535),
        show_envvar=True,
        help="Port to listen on.",
    ),
    click.option(
        "--event-key",
        "event_keys",
        envvar="STEPLINE_EVENT_KEY",
        multiple=True,
        show_envvar=True,
        help="Accept events only at /e/<this key> (repeatable; env: space-separated).",
    ),
    click.option(
        "--api-token",
        envvar="STEPLINE_API_TOKEN",
        default=None,
        show_envvar=True,
        help="Require 'Authorization: Bearer <token>' on /v1 and the dashboard.",
    ),
)


def serve_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --host, --port, --event-key and --api-token to a command."""
    return functools.reduce(lambda c, option: option(c), reversed(_OPTIONS), command)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_settings(
    host: str, event_keys: tuple[str, ...], api_token: str | None, *, open_allowed: bool
) -> AuthSettings:
    """Keys and token; refuses to run open unless allowed, and never open off loopback."""
    keys = tuple(key for key in event_keys if key)
    if keys and api_token:
        return AuthSettings(event_keys=keys, api_token=api_token)
    if not is_loopback(host):
        raise errors.ConfigurationError(
            f"refusing to listen on {host} without --event-key and --api-token"
        )
    if not open_allowed:
        raise errors.ConfigurationError(
            "refusing to start without --event-key and --api-token "
            "(STEPLINE_EVENT_KEY, STEPLINE_API_TOKEN); add --insecure to run open on loopback"
        )
    return AuthSettings(event_keys=keys, api_token=api_token)


def configure_logging() -> None:
    """Timestamped INFO logs on stderr, without the chatter of libraries."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(app: Starlette, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    # Live pages hold streams open; do not let them delay a shutdown for long.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)

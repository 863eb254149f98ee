"""Options and start-up shared by the commands that serve HTTP (`dev`, `server`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.applications import Starlette

from stepline.cli._secrets import Secrets

_SECRET_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
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
        "--event-key-file",
        envvar="STEPLINE_EVENT_KEY_FILE",
        type=_SECRET_FILE,
        show_envvar=True,
        help="Read event keys from this file, one per line (keeps them out of `ps`).",
    ),
    click.option(
        "--api-token",
        envvar="STEPLINE_API_TOKEN",
        default=None,
        show_envvar=True,
        help="Require 'Authorization: Bearer <token>' on /v1 and the dashboard.",
    ),
    click.option(
        "--api-token-file",
        envvar="STEPLINE_API_TOKEN_FILE",
        type=_SECRET_FILE,
        show_envvar=True,
        help="Read the API token from this file (keeps it out of `ps`).",
    ),
)


def serve_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --host, --port and the secret options to a command, which receives `secrets`."""

    @functools.wraps(command)
    def with_secrets(
        *,
        event_keys: tuple[str, ...],
        event_key_file: Path | None,
        api_token: str | None,
        api_token_file: Path | None,
        **options: Any,
    ) -> Any:
        secrets = Secrets(
            event_keys=event_keys,
            event_key_file=event_key_file,
            api_token=api_token,
            api_token_file=api_token_file,
        )
        return command(secrets=secrets, **options)

    return functools.reduce(lambda c, option: option(c), reversed(_OPTIONS), with_secrets)


def local_url(host: str, port: int) -> str:
    """The URL this process reaches its own server at (a wildcard host is reached on loopback)."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


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

"""Options and start-up shared by the commands that serve HTTP (`dev`, `server`)."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.applications import Starlette

from stepline import errors
from stepline.cli._secrets import Secrets
from stepline.server import sse

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


def listen(host: str, port: int) -> socket.socket:
    """Bind the server's socket now, before anything says the server is up.

    Raises:
        errors.ConfigurationError: The port is taken (naming it and how to choose another)
            or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of a socket
    # that says it is TCP. Without it, a keep-alive client's requests sent back to back each
    # waited about 40 ms (Nagle's algorithm against the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart at once
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise errors.ConfigurationError(
                f"port {port} on {host} is in use; stop what holds it, or choose another "
                "port with --port or STEPLINE_PORT"
            ) from exc
        raise errors.ConfigurationError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, which ends the app's live streams as soon as it starts stopping.

    Without this, each open dashboard tab's stream would hold the shutdown until uvicorn's
    grace period ran out and it cancelled them (one traceback per stream). The signal that
    stopped it is not raised again on leaving: the stop was graceful (see `serve`).
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # uvicorn would raise them again on leaving

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        sse.close_streams(self._app)
        await super().shutdown(sockets)


def serve(app: Starlette, sock: socket.socket, cleanup: Callable[[], None]) -> None:
    """Serve on the bound `sock` until SIGINT or SIGTERM, then `cleanup()` and exit 0 at once.

    Exiting skips the interpreter's teardown of every module, which takes about half a
    second and has nothing left to do once `cleanup` stopped the engine and closed the store.
    """
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    try:
        _Server(config, app).run(sockets=[sock])
    finally:
        cleanup()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

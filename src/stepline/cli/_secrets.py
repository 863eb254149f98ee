"""Event keys and the API token of a serving command: from flags, environment or files.

A secret on a command line is visible to every user of the machine (`ps`), so each can also
come from an environment variable or a file (`--api-token-file`, `--event-key-file`, one key
per line). Outside `stepline dev` on loopback, each must be at least `MIN_SECRET_LENGTH`
characters, and an event key (handed to every app that sends events) may never be the API
token (which opens the whole API). A server whose database holds named API tokens (`stepline
tokens create`) needs no `--api-token`, nor `--event-key` if it holds named event keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stepline import errors
from stepline.server.auth import AuthSettings
from stepline.server.cross_site import is_loopback

MIN_SECRET_LENGTH = 16
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True, kw_only=True)
class Secrets:
    """The secret options as given: values, and files to read them from."""

    event_keys: tuple[str, ...] = ()
    event_key_file: Path | None = None
    api_token: str | None = None
    api_token_file: Path | None = None

    def keys(self) -> tuple[str, ...]:
        """The event keys: `--event-key` values and the lines of `--event-key-file`."""
        keys = [key for key in self.event_keys if key]
        if self.event_key_file is not None:
            lines = _read(self.event_key_file, "--event-key-file").splitlines()
            keys += [line.strip() for line in lines if line.strip()]
        return tuple(keys)

    def token(self) -> str | None:
        """The API token: `--api-token`, or the content of `--api-token-file`."""
        if self.api_token_file is None:
            return self.api_token or None
        if self.api_token:
            raise errors.ConfigurationError("give --api-token or --api-token-file, not both")
        token = _read(self.api_token_file, "--api-token-file").strip()
        if not token:
            raise errors.ConfigurationError(f"--api-token-file: {self.api_token_file} is empty")
        return token


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigurationError(f"{option}: cannot read {path}: {exc}") from None


def _check_strength(keys: tuple[str, ...], token: str | None) -> None:
    given = [("--event-key", key) for key in keys]
    if token is not None:
        given.append(("--api-token", token))
    for option, value in given:
        if len(value) < MIN_SECRET_LENGTH:
            raise errors.ConfigurationError(
                f"{option} must be at least {MIN_SECRET_LENGTH} characters, not {len(value)}; "
                f"make one with: {GENERATE}"
            )


def auth_settings(
    host: str, secrets: Secrets, *, dev: bool, open_allowed: bool, named: bool = False
) -> AuthSettings:
    """Keys and token, checked; refuses to run open unless allowed, and never off loopback.

    `named`: the database holds a named API token that is not revoked; a server not allowed
    to run open then needs no `--api-token` (nor `--event-key`: named keys can be made).

    Raises:
        ConfigurationError: A secret is unreadable, too short (outside `dev` on loopback) or
            shared between an event key and the token; or the server would run open where
            it may not.
    """
    keys, token = secrets.keys(), secrets.token()
    if token is not None and token in keys:
        raise errors.ConfigurationError(
            "--event-key and --api-token must differ: every app that sends events holds the "
            "event key, while the token opens the whole API"
        )
    if not (dev and is_loopback(host)):
        _check_strength(keys, token)
    if keys and token:
        return AuthSettings(event_keys=keys, api_token=token)
    if named and not open_allowed:
        return AuthSettings(event_keys=keys, api_token=token, closed=True)
    if not is_loopback(host):
        raise errors.ConfigurationError(
            f"refusing to listen on {host} without --event-key and --api-token (or named "
            "tokens: stepline tokens create NAME --role admin --db DB)"
        )
    if not open_allowed:
        raise errors.ConfigurationError(
            "refusing to start without --event-key and --api-token "
            "(STEPLINE_EVENT_KEY, STEPLINE_API_TOKEN, or their _FILE variants) or a named "
            "token (stepline tokens create NAME --role admin --db DB); add --insecure "
            "to run open on loopback"
        )
    return AuthSettings(event_keys=keys, api_token=token)

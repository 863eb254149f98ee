"""Options for Inngest SDK apps: the signing key (and its fallback), the calls' timeout.

The signing key is shared with SDK apps: `--signing-key`, and its fallback for key rotation.

Calls to SDK apps are signed with it and SDK apps authenticate with its hash; without one,
Stepline speaks to apps in dev mode, as the Inngest dev server does. The SDKs' own variable
names (`INNGEST_SIGNING_KEY`, `INNGEST_SIGNING_KEY_FALLBACK`) are read too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from stepline.engine.inngest.driver import HttpSettings
from stepline.engine.inngest.signing import SigningKeys

_OPTIONS = (
    click.option(
        "--signing-key",
        envvar=["STEPLINE_SIGNING_KEY", "INNGEST_SIGNING_KEY"],
        default=None,
        show_envvar=True,
        help="Key shared with SDK apps (signkey-<env>-<hex> or hex); prefer the env variable.",
    ),
    click.option(
        "--signing-key-fallback",
        envvar=["STEPLINE_SIGNING_KEY_FALLBACK", "INNGEST_SIGNING_KEY_FALLBACK"],
        default=None,
        show_envvar=True,
        help="A second key accepted while apps move to a new one (rotation).",
    ),
)


def signing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the signing key options to a command, which receives `signing_keys`."""

    @functools.wraps(command)
    def with_keys(*, signing_key: str | None, signing_key_fallback: str | None, **rest: Any) -> Any:
        keys = None
        if signing_key:
            keys = SigningKeys(signing_key, signing_key_fallback or None)
        elif signing_key_fallback:
            raise click.UsageError("--signing-key-fallback needs --signing-key")
        return command(signing_keys=keys, **rest)

    return functools.reduce(lambda c, option: option(c), reversed(_OPTIONS), with_keys)


sdk_timeout_option = click.option(
    "--sdk-timeout",
    "sdk_timeout",
    envvar="STEPLINE_SDK_TIMEOUT",
    default=HttpSettings().request_timeout_seconds,
    show_default=True,
    type=click.FloatRange(min=1.0),
    show_envvar=True,
    help="Seconds to wait for an SDK app's answer to one call (a step may run that long).",
)

sdk_urls_option = click.option(
    "--sdk-url",
    "sdk_urls",
    envvar="STEPLINE_SDK_URL",
    multiple=True,
    show_envvar=True,
    help="Serve URL of an Inngest SDK app to sync, now and every 5s (repeatable).",
)

"""`--retain`: the default retention of ended runs, for the commands that run the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from stepline import errors
from stepline._retention import FOREVER, Retention, parse_retention

F = TypeVar("F", bound=Callable[..., Any])


def _retention(ctx: click.Context, param: click.Parameter, value: str) -> Retention:
    try:
        return parse_retention(value, field="--retain")
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.reason, ctx, param) from None


def retain_option(shown_by: str) -> Callable[[F], F]:
    """The `--retain` option (STEPLINE_RETAIN, default 30d), given as `retain`: a `Retention`.

    `shown_by` ends its help: what the process does with it.
    """
    return click.option(
        "--retain",
        "retain",
        envvar="STEPLINE_RETAIN",
        default="30d",
        show_default=True,
        show_envvar=True,
        metavar="DURATION",
        callback=_retention,
        help=f'Keep ended runs this long (30d, 12h, "{FOREVER}"); a retention= wins. {shown_by}',
    )

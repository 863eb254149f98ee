"""`--output-inline-limit` and `--max-output-size`: how large outputs are kept (workers, dev)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from stepline import errors
from stepline._sizes import format_size, parse_size
from stepline.engine.outputs import DEFAULT_INLINE_BYTES, DEFAULT_MAX_BYTES, OutputLimits


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_size(value, field=f"--{param.name}".replace("_", "-"))
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.reason, ctx, param) from None


_OPTIONS = (
    click.option(
        "--output-inline-limit",
        envvar="STEPLINE_OUTPUT_INLINE_LIMIT",
        default=format_size(DEFAULT_INLINE_BYTES).replace(" ", ""),
        show_default=True,
        show_envvar=True,
        metavar="SIZE",
        callback=_size,
        help="Step and run outputs larger than this are kept in the blob store, not in their row.",
    ),
    click.option(
        "--max-output-size",
        envvar="STEPLINE_MAX_OUTPUT_SIZE",
        default=format_size(DEFAULT_MAX_BYTES).replace(" ", ""),
        show_default=True,
        show_envvar=True,
        metavar="SIZE",
        callback=_size,
        help="A step output larger than this fails its step (not retried).",
    ),
)


def output_limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the output size options to a command, which receives `outputs`: `OutputLimits`."""

    @functools.wraps(command)
    def with_limits(*, output_inline_limit: int, max_output_size: int, **rest: Any) -> Any:
        try:
            limits = OutputLimits(inline_bytes=output_inline_limit, max_bytes=max_output_size)
        except errors.ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
        return command(outputs=limits, **rest)

    return functools.reduce(lambda c, option: option(c), reversed(_OPTIONS), with_limits)

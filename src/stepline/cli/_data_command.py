"""Commands that take event data as free `--key=value` flags after a name (`send`, `trigger`).

Their own options keep their meaning wherever they stand, so a flag that collides with one is
never taken for data without saying so: data keys named like an option go after `--`
(`stepline send NAME -- --data=x`). The server options (`--url`, `--token`, `--event-key`)
are refused after the name, where they read as data; they go before it or in their
environment variables. `--data` that is not a JSON object is refused with the same advice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from click.core import ParameterSource

from stepline import errors
from stepline.cli._flags import parse_json_object
from stepline.client import Client

SERVER_OPTIONS = ("--url", "--token", "--event-key")


class DataCommand(click.Command):
    """A click command whose arguments after its one positional are `--key=value` data flags.

    Refuses a server option given after the positional (see the module docstring).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "context_settings", {"ignore_unknown_options": True, "allow_extra_args": True}
        )
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse server options after the positional, then parse as click does."""
        name, late = self._server_option_after_name(ctx, args)
        if late is not None:
            key = late.lstrip("-").replace("-", "_")
            raise click.UsageError(
                f"{late} after {name}: is it the server option or event data? "
                f"Give the option before {name} (or in STEPLINE_{key.upper()}); "
                f"a data key named {key} goes after --: {ctx.command_path} {name} -- {late}=...",
                ctx,
            )
        return super().parse_args(ctx, args)

    def _server_option_after_name(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str, str | None]:
        """The positional's metavar, and the first server option after the positional if any."""
        takes_value = {
            opt
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for opt in param.opts
        }
        positional = next(p for p in self.params if isinstance(p, click.Argument))
        metavar = positional.make_metavar(ctx)
        rest = iter(args)
        for arg in rest:
            if arg == "--":
                break
            if arg in takes_value:
                next(rest, None)  # the option's value
            elif not arg.startswith("-"):
                return metavar, _first_server_option(rest)
        return metavar, None


def _first_server_option(args: Iterator[str]) -> str | None:
    for arg in args:
        if arg == "--":
            return None
        name = arg.partition("=")[0]
        if name in SERVER_OPTIONS:
            return name
    return None


def refuse_timeout_without_wait(ctx: click.Context, name: str, wait: bool) -> None:
    """Refuse `--timeout` given without `--wait`: it was probably meant as data.

    Raises:
        UsageError: `--timeout` is on the command line and `--wait` is not.
    """
    if not wait and ctx.get_parameter_source("timeout_seconds") is ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--timeout is this command's option for --wait; a data key named timeout goes "
            f"after --: {ctx.command_path} {name} -- --timeout=...",
            ctx,
        )


def data_option(text: str | None, command: str) -> dict[str, Any]:
    """The `--data` option's JSON object (`{}` without it).

    Raises:
        InvalidInput: `text` is not a JSON object; the message says where a data key named
            `data` goes instead.
    """
    if text is None:
        return {}
    try:
        return parse_json_object(text, "--data")
    except errors.InvalidInput as exc:
        raise errors.InvalidInput(
            f"{exc.reason}; --data is this command's option for a JSON object of event data, "
            f"a data key named data goes after --: {command} -- --data=...",
            "--data",
        ) from None


@contextmanager
def naming_known_functions(client: Client, function_id: str) -> Iterator[None]:
    """Turn a `NotFound` for `function_id` into one that lists the known function ids.

    The server names them itself, but an id with '/' never reaches its function routes.
    """
    try:
        yield
    except errors.NotFound:
        known = ", ".join(sorted(fn["id"] for fn in client.functions())) or "none registered"
        hint = (
            f"; function ids have no '/': to send the event {function_id}, use "
            f"`stepline send {function_id}`"
            if "/" in function_id
            else ""
        )
        raise errors.NotFound(f"unknown function {function_id!r} (known: {known}){hint}") from None

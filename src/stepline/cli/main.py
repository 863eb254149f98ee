"""The `stepline` command: one group, a module per command group, errors mapped once."""

from __future__ import annotations

import importlib
import os
import sys

import click

from stepline import errors
from stepline.cli.access import audit, keys, tokens
from stepline.cli.apps_cmd import apps
from stepline.cli.completion import completion
from stepline.cli.db import db
from stepline.cli.events import events, send
from stepline.cli.functions import functions, trigger
from stepline.cli.runs import runs
from stepline.cli.workers import workers

# The commands that serve or execute, imported when called: they load the server and engine,
# which would double the start-up time of every other command.
_SERVING = {
    "dev": "stepline.cli.dev",
    "server": "stepline.cli.server",
    "worker": "stepline.cli.worker",
}


class _Commands(click.Group):
    """The `stepline` group, whose serving commands are imported only when called."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, the serving ones included."""
        return sorted({*super().list_commands(ctx), *_SERVING})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named `cmd_name`, importing a serving command's module first."""
        if cmd_name in _SERVING and cmd_name not in self.commands:
            module = importlib.import_module(_SERVING[cmd_name])
            self.add_command(getattr(module, cmd_name))
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(package_name="stepline", message="stepline %(version)s")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="STEPLINE_VERBOSE",
    show_envvar=True,
    help="Show the cause chain of errors, and tracebacks in `runs show`.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Stepline: durable functions for Python."""
    ctx.obj = {"verbose": verbose}


for command in (
    workers,
    send,
    trigger,
    runs,
    events,
    functions,
    apps,
    db,
    tokens,
    keys,
    audit,
    completion,
):
    cli.add_command(command)


def _verbose() -> bool:
    # The group's context is gone by the time an error reaches main(); read what it read.
    flag = os.environ.get("STEPLINE_VERBOSE", "").lower() in ("1", "true", "yes", "on")
    return flag or "-v" in sys.argv or "--verbose" in sys.argv


def main() -> None:
    """Entry point: run the CLI; any Stepline error prints one line and exits with code 2."""
    try:
        # The completion variable is fixed, so that `python -m stepline.cli.main` completes too.
        code = cli(standalone_mode=False, complete_var="_STEPLINE_COMPLETE")
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except errors.SteplineError as exc:
        click.echo(f"error: {exc}", err=True)
        if _verbose():
            cause = exc.__cause__
            while cause is not None:
                click.echo(f"  caused by: {cause!r}", err=True)
                cause = cause.__cause__
        sys.exit(2)
    # Without standalone mode, click returns a command's `ctx.exit(code)` instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

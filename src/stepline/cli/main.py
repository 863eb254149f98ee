"""The `stepline` command: one group, a module per command group, errors mapped once."""

from __future__ import annotations

import sys

import click

from stepline import errors
from stepline.cli.dev import dev


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Show the cause chain of errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Stepline: durable functions for Python."""
    ctx.obj = {"verbose": verbose}


cli.add_command(dev)


def main() -> None:
    """Entry point: run the CLI; any Stepline error prints one line and exits with code 2."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except errors.SteplineError as exc:
        click.echo(f"error: {exc}", err=True)
        if "-v" in sys.argv or "--verbose" in sys.argv:
            cause = exc.__cause__
            while cause is not None:
                click.echo(f"  caused by: {cause!r}", err=True)
                cause = cause.__cause__
        sys.exit(2)

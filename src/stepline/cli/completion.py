"""`stepline completion SHELL`: the script that makes a shell complete stepline's commands."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    r"""Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash, in ~/.bashrc:                 eval "$(stepline completion bash)"
    zsh, in ~/.zshrc:                   eval "$(stepline completion zsh)"
    fish, in ~/.config/fish/config.fish: stepline completion fish | source
    """
    complete = get_completion_class(shell)
    assert complete is not None  # every name in SHELLS is one of click's
    root = ctx.find_root().command
    click.echo(complete(root, {}, "stepline", "_STEPLINE_COMPLETE").source())

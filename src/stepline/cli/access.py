"""`stepline tokens`, `stepline keys` and `stepline audit`: credentials and the audit log.

They talk to the server with an admin token (`--token`), or act on the database directly
with `--db` (no server needed: how the first admin token is made).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click
from rich import box
from rich.table import Table

from stepline.cli import _format
from stepline.cli._connect import limit_option, output_options, print_table, with_client
from stepline.client import Client

_DB = click.option(
    "--db",
    envvar="STEPLINE_DB",
    default=None,
    show_envvar=True,
    help="Act on this database (SQLite file or postgresql:// URL) instead of a server.",
)


def with_admin_client(command: Callable[..., Any]) -> Callable[..., Any]:
    """`with_client` plus `--db`: a local client on that database when it is given."""

    @functools.wraps(command)
    def call(client: Client, *, db: str | None, **kwargs: Any) -> Any:
        if db is None:
            return command(client, **kwargs)
        with Client.local(db) as local:
            return command(local, **kwargs)

    return _DB(with_client(call))


def _state(item: dict[str, Any]) -> str:
    return "revoked " + _format.moment_short(item["revoked_at"]) if item["revoked_at"] else "active"


def _credentials_table(items: list[dict[str, Any]], *, tokens: bool) -> Table:
    zone = _format.zone()
    columns = ["name", "role", "functions"] if tokens else ["name"]
    table = Table(
        *columns,
        f"created ({zone})",
        "by",
        f"last used ({zone})",
        "state",
        box=box.SIMPLE_HEAD,
    )
    for item in items:
        cells = [item["name"]]
        if tokens:
            cells += [item["role"], ", ".join(item["functions"] or ["all"])]
        table.add_row(
            *cells,
            _format.moment_short(item["created_at"]),
            item["created_by"] or "-",
            _format.moment_short(item["last_used_at"]),
            _state(item),
        )
    return table


def _show_created(created: dict[str, Any], noun: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(created, indent=2))
        return
    item = created.get("token") or created["key"]
    what = f"{noun} {item['name']!r}"
    if "role" in item:
        limit = ", ".join(item["functions"]) if item["functions"] else "every function"
        what += f" (role {item['role']}, {limit})"
    click.echo(f"Created {what}. Its secret, shown this once (only its hash is stored):")
    click.echo(created["secret"])


_REASON = click.option(
    "--reason",
    metavar="TEXT",
    envvar="STEPLINE_REASON",
    show_envvar=True,
    help="Why (optional): kept in the audit log.",
)


def _list_and_revoke(
    group: click.Group,
    *,
    noun: str,
    listed: Callable[[Client], list[dict[str, Any]]],
    revoke: Callable[[Client, str, str | None], object],
    list_help: str,
    refused_by: str,
) -> None:
    """Add `list` and `revoke` commands for one kind of credential (`noun`) to `group`."""

    @group.command("list", help=list_help)
    @output_options
    @with_admin_client
    def list_credentials(client: Client, as_json: bool) -> None:
        found = listed(client)
        if as_json:
            click.echo(json.dumps(found, indent=2))
            return
        print_table(_credentials_table(found, tokens=noun == "API token"))

    @group.command(
        "revoke", help=f"Revoke the {noun} NAME: {refused_by} refuses it from its next request on."
    )
    @click.argument("name")
    @_REASON
    @with_admin_client
    def revoke_credential(client: Client, name: str, reason: str | None) -> None:
        revoke(client, name, reason)
        click.echo(f"Revoked {noun} {name!r}.")


@click.group()
def tokens() -> None:
    """Manage named API tokens: each has a role (read, operate, admin), shown once at creation.

    read: runs, events, functions, workers (a page polling a job's status); operate: also
    send, invoke, cancel, replay, pause; admin: also tokens, event keys and the audit log.
    """


@tokens.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["read", "operate", "admin"]),
    required=True,
    envvar="STEPLINE_ROLE",
    show_envvar=True,
    help="What the token may do.",
)
@click.option(
    "--function",
    "functions",
    multiple=True,
    envvar="STEPLINE_FUNCTIONS",
    show_envvar=True,
    help="Limit the token to this function's runs (repeatable; env: space-separated).",
)
@output_options
@with_admin_client
def create_token(
    client: Client, name: str, role: str, functions: tuple[str, ...], as_json: bool
) -> None:
    """Create the API token NAME and print its secret (the only time it is shown)."""
    created = client.create_token(name, role=role, functions=list(functions) or None)
    _show_created(created, "API token", as_json)


_list_and_revoke(
    tokens,
    noun="API token",
    listed=Client.tokens,
    revoke=lambda client, name, reason: client.revoke_token(name, reason=reason),
    list_help="List the API tokens: role, functions, creation, last use, revoked or not.",
    refused_by="every server",
)


@click.group()
def keys() -> None:
    """Manage named event keys (for `POST /e/<key>`), each shown once at creation."""


@keys.command("create")
@click.argument("name")
@output_options
@with_admin_client
def create_key(client: Client, name: str, as_json: bool) -> None:
    """Create the event key NAME and print it (the only time it is shown)."""
    _show_created(client.create_event_key(name), "event key", as_json)


_list_and_revoke(
    keys,
    noun="event key",
    listed=Client.event_keys,
    revoke=lambda client, name, reason: client.revoke_event_key(name, reason=reason),
    list_help="List the named event keys: creation, last use, revoked or not.",
    refused_by="intake",
)


@click.command()
@click.option("--actor", envvar="STEPLINE_ACTOR", show_envvar=True, help="Only this actor's.")
@click.option(
    "--action",
    envvar="STEPLINE_ACTION",
    show_envvar=True,
    help="Only this action (e.g. run.cancel, token.create).",
)
@click.option(
    "--before",
    envvar="STEPLINE_BEFORE",
    show_envvar=True,
    help="The next page: the cursor the previous page printed.",
)
@limit_option("entries")
@output_options
@with_admin_client
def audit(
    client: Client,
    actor: str | None,
    action: str | None,
    before: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log: who did what, when, to what and why (newest first)."""
    page = client.audit(actor=actor, action=action, before=before, limit=limit)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    table = Table(
        f"when ({_format.zone()})",
        "who",
        "action",
        "target",
        "reason",
        "details",
        box=box.SIMPLE_HEAD,
    )
    for entry in page["data"]:
        table.add_row(
            _format.moment_short(entry["at"]),
            entry["actor"],
            entry["action"],
            entry["target"] or "-",
            entry["reason"] or "-",
            _format.json_text(entry["details"]) if entry["details"] else "-",
        )
    print_table(table)
    if page["next_cursor"]:
        click.echo(f"More: stepline audit --before {page['next_cursor']}")

"""`stepline runs`: list, show, watch, cancel, replay and rerun runs; write their outputs."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import click

from stepline import errors
from stepline._sizes import format_size
from stepline.cli import _render
from stepline.cli._connect import (
    console,
    limit_option,
    output_options,
    print_table,
    reason_option,
    with_client,
)
from stepline.cli._flags import parse_json_object
from stepline.cli._flags import since as parse_since
from stepline.cli._outcome import exit_code, outcome
from stepline.cli._watch import follow
from stepline.client import END_STATUSES, Client
from stepline.store.base import RunStatus, TriggerKind


@click.group()
def runs() -> None:
    """List, show, watch, cancel, replay and rerun runs; write their outputs."""


@runs.command("list")
@click.option(
    "--function",
    "function_id",
    envvar="STEPLINE_FUNCTION",
    default=None,
    show_envvar=True,
    help="Only runs of this function.",
)
@click.option(
    "--status",
    envvar="STEPLINE_RUN_STATUS",
    default=None,
    type=click.Choice(get_args(RunStatus), case_sensitive=False),
    show_envvar=True,
    help="Only runs with this status.",
)
@click.option(
    "--trigger",
    "trigger_kind",
    envvar="STEPLINE_TRIGGER_KIND",
    default=None,
    type=click.Choice(get_args(TriggerKind), case_sensitive=False),
    show_envvar=True,
    help="Only runs started this way.",
)
@click.option(
    "--event",
    "event_id",
    envvar="STEPLINE_EVENT_ID",
    default=None,
    show_envvar=True,
    help="Only runs started by this event id.",
)
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    default=None,
    envvar="STEPLINE_DRY_RUN",
    show_envvar=True,
    help="Only dry runs.",
)
@click.option(
    "--since",
    envvar="STEPLINE_SINCE",
    default=None,
    show_envvar=True,
    help='Only runs created in the last this long, e.g. "2h", "30m", "1d".',
)
@click.option(
    "--search",
    envvar="STEPLINE_SEARCH",
    default=None,
    show_envvar=True,
    help="Only runs whose triggering event's data contains this text (any case).",
)
@limit_option("runs")
@output_options
@with_client
def list_runs(
    client: Client,
    function_id: str | None,
    status: str | None,
    trigger_kind: str | None,
    event_id: str | None,
    dry_run: bool | None,
    since: str | None,
    search: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    found = client.list_runs(
        created_after=parse_since(since),
        q=search,
        dry_run=dry_run or None,
        function_id=function_id,
        status=status.upper() if status else None,  # type: ignore[arg-type]  # a Choice of RunStatus
        trigger_kind=trigger_kind.lower() if trigger_kind else None,  # type: ignore[arg-type]  # a Choice of TriggerKind
        event_id=event_id,
        limit=limit,
    )
    if as_json:
        click.echo(json.dumps(found, indent=2))
    elif not found:
        click.echo(f"no runs{_unknown(client, function_id)}", err=True)
    else:
        print_table(_render.runs_table(found))


def _unknown(client: Client, function_id: str | None) -> str:
    """A note naming the known functions when `function_id` names none, else ""."""
    if function_id is None:
        return ""
    known = sorted(fn["id"] for fn in client.functions())
    if function_id in known:
        return ""
    return f"; no function {function_id!r} (known: {', '.join(known) or 'none registered'})"


@runs.command()
@click.argument("run_id")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="STEPLINE_VERBOSE",
    show_envvar=True,
    help="Tracebacks too (as `stepline -v runs show`).",
)
@output_options
@with_client
@click.pass_context
def show(ctx: click.Context, client: Client, run_id: str, verbose: bool, as_json: bool) -> None:
    """Show a run: status, timing, output or error, progress, its steps and their attempts, logs.

    With -v, tracebacks too.
    """
    run = client.get_run(run_id)
    if as_json:
        click.echo(json.dumps(run, indent=2))
        return
    verbose = verbose or bool((ctx.find_root().obj or {}).get("verbose"))
    console().print(_render.run_report(run, verbose))


@runs.command()
@click.argument("run_id")
@click.option(
    "--interval",
    "interval_seconds",
    envvar="STEPLINE_POLL_INTERVAL",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.05),
    show_envvar=True,
    help="Seconds between polls.",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    envvar="STEPLINE_WATCH_TIMEOUT",
    default=None,
    type=click.FloatRange(min=0.1),
    show_envvar=True,
    help="Give up after this many seconds (exit code 1); default: watch until the run ends.",
)
@with_client
@click.pass_context
def watch(
    ctx: click.Context,
    client: Client,
    run_id: str,
    interval_seconds: float,
    timeout_seconds: float | None,
) -> None:
    """Follow a run's progress live until it ends; exit code 1 unless it completed."""
    out = console()
    try:
        [run] = follow(client, [run_id], out, interval_seconds, timeout_seconds)
    except TimeoutError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    out.print(outcome(run))
    ctx.exit(exit_code([run]))


@runs.command("output")
@click.argument("run_id")
@click.option(
    "--step",
    metavar="STEP",
    envvar="STEPLINE_STEP",
    show_envvar=True,
    help="The output of this step (its id or hash) instead of the run's result.",
)
@click.option(
    "-o",
    "--output-file",
    "output_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    envvar="STEPLINE_OUTPUT_FILE",
    show_envvar=True,
    help="Write it to this file (default: standard output).",
)
@with_client
def output(client: Client, run_id: str, step: str | None, output_file: Path | None) -> None:
    """Write the output of RUN_ID (or of its step) as JSON, exactly as stored.

    Any output, and the way to a large one, which `runs show` gives as its size only.
    """
    if output_file is None:
        client.download_output(run_id, sys.stdout.buffer, step=step)
        sys.stdout.buffer.flush()
        return
    partial = output_file.with_name(f".{output_file.name}.partial")
    try:
        with partial.open("wb") as file:
            size = client.download_output(run_id, file, step=step)
        partial.replace(output_file)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {format_size(size)} to {output_file}", err=True)


_BULK_OPTIONS = (
    click.option(
        "--function",
        "function_id",
        envvar="STEPLINE_FUNCTION",
        default=None,
        show_envvar=True,
        help="Runs of this function.",
    ),
    click.option(
        "--status",
        envvar="STEPLINE_RUN_STATUS",
        default=None,
        type=click.Choice(get_args(RunStatus), case_sensitive=False),
        show_envvar=True,
        help="Runs with this status.",
    ),
    click.option(
        "--error",
        "error_name",
        envvar="STEPLINE_ERROR_NAME",
        default=None,
        show_envvar=True,
        help="Runs whose error is of this class, e.g. TimeoutError.",
    ),
    click.option(
        "--since",
        envvar="STEPLINE_SINCE",
        default=None,
        show_envvar=True,
        help='Runs created in the last this long, e.g. "2h", "30m", "1d".',
    ),
    click.option(
        "--preview",
        is_flag=True,
        envvar="STEPLINE_PREVIEW",
        show_envvar=True,
        help="Count and list them; touch nothing.",
    ),
)


def bulk_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options of a bulk cancel or replay (no RUN_ID)."""
    return functools.reduce(lambda c, option: option(c), reversed(_BULK_OPTIONS), command)


def _criteria(
    function_id: str | None, status: str | None, error_name: str | None, since: str | None
) -> dict[str, Any]:
    criteria: dict[str, Any] = {
        "function_id": function_id,
        "status": status.upper() if status else None,
        "error_name": error_name,
        "created_after": parse_since(since),
    }
    return {k: v for k, v in criteria.items() if v is not None}


def _bulk(
    client: Client,
    action: Literal["cancel", "replay"],
    run_id: str | None,
    preview: bool,
    filters: dict[str, str | None],
    reason: str | None,
) -> bool:
    """Act on the runs the filters select (printing the outcome); False when RUN_ID is given."""
    criteria = _criteria(**filters)
    if run_id is not None:
        if criteria or preview:
            raise click.UsageError("give RUN_ID or filters (--function, --status, ...), not both")
        return False
    if not criteria:
        raise click.UsageError("give RUN_ID, or filters such as --status FAILED --since 2h")
    if preview:
        found = client.preview_runs(action, **criteria)
        print_table(_render.runs_table(found["sample"]))
        shown = len(found["sample"])
        more = f" (the newest {shown} shown)" if shown < found["count"] else ""
        click.echo(f"{action} would touch {found['count']} run(s){more}; nothing done")
        return True
    if action == "cancel":
        done = client.cancel_runs(reason=reason, **criteria)
    else:
        done = client.replay_runs(reason=reason, **criteria)
    click.echo(f"{'cancelled' if action == 'cancel' else 'replayed'} {done} run(s)")
    return True


@runs.command()
@click.argument("run_id", required=False)
@bulk_options
@reason_option("with each run cancelled")
@with_client
def cancel(
    client: Client, run_id: str | None, preview: bool, reason: str | None, **filters: str | None
) -> None:
    """Cancel RUN_ID, or every active run matching the filters (--preview first, to see them)."""
    if not _bulk(client, "cancel", run_id, preview, filters, reason):
        assert run_id is not None
        before = client.get_run(run_id)["status"]
        run: dict[str, Any] = client.cancel(run_id, reason=reason)
        ended = ": it had already ended, nothing cancelled" if before in END_STATUSES else ""
        click.echo(f"{run['id']} {run['status']}{ended}")


@runs.command()
@click.argument("run_id", required=False)
@bulk_options
@reason_option("with each new run")
@with_client
def replay(
    client: Client, run_id: str | None, preview: bool, reason: str | None, **filters: str | None
) -> None:
    """Replay RUN_ID (prints the new run id), or every run matching the filters."""
    if not _bulk(client, "replay", run_id, preview, filters, reason):
        assert run_id is not None
        click.echo(client.replay(run_id, reason=reason))


@runs.command()
@click.argument("run_id")
@click.option(
    "--from",
    "from_step",
    metavar="STEP",
    envvar="STEPLINE_RERUN_FROM",
    show_envvar=True,
    help="Execute from this step: the finished steps before it keep their results.",
)
@click.option(
    "--data",
    "data_text",
    metavar="JSON",
    envvar="STEPLINE_RERUN_DATA",
    show_envvar=True,
    help="The event data to run with, a JSON object (default: the original event's).",
)
@click.option(
    "--dry-run/--no-dry-run",
    default=None,
    envvar="STEPLINE_DRY_RUN",
    show_envvar=True,
    help="Whether it is a dry run (default: as the original run).",
)
@reason_option("with the new run")
@with_client
def rerun(
    client: Client,
    run_id: str,
    from_step: str | None,
    data_text: str | None,
    dry_run: bool | None,
    reason: str | None,
) -> None:
    """Start a new run of RUN_ID from a step, maybe with edited data; prints its id."""
    try:
        data = None if data_text is None else parse_json_object(data_text, "--data")
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.reason, param_hint="--data") from None
    click.echo(client.rerun(run_id, from_step=from_step, data=data, dry_run=dry_run, reason=reason))

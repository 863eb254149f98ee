"""The CLI without a server: input errors, an unreachable server, `db upgrade`, and --help."""

from __future__ import annotations

import importlib.metadata
import sqlite3
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stepline.cli.main import cli
from stepline.store.migrate import head
from tests.cli.support import COMMAND, cli_env, run_cli
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(10)


def _nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_send_with_bad_json_exits_2_with_one_line() -> None:
    result = run_cli(_nowhere(), "send", "shop/order.placed", "--data", "{oops")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --data: not valid JSON")


def test_send_with_non_object_data_exits_2_with_one_line() -> None:
    result = run_cli(_nowhere(), "send", "shop/order.placed", "--data", "[1, 2]")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --data: must be a JSON object")


def test_unreachable_server_exits_2_with_one_line() -> None:
    url = _nowhere()
    result = run_cli(url, "runs", "list", "--url", url)

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach Stepline at {url}")


def test_trigger_rejects_a_stray_argument_before_calling_the_server() -> None:
    result = run_cli(_nowhere(), "trigger", "echo", "--limit=3", "stray")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    expected = "expected a flag like --key=value after the event name or function id"
    assert line == f"error: 'stray': {expected}"


def test_usage_error_exits_2() -> None:
    result = run_cli(_nowhere(), "runs", "list", "--status", "EXPLODED")

    assert result.returncode == 2
    assert "Invalid value for '--status'" in result.stderr


def test_db_upgrade_migrates_a_fresh_file_and_is_repeatable(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "stepline.db"
    runner = CliRunner()

    first = runner.invoke(cli, ["db", "upgrade", "--db", str(db)])
    again = runner.invoke(cli, ["db", "upgrade"], env={"STEPLINE_DB": str(db)})

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert first.output == again.output == f"{db}: schema at revision {head()}\n"
    with sqlite3.connect(db) as conn:
        [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert revision == head()
    assert {"runs", "events"} <= tables


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_option_has_a_stepline_env_var_shown_in_help() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    assert {
        ("send",),
        ("trigger",),
        ("runs", "watch"),
        ("events", "list"),
        ("functions", "invoke"),
        ("completion",),
        ("dev",),
        ("worker",),
        ("db", "upgrade"),
    } <= set(commands)
    for path in commands:
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.get_command(click.Context(command), name)  # type: ignore[assignment]  # a Group until the leaf
        result = runner.invoke(cli, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        for param in command.params:
            # --help and --version print and exit; they configure nothing.
            if isinstance(param, click.Option) and param.name not in ("help", "version"):
                # One STEPLINE_ variable, or several with the STEPLINE_ one first (the signing
                # key also reads the Inngest SDKs' INNGEST_SIGNING_KEY).
                names = [param.envvar] if isinstance(param.envvar, str) else param.envvar
                assert names and isinstance(names[0], str), (path, param.name)
                assert names[0].startswith("STEPLINE_"), (path, param.name)
                assert f"env var: {', '.join(names)}" in result.output, (path, param.name)


def test_version_and_the_commands_in_help() -> None:
    runner = CliRunner()

    version = runner.invoke(cli, ["--version"])
    cancel = runner.invoke(cli, ["runs", "cancel", "--help"], terminal_width=200)
    replay = runner.invoke(cli, ["runs", "replay", "--help"], terminal_width=200)

    assert version.output == f"stepline {importlib.metadata.version('stepline')}\n"
    assert "--preview" in cancel.output and "--preview" in replay.output
    top = runner.invoke(cli, ["--help"], terminal_width=200).output
    for command in ("send", "trigger", "runs", "events", "functions", "completion"):
        assert f"  {command} " in top, command


def test_completion_prints_a_script_and_the_script_completes_commands() -> None:
    script = run_cli(_nowhere(), "completion", "bash")
    env = {**cli_env(_nowhere()), "_STEPLINE_COMPLETE": "bash_complete"}
    env.update(COMP_WORDS="stepline fu", COMP_CWORD="1")
    completed = subprocess.run(
        [*COMMAND], env=env, capture_output=True, text=True, timeout=8, check=False
    )

    assert script.returncode == 0, script.stderr
    assert "_STEPLINE_COMPLETE=bash_complete" in script.stdout
    assert completed.stdout.splitlines() == ["plain,functions"]


def test_json_and_table_output_cannot_both_be_asked_for() -> None:
    result = run_cli(_nowhere(), "runs", "list", "-o", "table", "--json")

    assert result.returncode == 2
    assert "--json is -o json" in result.stderr

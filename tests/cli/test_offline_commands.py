"""The CLI without a server: input errors, an unreachable server, `db upgrade`, and --help."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stepline.cli.main import cli
from stepline.store.migrate import head
from tests.cli.support import run_cli
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
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_option_has_a_stepline_env_var_shown_in_help() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    assert {("send",), ("trigger",), ("runs", "watch"), ("functions",), ("db", "upgrade")} <= set(
        commands
    )
    for path in commands:
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]  # type: ignore[assignment]  # a Group until the leaf
        result = runner.invoke(cli, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                # One STEPLINE_ variable, or several with the STEPLINE_ one first (the signing
                # key also reads the Inngest SDKs' INNGEST_SIGNING_KEY).
                names = [param.envvar] if isinstance(param.envvar, str) else param.envvar
                assert names and isinstance(names[0], str), (path, param.name)
                assert names[0].startswith("STEPLINE_"), (path, param.name)
                assert f"env var: {', '.join(names)}" in result.output, (path, param.name)

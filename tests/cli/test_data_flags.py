"""`stepline send` takes typed `--key=value` flags like `trigger`; a flag that collides with a
command's own options is refused with a message or taken as data after `--`, never swallowed;
an unknown function id is named with the known ones, also when it contains '/'."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.conftest import DevServer
from tests.cli.support import run_cli

pytestmark = pytest.mark.timeout(15)


def _sent_data(server: DevServer, *args: str) -> tuple[str, Any]:
    """Send with the CLI to `cli/echo`; the event id and the data the function received."""
    sent = run_cli(server.url, "send", "cli/echo", *args)
    assert sent.returncode == 0, sent.stderr
    event_id = sent.stdout.splitlines()[0]
    [run] = server.client.runs_for_event(event_id)
    ended = server.client.wait_for_run(run["id"], timeout=5)
    assert ended["status"] == "COMPLETED", ended
    return event_id, ended["output"]


def test_send_types_flags_like_trigger_and_merges_them_over_data(dev_server: DevServer) -> None:
    _, data = _sent_data(
        dev_server,
        "--count=3",
        "--ok=true",
        "--name=x",
        "--ratio",
        "0.5",
        "--notify=false",
        "--code=007",
        "--data",
        '{"y": [1], "count": 1}',
    )

    assert data == {
        "count": 3,
        "ok": True,
        "name": "x",
        "ratio": 0.5,
        "notify": False,
        "code": "007",
        "y": [1],
    }


def test_own_options_still_work_and_their_names_are_data_after_double_dash(
    dev_server: DevServer,
) -> None:
    event_id, data = _sent_data(
        dev_server,
        "--id",
        "cli-order-41",
        "--n=1",
        "--",
        "--data=raw",
        "--id=7",
        "--url=https://example.com/hook",
        "--token=t",
    )

    assert dev_server.client.get_event(event_id)["id"] == "cli-order-41"
    assert data == {
        "n": 1,
        "data": "raw",
        "id": 7,
        "url": "https://example.com/hook",
        "token": "t",
    }


@pytest.mark.parametrize("late", ["--url=https://example.com/hook", "--token", "--event-key=k"])
def test_a_server_option_after_the_name_is_refused_naming_both_ways(
    dev_server: DevServer, late: str
) -> None:
    result = run_cli(dev_server.url, "send", "cli/refused", "--n=1", late, "v")

    assert result.returncode == 2
    assert result.stdout == ""
    option = late.partition("=")[0]
    assert f"{option} after NAME" in result.stderr
    assert f"send NAME -- {option}=..." in result.stderr
    assert dev_server.client.list_events(name="cli/refused")["data"] == [], "nothing was sent"


def test_a_server_option_before_the_name_is_the_server(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "send", "--url", dev_server.url, "cli/echo", "--n=2")

    assert result.returncode == 0, result.stderr
    assert dev_server.client.get_event(result.stdout.splitlines()[0])["data"] == {"n": 2}


@pytest.mark.parametrize("command", [["send", "cli/echo"], ["trigger", "echo"]])
def test_data_that_is_not_a_json_object_is_refused_with_the_double_dash_advice(
    dev_server: DevServer, command: list[str]
) -> None:
    result = run_cli(dev_server.url, *command, "--data=5")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --data: must be a JSON object")
    assert "a data key named data goes after --: " in line
    assert line.endswith(f"{' '.join(command)} -- --data=...")


def test_trigger_refuses_timeout_without_wait_and_takes_it_as_data_after_double_dash(
    dev_server: DevServer,
) -> None:
    refused = run_cli(dev_server.url, "trigger", "echo", "--timeout=30")
    assert refused.returncode == 2
    assert "--timeout is this command's option for --wait" in refused.stderr
    assert "trigger echo -- --timeout=..." in refused.stderr

    taken = run_cli(
        dev_server.url, "trigger", "echo", "--limit=2", "--", "--timeout=30", "--wait=1"
    )

    assert taken.returncode == 0, taken.stderr
    run = dev_server.client.wait_for_run(taken.stdout.strip(), timeout=5)
    assert run["output"] == {"limit": 2, "timeout": 30, "wait": 1}


@pytest.mark.parametrize("function_id", ["no-such-function", "shop/order.placed", "a/b/c"])
def test_an_unknown_function_is_named_with_the_known_ones(
    dev_server: DevServer, function_id: str
) -> None:
    result = run_cli(dev_server.url, "trigger", function_id, "--n=1")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: unknown function {function_id!r} (known: ")
    known = line.partition("(known: ")[2].partition(")")[0].split(", ")
    assert {"echo", "flaky", "broken", "slow", "sleeper"} <= set(known)
    assert ("use `stepline send " + function_id + "`" in line) == ("/" in function_id)

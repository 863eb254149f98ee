"""`functions pause|resume|invoke`, `events list` and `-o json|table` against a real
`stepline dev`."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import DevServer
from tests.cli.support import run_cli

pytestmark = pytest.mark.timeout(30)


def test_a_paused_function_refuses_invoke_until_it_is_resumed(dev_server: DevServer) -> None:
    paused = run_cli(dev_server.url, "functions", "pause", "nightly")
    refused = run_cli(dev_server.url, "functions", "invoke", "nightly")
    listed = run_cli(dev_server.url, "functions", "-o", "json")
    resumed = run_cli(dev_server.url, "functions", "resume", "nightly")
    invoked = run_cli(dev_server.url, "functions", "invoke", "nightly", "--wait")
    unknown = run_cli(dev_server.url, "functions", "pause", "no-such-function")

    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == "nightly paused: its events and cron ticks start no runs\n"
    assert refused.returncode == 2 and "paused" in refused.stderr
    [nightly] = [fn for fn in json.loads(listed.stdout) if fn["id"] == "nightly"]
    assert nightly["paused"] is True
    assert resumed.stdout == "nightly resumed\n"
    assert invoked.returncode == 0, invoked.stderr
    assert " COMPLETED in " in invoked.stdout
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: unknown function 'no-such-function' (known: ")


def test_events_list_filters_by_name_prefix_and_prints_json_or_a_table(
    dev_server: DevServer,
) -> None:
    first = dev_server.client.send_event("cli/listed.one", {"n": 1})
    second = dev_server.client.send_event("cli/listed.two", {"n": 2})
    dev_server.client.send_event("cli/echo", {"n": 3})

    table = run_cli(dev_server.url, "events", "list", "--name", "cli/listed.", "--since", "1h")
    as_json = run_cli(dev_server.url, "events", "list", "--name", "cli/listed.", "-o", "json")
    alias = run_cli(dev_server.url, "events", "list", "--name", "cli/listed.", "--json")
    none = run_cli(dev_server.url, "events", "list", "--name", "cli/nothing-like-this")
    bad = run_cli(dev_server.url, "events", "list", "--since", "soon")

    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines() if "cli/listed." in line]
    assert [row[:2] for row in rows] == [[second, "cli/listed.two"], [first, "cli/listed.one"]]
    assert rows[0][-2:] == ['{"n":', "2}"]
    listed = json.loads(as_json.stdout)
    assert [(e["internal_id"], e["data"]) for e in listed] == [
        (second, {"n": 2}),
        (first, {"n": 1}),
    ]
    assert json.loads(alias.stdout) == listed
    assert none.returncode == 0 and none.stderr == "no events\n"
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_runs_list_prints_the_same_json_with_o_json_and_json(dev_server: DevServer) -> None:
    run_id = dev_server.client.invoke("echo", {"n": 5})
    dev_server.client.wait_for_run(run_id, timeout=5)

    by_option = run_cli(dev_server.url, "runs", "list", "--function", "echo", "-o", "json")
    by_flag = run_cli(dev_server.url, "runs", "list", "--function", "echo", "--json")

    assert by_option.returncode == 0, by_option.stderr
    assert run_id in {run["id"] for run in json.loads(by_option.stdout)}
    assert json.loads(by_flag.stdout)[0]["id"] == json.loads(by_option.stdout)[0]["id"]


def test_events_show_gives_the_event_and_the_runs_it_started(dev_server: DevServer) -> None:
    event_id = dev_server.client.send_event("cli/pair", {"n": 6}, id="cli-pair-6")
    runs = {run["function_id"]: run["id"] for run in dev_server.client.runs_for_event(event_id)}

    shown = run_cli(dev_server.url, "events", "show", "cli-pair-6")
    as_json = run_cli(dev_server.url, "events", "show", event_id, "-o", "json")
    unknown = run_cli(dev_server.url, "events", "show", "no-such-event")

    assert shown.returncode == 0, shown.stderr
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert {f"event {event_id}", "id cli-pair-6", "name cli/pair", 'data {"n": 6}'} <= set(lines)
    assert "runs (2)" in lines
    assert all(run_id in shown.stdout for run_id in runs.values())
    event = json.loads(as_json.stdout)
    assert {run["id"] for run in event["runs"]} == set(runs.values())
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no event with id")


def test_cancel_of_an_ended_run_and_runs_of_an_unknown_function_say_so(
    dev_server: DevServer,
) -> None:
    run_id = dev_server.client.invoke("echo", {"n": 7})
    dev_server.client.wait_for_run(run_id, timeout=5)

    cancelled = run_cli(dev_server.url, "runs", "cancel", run_id)
    listed = run_cli(dev_server.url, "runs", "list", "--function", "no-such-function")

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"{run_id} COMPLETED: it had already ended, nothing cancelled\n"
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.startswith("no runs; no function 'no-such-function' (known: ")


def test_runs_list_finds_runs_by_text_in_their_event_data_since_a_time(
    dev_server: DevServer,
) -> None:
    event_id = dev_server.client.send_event("cli/echo", {"tag": "needle-42"})
    [run] = dev_server.client.runs_for_event(event_id)

    found = run_cli(dev_server.url, "runs", "list", "--since", "1h", "--search", "NEEDLE-42")
    bad = run_cli(dev_server.url, "runs", "list", "--since", "soon")

    assert found.returncode == 0, found.stderr
    assert [line.split()[0] for line in found.stdout.splitlines() if "echo" in line] == [run["id"]]
    assert bad.returncode == 2 and "--since" in bad.stderr

"""`--reason` on the CLI's risky commands (runs cancel, replay, rerun, functions pause): kept
with what they touched, shown by `runs show` and `functions`; a reason too long is refused
naming the field. Against a real `stepline dev` over loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cli.conftest import DevServer
from tests.cli.support import run_cli

Wait = Callable[..., Any]
pytestmark = pytest.mark.timeout(20)


def _sleeping_run(server: DevServer, wait_until: Wait) -> str:
    [run] = server.client.runs_for_event(server.client.send_event("cli/sleeper"))
    run_id = str(run["id"])
    wait_until(lambda: server.client.get_run(run_id)["detail"] == "SLEEPING", what="run sleeping")
    return run_id


def test_cancel_and_replay_keep_their_reason_and_runs_show_says_it(
    dev_server: DevServer, wait_until: Wait
) -> None:
    run_id = _sleeping_run(dev_server, wait_until)

    too_long = run_cli(dev_server.url, "runs", "cancel", run_id, "--reason", "x" * 501)
    cancelled = run_cli(dev_server.url, "runs", "cancel", run_id, "--reason", "vendor outage")
    replayed = run_cli(dev_server.url, "runs", "replay", run_id, "--reason", "after the fix")

    assert too_long.returncode != 0
    assert "reason" in too_long.stderr and "500 characters" in too_long.stderr
    assert cancelled.returncode == 0, cancelled.stderr
    assert dev_server.client.get_run(run_id)["cancellation"]["reason"] == "vendor outage"
    shown = run_cli(dev_server.url, "runs", "show", run_id)
    assert "cancelled" in shown.stdout and "by request (api) at" in shown.stdout
    assert "“vendor outage”" in shown.stdout
    assert replayed.returncode == 0, replayed.stderr
    new_id = replayed.stdout.strip()
    shown_replay = run_cli(dev_server.url, "runs", "show", new_id)
    assert "replay reason" in shown_replay.stdout and "“after the fix”" in shown_replay.stdout
    dev_server.client.cancel(new_id)


def test_bulk_cancel_and_rerun_take_a_reason(dev_server: DevServer, wait_until: Wait) -> None:
    run_id = _sleeping_run(dev_server, wait_until)

    bulk = run_cli(
        dev_server.url, "runs", "cancel", "--function", "sleeper", "--reason", "bad deploy"
    )
    rerun = run_cli(dev_server.url, "runs", "rerun", run_id, "--reason", "once more")

    assert bulk.returncode == 0, bulk.stderr
    assert dev_server.client.get_run(run_id)["cancellation"]["reason"] == "bad deploy"
    assert rerun.returncode == 0, rerun.stderr
    new_id = rerun.stdout.strip()
    assert dev_server.client.get_run(new_id)["trigger"]["reason"] == "once more"
    dev_server.client.cancel(new_id)


def test_functions_pause_keeps_its_reason_until_resumed(dev_server: DevServer) -> None:
    try:
        paused = run_cli(dev_server.url, "functions", "pause", "broken", "--reason", "maintenance")
        listed = run_cli(dev_server.url, "functions")
    finally:
        dev_server.client.resume("broken")

    assert paused.returncode == 0, paused.stderr
    assert "broken paused since" in listed.stdout
    assert "by api: “maintenance”" in listed.stdout
    assert "maintenance" not in run_cli(dev_server.url, "functions").stdout

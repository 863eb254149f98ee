"""The CLI against a real `stepline dev` over loopback HTTP: send, trigger, runs, functions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.cli.conftest import DevServer
from tests.cli.support import run_cli

Wait = Callable[..., Any]
pytestmark = pytest.mark.timeout(10)


def _only_run(server: DevServer, event_id: str) -> str:
    [run] = server.client.runs_for_event(event_id)
    return str(run["id"])


def test_sent_event_is_listed_with_the_run_it_started(dev_server: DevServer) -> None:
    sent = run_cli(dev_server.url, "send", "cli/echo", "--data", '{"n": 1}', "--id", "order-17")
    assert sent.returncode == 0, sent.stderr
    event_id, started = sent.stdout.splitlines()
    run_id = _only_run(dev_server, event_id)
    assert started.split() == ["run", run_id, "echo", f"{dev_server.url}/runs/{run_id}"]
    dev_server.client.wait_for_run(run_id, timeout=5)

    listed = run_cli(dev_server.url, "runs", "list", "--event", event_id)

    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if run_id in line]
    assert row.split()[1:4] == ["echo", "COMPLETED", "event"]
    by_function = run_cli(
        dev_server.url, "runs", "list", "--function", "echo", "--status", "completed"
    )
    assert run_id in by_function.stdout
    failed = run_cli(dev_server.url, "runs", "list", "--function", "echo", "--status", "FAILED")
    assert run_id not in failed.stdout


def test_trigger_types_flags_into_the_function_data(dev_server: DevServer) -> None:
    flags = ["--full=true", "--limit=10", "--ratio=0.5", "--flag=false", "--name=abc", "--x=false"]
    result = run_cli(
        dev_server.url, "trigger", "echo", *flags, "--count", "3", "--data", '{"y": [1]}', "--wait"
    )

    assert result.returncode == 0, result.stderr
    run_id, outcome = result.stdout.split("\n", 1)
    assert outcome.startswith(f"run {run_id} COMPLETED in ")
    run = dev_server.client.get_run(run_id)
    output = run["output"]
    assert run["dry_run"] is False
    assert (
        output.items()
        >= {
            "full": True,
            "limit": 10,
            "ratio": 0.5,
            "flag": False,
            "name": "abc",
            "x": False,
            "count": 3,
            "y": [1],
        }.items()
    )


def test_trigger_dry_run_starts_a_dry_run_listed_with_its_badge(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "trigger", "echo", "--dry-run", "--n=1", "--wait")

    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0]
    run = dev_server.client.get_run(run_id)
    assert run["dry_run"] is True and run["output"] == {"n": 1}
    listed = run_cli(dev_server.url, "runs", "list", "--dry-run")
    [row] = [line for line in listed.stdout.splitlines() if run_id in line]
    assert "dry-run" in row
    shown = run_cli(dev_server.url, "runs", "show", run_id)
    assert "dry run" in shown.stdout


def test_trigger_wait_exits_1_with_the_error_of_a_failed_run(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "trigger", "broken", "--wait")

    assert result.returncode == 1
    run_id = result.stdout.splitlines()[0]
    assert f"run {run_id} FAILED" in result.stdout
    assert "error: NonRetriableError: the vendor account is closed" in result.stdout


def test_trigger_of_unknown_function_names_it_and_exits_2(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "trigger", "no-such-function", "--dry-run")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: unknown function 'no-such-function'")


def test_runs_show_gives_steps_durations_attempts_errors_and_logs(
    dev_server: DevServer,
) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/flaky"))
    dev_server.client.wait_for_run(run_id, timeout=5)

    result = run_cli(dev_server.url, "runs", "show", run_id)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(rf"^run\s+{run_id}\s*$", out, re.M)
    assert re.search(r"^status\s+COMPLETED\s*$", out, re.M)
    assert re.search(r'^output\s+"ok"\s*$', out, re.M)
    duration = r"\d+ms|\d+\.\d+s"
    prepare = re.search(rf"^\s+prepare\s+run\s+completed\s+({duration})\s+1\s*$", out, re.M)
    fetch = re.search(rf"^\s+fetch\s+run\s+completed\s+({duration})\s+2\s*$", out, re.M)
    assert prepare and fetch, out
    failed = "attempt 1 failed: RetryAfterError: vendor API answered 429"
    assert out.index(failed) > fetch.end(), "the failed attempt is listed under its step"
    assert re.search(r"info\s+prepared 1", out)


def test_runs_show_v_after_the_command_adds_tracebacks(dev_server: DevServer) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/flaky"))
    dev_server.client.wait_for_run(run_id, timeout=5)

    plain = run_cli(dev_server.url, "runs", "show", run_id)
    verbose = run_cli(dev_server.url, "runs", "show", run_id, "-v")

    assert "Traceback (most recent call last)" not in plain.stdout
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.index("attempt 1 failed") < verbose.stdout.index("Traceback")


def test_runs_show_of_unknown_run_exits_2_with_one_line(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "runs", "show", "01NOSUCHRUN0000000000000000")

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")


def test_runs_watch_shows_progress_and_ends_with_the_final_status(dev_server: DevServer) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/slow"))

    result = run_cli(dev_server.url, "runs", "watch", run_id, "--interval", "0.1")

    assert result.returncode == 0, result.stderr
    assert "5/5" in result.stdout
    assert "processed=5" in result.stdout
    *_, status, output = result.stdout.strip().splitlines()
    assert re.fullmatch(rf"run {run_id} COMPLETED in \d+(ms|\.\d+s)", status)
    assert output == "output: 5"


def test_cancel_ends_a_sleeping_run_and_watch_exits_1(
    dev_server: DevServer, wait_until: Wait
) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/sleeper"))
    wait_until(
        lambda: dev_server.client.get_run(run_id)["detail"] == "SLEEPING", what="run sleeping"
    )

    cancelled = run_cli(dev_server.url, "runs", "cancel", run_id)

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{run_id} CANCELLED"
    assert dev_server.client.get_run(run_id)["status"] == "CANCELLED"
    watched = run_cli(dev_server.url, "runs", "watch", run_id)
    assert watched.returncode == 1
    assert f"run {run_id} CANCELLED" in watched.stdout


def test_replay_prints_a_new_run_of_the_same_trigger(dev_server: DevServer) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/echo", {"n": 2}))
    dev_server.client.wait_for_run(run_id, timeout=5)

    result = run_cli(dev_server.url, "runs", "replay", run_id)

    assert result.returncode == 0, result.stderr
    new_id = result.stdout.strip()
    assert new_id != run_id
    replayed = dev_server.client.wait_for_run(new_id, timeout=5)
    assert replayed["replay_of"] == run_id
    assert replayed["output"] == {"n": 2}


def test_rerun_from_a_step_with_data_prints_a_new_linked_run(dev_server: DevServer) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/flaky", {"region": "eu"}))
    dev_server.client.wait_for_run(run_id, timeout=10)

    result = run_cli(
        dev_server.url, "runs", "rerun", run_id, "--from", "fetch", "--data", '{"region": "us"}'
    )
    wrong = run_cli(dev_server.url, "runs", "rerun", run_id, "--from", "fetchh")
    not_json = run_cli(dev_server.url, "runs", "rerun", run_id, "--data", "region=us")

    assert result.returncode == 0, result.stderr
    rerun_id = result.stdout.strip()
    rerun = dev_server.client.wait_for_run(rerun_id, timeout=10)
    assert (rerun["trigger"]["kind"], rerun["replay_of"]) == ("rerun", run_id)
    assert rerun["logs"][0]["message"].endswith(
        "reused 1 earlier step(s): 'prepare'; event data edited"
    )
    shown = run_cli(dev_server.url, "runs", "show", rerun_id)
    assert f"rerun of {run_id}" in shown.stdout
    assert wrong.returncode == 2
    assert "no step 'fetchh' in the run; its steps: 'prepare', 'fetch'" in wrong.stderr
    assert not_json.returncode == 2
    assert "--data" in not_json.stderr


def test_functions_lists_each_function_with_its_triggers(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "functions")

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if "cli-tests" in line}
    assert set(rows) >= {"echo", "flaky", "broken", "slow", "nightly", "sleeper"}
    assert "event cli/echo" in rows["echo"]
    assert "invoke only" in rows["broken"]
    assert "cron 0 0 * * * (Africa/Johannesburg)" in rows["nightly"]
    # The next tick at midnight in the schedule's zone, then in the viewer's (UTC here).
    assert re.search(
        r"^\s+next \d{4}-\d\d-\d\d 00:00 \((\d{4}-\d\d-\d\d )?22:00 UTC\)", result.stdout, re.M
    )
    assert "event cli/night" in result.stdout


def test_functions_lists_the_options_of_each_function_below_the_table(
    dev_server: DevServer,
) -> None:
    result = run_cli(dev_server.url, "functions")

    assert result.returncode == 0, result.stderr
    table, options = result.stdout.split(" options", 1)
    assert "limited" in table and "event cli/limited" in table
    lines = [" ".join(line.split()) for line in options.splitlines() if line.strip()]
    assert lines[1:] == [
        "limited concurrency 2",
        "throttle 10 per 1m (burst 2)",
        "singleton: skip",
        "cancel on cli/limited.cancelled (1d)",
        "start within 5m",
    ]


def test_trigger_of_a_busy_singleton_exits_2_naming_the_running_run(
    dev_server: DevServer, wait_until: Wait
) -> None:
    run_id = _only_run(dev_server, dev_server.client.send_event("cli/limited"))
    wait_until(
        lambda: dev_server.client.get_run(run_id)["detail"] == "SLEEPING", what="run sleeping"
    )

    refused = run_cli(dev_server.url, "trigger", "limited")

    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: ") and f"run {run_id} is still active" in line
    dev_server.client.send_event("cli/limited.cancelled")
    assert dev_server.client.get_run(run_id)["status"] == "CANCELLED"
    shown = run_cli(dev_server.url, "runs", "show", run_id)
    assert "cancelled by event 'cli/limited.cancelled'" in shown.stdout


def test_bulk_replay_by_error_is_previewed_then_done(dev_server: DevServer) -> None:
    failed = run_cli(dev_server.url, "trigger", "broken", "--wait")
    assert failed.returncode == 1
    filters = ["--function", "broken", "--status", "failed", "--error", "NonRetriableError"]

    preview = run_cli(dev_server.url, "runs", "replay", *filters, "--since", "1h", "--preview")

    assert preview.returncode == 0, preview.stderr
    count = int(preview.stdout.split("would touch ")[1].split(" run")[0])
    assert count >= 1 and "nothing done" in preview.stdout
    done = run_cli(dev_server.url, "runs", "replay", *filters, "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert f"replayed {count} run(s)" in done.stdout
    both = run_cli(dev_server.url, "runs", "replay", "01ABC", "--status", "failed")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = run_cli(dev_server.url, "runs", "cancel", "--function", "broken", "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr

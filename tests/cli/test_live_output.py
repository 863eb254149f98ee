"""`trigger --wait`, `send --wait` and `runs watch` show progress live: in a terminal 80 columns
wide (a pseudo-terminal) a redrawn display whose ETA counts down, through a pipe plain lines."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import DevServer
from tests.cli.support import run_cli, run_in_terminal, screen_lines

pytestmark = pytest.mark.timeout(30)

# Five items of 0.6 s: about three seconds of progress to watch.
PAUSE = "--pause=0.6"
PROGRESS = re.compile(r"(\d+)% (\d)/5(?: ETA (\d+ms|\d+\.\d+s|due))?")


def _seconds(eta: str) -> float:
    if eta == "due":
        return 0.0
    return float(eta[:-2]) / 1000 if eta.endswith("ms") else float(eta[:-1])


def test_trigger_wait_in_a_terminal_shows_progress_and_step_before_the_outcome(
    dev_server: DevServer,
) -> None:
    code, output = run_in_terminal(dev_server.url, "trigger", "slow", PAUSE, "--wait")

    assert code == 0, output
    lines = screen_lines(output)
    run_id = lines[0]
    assert all(len(line) <= 80 for line in lines), lines
    end = next(i for i, line in enumerate(lines) if line.startswith(f"run {run_id} COMPLETED"))
    live = lines[1:end]
    running = [line for line in live if line.startswith("slow RUNNING")]
    assert any(re.search(r"[1-4]/5", line) for line in running), live
    assert any(
        re.fullmatch(r"  last step item-[0-3] completed · item [1-4] of 5", line) for line in live
    )
    assert any(re.fullmatch(r"  processed=[1-4]", line) for line in live), live
    assert re.match(r"slow COMPLETED .*100% 5/5$", live[-3]), live
    assert lines[-1] == "output: 5"


def test_runs_watch_at_80_columns_keeps_the_status_and_counts_the_eta_down(
    dev_server: DevServer,
) -> None:
    # Five seconds: the watch must start while the run goes on, also on a busy machine.
    run_id = dev_server.client.invoke("slow", {"pause": 1.0})

    code, output = run_in_terminal(dev_server.url, "runs", "watch", run_id, "--interval", "0.1")

    assert code == 0, output
    lines = screen_lines(output)
    assert all(len(line) <= 80 for line in lines), lines
    etas: dict[int, list[float]] = {}
    for line in lines:
        found = PROGRESS.search(line)
        if line.startswith("slow RUNNING") and found and found[3]:
            etas.setdefault(int(found[2]), []).append(_seconds(found[3]))
    assert etas, lines
    for shown in etas.values():
        assert shown == sorted(shown, reverse=True), etas
    assert any(len(set(shown)) > 1 for shown in etas.values()), etas
    assert any(re.match(r"slow COMPLETED .*100% 5/5$", line) for line in lines), lines
    assert lines[-2].startswith(f"run {run_id} COMPLETED in ")


def test_send_wait_follows_every_run_the_event_started_and_exits_with_the_worst(
    dev_server: DevServer,
) -> None:
    result = run_cli(dev_server.url, "send", "cli/pair", "--n=4", "--wait", timeout=15)

    assert result.returncode == 1, result.stderr
    event_id, *started = result.stdout.splitlines()[:3]
    runs = {run["function_id"]: run["id"] for run in dev_server.client.runs_for_event(event_id)}
    assert set(runs) == {"echo", "refuser"}
    assert sorted(started) == sorted(
        f"run {run_id}  {function_id}  {dev_server.url}/runs/{run_id}"
        for function_id, run_id in runs.items()
    )
    assert re.search(
        rf"^run {runs['echo']} COMPLETED in .*\noutput: {{\"n\": 4}}$", result.stdout, re.M
    )
    assert re.search(
        rf"^run {runs['refuser']} FAILED in .*\nerror: NonRetriableError: refused$",
        result.stdout,
        re.M,
    )
    # Not a terminal: the progress is plain lines on stderr, one per change.
    assert f"{runs['refuser']} refuser FAILED" in result.stderr


def test_send_of_an_event_no_function_takes_says_so(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "send", "cli/nobody", "--wait")

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr.startswith("no run started")


def test_a_flag_without_a_value_is_refused_before_anything_is_sent(dev_server: DevServer) -> None:
    result = run_cli(dev_server.url, "trigger", "echo", "--region", "--wait")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --region: no value; give one as --region=VALUE")

"""What `stepline dev` says in its terminal: a line per run started and ended (none with -q),
the reason a cancelled run stopped, a taken port named with its fix, and a quick, quiet Ctrl-C
with dashboard streams open."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.support import APP_FILE, COMMAND, cli_env
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(60)
START_SECONDS = 20.0


@dataclass(frozen=True)
class Dev:
    """A running `stepline dev`: its URL, process and the files its stdout and stderr go to."""

    url: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()


def eventually(probe: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[Callable[..., Dev]]:
    """Start `stepline dev tests/cli/cli_app.py [ARGS]` on a free port; stopped by PID after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> Dev:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        out, err = tmp_path / f"{port}.out", tmp_path / f"{port}.err"
        command = [*COMMAND, "dev", str(APP_FILE), "--db", str(tmp_path / f"{port}.db")]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [*command, "--port", str(port), *args],
                env={**cli_env(url), "PYTHONUNBUFFERED": "1"},
                stdout=stdout,
                stderr=stderr,
                cwd=tmp_path,
            )
        started.append(process)
        dev = Dev(url=url, process=process, out=out, err=err)
        eventually(lambda: process.poll() is not None or healthy(url), "dev", START_SECONDS)
        assert process.poll() is None, dev.output()
        return dev

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def send(dev: Dev, name: str, data: dict[str, object] | None = None) -> str:
    """Send an event; the id of the one run it started."""
    response = httpx.post(f"{dev.url}/e/key", json={"name": name, "data": data or {}}, timeout=10)
    response.raise_for_status()
    [event_id] = response.json()["ids"]
    runs: list[dict[str, str]] = []

    def started() -> bool:
        runs[:] = httpx.get(f"{dev.url}/v1/events/{event_id}/runs", timeout=5).json()["data"]
        return bool(runs)

    eventually(started, "the event's run")
    return runs[0]["id"]


def status(dev: Dev, run_id: str) -> str:
    return str(httpx.get(f"{dev.url}/v1/runs/{run_id}", timeout=5).json()["data"]["status"])


def test_each_run_gets_a_start_line_and_an_end_line_with_its_link(
    start_dev: Callable[..., Dev],
) -> None:
    dev = start_dev()
    done = send(dev, "cli/echo", {"n": 1})
    failed = httpx.post(f"{dev.url}/v1/functions/broken/invoke", json={}, timeout=5).json()
    failed_id = failed["data"]["run_id"]
    eventually(lambda: f"/runs/{failed_id}" in dev.output(), "the failed run's line")
    eventually(lambda: f"/runs/{done}" in dev.output(), "the completed run's line")

    lines = dev.err.read_text().splitlines()
    assert any(f"▶ echo {done} started (event cli/echo)" in line for line in lines)
    [completed] = [line for line in lines if f"/runs/{done}" in line]
    assert " INFO " in completed
    assert "✓ echo COMPLETED in " in completed
    assert completed.endswith(f"· {dev.url}/runs/{done}")
    [broken] = [line for line in lines if f"/runs/{failed_id}" in line]
    assert "✗ broken FAILED in " in broken
    assert broken.endswith("· NonRetriableError: the vendor account is closed")


def test_quiet_prints_no_run_lines(start_dev: Callable[..., Dev]) -> None:
    dev = start_dev("--quiet")
    run_id = send(dev, "cli/echo")
    eventually(lambda: status(dev, run_id) == "COMPLETED", "the run to complete")

    assert run_id not in dev.output()
    assert "▶" not in dev.output()


def test_a_cancelled_run_is_said_to_be_cancelled_not_to_have_lost_its_lease(
    start_dev: Callable[..., Dev],
) -> None:
    dev = start_dev()
    run_id = send(dev, "cli/slow", {"pause": 0.5})
    eventually(lambda: "item" in str(httpx.get(f"{dev.url}/v1/runs/{run_id}").json()), "a step")
    httpx.post(f"{dev.url}/v1/runs/{run_id}/cancel", timeout=5).raise_for_status()
    eventually(lambda: "its replay stopped" in dev.output(), "the worker's message")

    output = dev.output()
    assert f"run {run_id}: cancelled by request; its replay stopped" in output
    assert "lease lost" not in output
    assert "new owner" not in output
    eventually(lambda: "⊘ slow CANCELLED in " in dev.output(), "the run's end line")


def test_a_taken_port_exits_2_naming_it_and_the_fix_without_a_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*COMMAND, "dev", str(APP_FILE), "--db", str(tmp_path / "dev.db"), "--port", str(port)],
            env=cli_env(f"http://127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; stop what holds it, or choose another "
        "port with --port or STEPLINE_PORT"
    ]


def _hold(url: str, opened: threading.Event) -> None:
    """Read a server-sent-events stream until the server ends it."""
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=30)) as response:
            for _ in response.iter_raw():
                opened.set()
    except httpx.HTTPError:
        pass


def test_sigint_with_two_dashboard_streams_open_stops_within_a_second_cleanly(
    start_dev: Callable[..., Dev],
) -> None:
    dev = start_dev()
    run_id = send(dev, "cli/sleeper")  # its run page streams until it ends, in an hour
    streams = []
    for path in ("/runs/stream", f"/runs/{run_id}/stream", f"/v1/runs/{run_id}/stream"):
        opened = threading.Event()
        reader = threading.Thread(target=_hold, args=(f"{dev.url}{path}", opened), daemon=True)
        reader.start()
        streams.append((reader, opened))
    for _, opened in streams:
        assert opened.wait(10)

    started = time.monotonic()
    dev.process.send_signal(signal.SIGINT)
    code = dev.process.wait(5)
    took = time.monotonic() - started

    assert took < 1.0, f"stopped in {took:.2f}s"
    assert code == 0  # a graceful stop
    assert "Traceback" not in dev.err.read_text()
    assert "ERROR" not in dev.err.read_text()
    for reader, _ in streams:
        reader.join(5)
        assert not reader.is_alive()

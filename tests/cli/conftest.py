"""One `stepline dev` process for the CLI tests: a free loopback port, a fresh SQLite file."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import stepline
from tests.cli.support import APP_FILE, COMMAND, cli_env
from tests.loopback import free_port

START_SECONDS = 20.0


@dataclass(frozen=True)
class DevServer:
    """A running `stepline dev`: its URL, a client for it, and its process."""

    url: str
    client: stepline.Client
    process: subprocess.Popen[bytes]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stepline dev exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"stepline dev not healthy after {START_SECONDS:g}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`stepline dev tests/cli/cli_app.py` on a free port; stopped by its PID afterwards."""
    tmp = tmp_path_factory.mktemp("stepline-dev")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "dev.log"
    args = [*COMMAND, "dev", str(APP_FILE), "--db", str(tmp / "stepline.db"), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=cli_env(url), stdout=out, stderr=subprocess.STDOUT, cwd=tmp
        )
    try:
        _wait_healthy(url, process, log)
        with stepline.Client(url, timeout=5) as client:
            yield DevServer(url=url, client=client, process=process)
    finally:
        _stop(process)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """Poll `check()` until it returns something truthy (bounded); returns that."""

    def wait(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not met within {timeout:g}s")
            time.sleep(0.05)

    return wait

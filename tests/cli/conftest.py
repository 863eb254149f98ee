"""One `stepline dev` process for the CLI tests: a free loopback port, a fresh SQLite file."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import stepline
from tests.cli.support import APP_FILE, serving
from tests.loopback import free_port


@dataclass(frozen=True)
class DevServer:
    """A running `stepline dev`: its URL, a client for it, and its process."""

    url: str
    client: stepline.Client
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`stepline dev tests/cli/cli_app.py` on a free port; stopped by its PID afterwards."""
    tmp = tmp_path_factory.mktemp("stepline-dev")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["dev", str(APP_FILE), "--db", str(tmp / "stepline.db"), "--port", str(port)]
    with (
        serving(url, *args, log=tmp / "dev.log", cwd=tmp) as process,
        stepline.Client(url, timeout=5) as client,
    ):
        yield DevServer(url=url, client=client, process=process)


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

"""Loopback servers for tests: free ports, ASGI apps served by uvicorn in threads, and waiting
for a server process to answer `/health`."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

START_SECONDS = 10.0
HEALTHY_SECONDS = 20.0


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the server process at `url` answers `GET /health` with 200; fail with its
    `log` if it exits first or is not healthy within `HEALTHY_SECONDS`."""
    deadline = time.monotonic() + HEALTHY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server not healthy after {HEALTHY_SECONDS:g}s:\n{log.read_text()}")


class Servers:
    """ASGI apps served by uvicorn on loopback, each in a thread; stopped (and joined) together."""

    def __init__(self) -> None:
        self._running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(self, app: Any, port: int | None = None) -> str:
        """Serve `app` on 127.0.0.1 (on a free port unless given); its base URL once it answers."""
        port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {port} did not start")
            time.sleep(0.01)
        self._running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop every server started here."""
        for server, _ in self._running:
            server.should_exit = True
        for _, thread in self._running:
            thread.join(timeout=10)
        self._running.clear()

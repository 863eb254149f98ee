"""Node.js apps on the official npm SDK for the tests: started, awaited and stopped by PID.

The app's project must have its packages installed (`npm ci` in its folder; `scripts/setup`
does it). Its stdout and stderr go to a file, shown by `output()` when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from tests.loopback import free_port

START_SECONDS = 30.0
STOP_SECONDS = 5.0
PORT_TRIES = 3


class PortTaken(Exception):
    """Another process took the app's free port before the app could listen on it."""


class NodeApp:
    """One Node.js process serving an app on a free port of 127.0.0.1 (`base`, once started)."""

    def __init__(self, project: Path, argv: Sequence[str], log: Path) -> None:
        self.project = project
        self.argv = list(argv)
        self.base = ""
        self._log_path = log
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str], ready_path: str) -> NodeApp:
        """Start the process with `env` added on a free port; return once `ready_path` answers
        200 (bounded). A port taken by another process in the meantime is replaced by a new one."""
        for _ in range(PORT_TRIES - 1):
            try:
                return self._start_on(free_port(), env, ready_path)
            except PortTaken:
                self.stop()
        return self._start_on(free_port(), env, ready_path)

    def _start_on(self, port: int, env: Mapping[str, str], ready_path: str) -> NodeApp:
        self.base = f"http://127.0.0.1:{port}"
        if not (self.project / "node_modules").is_dir():
            raise RuntimeError(
                f"{self.project}/node_modules is missing: run `npm ci` there (scripts/setup does)"
            )
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH (Node.js 20 runs the SDK apps)")
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [node, *self.argv],
            cwd=self.project,
            env={**os.environ, **env, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with any children
        )
        self._wait_ready(ready_path)
        return self

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                if "EADDRINUSE" in self.output():
                    raise PortTaken(self.base)
                raise RuntimeError(
                    f"the app exited with {self._process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return  # its answer: another server on the port would not have `path`
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer in {START_SECONDS} s:\n{self.output()}")
            time.sleep(0.1)

    def get(self, path: str) -> Any:
        """The JSON the app answers to GET `path`."""
        response = httpx.get(self.base + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def output(self) -> str:
        """What the process wrote to stdout and stderr so far."""
        if self._log is not None:
            self._log.flush()
        if not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process group by its PID: SIGTERM, then SIGKILL if it lingers."""
        process = self._process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_SECONDS)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has exited meanwhile
        os.killpg(pid, sig)  # the group the process leads (start_new_session)

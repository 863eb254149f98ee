"""Run the real `stepline` command in a subprocess, through a pipe or in a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.loopback import free_port, wait_healthy

COMMAND = [sys.executable, "-m", "stepline.cli.main"]
APP_FILE = Path(__file__).with_name("cli_app.py")


def cli_env(url: str) -> dict[str, str]:
    """The environment for a CLI subprocess: the server from STEPLINE_URL, wide tables, UTC."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    env.update(STEPLINE_URL=url, COLUMNS="200", NO_COLOR="1", TZ="UTC")
    return env


def run_cli(url: str, *args: str, timeout: float = 8.0) -> subprocess.CompletedProcess[str]:
    """Run `stepline ARGS` against the server at `url`; its exit code, stdout and stderr."""
    return subprocess.run(
        [*COMMAND, *args],
        env=cli_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def serving(
    url: str, *args: str, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `stepline ARGS` (a server answering at `url`), its output to `log`; the process once
    `/health` answers 200, stopped by its PID afterwards. `env` defaults to `cli_env(url)`."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*COMMAND, *args],
            env=cli_env(url) if env is None else env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
    try:
        wait_healthy(url, process, log)
        yield process
    finally:
        _stop(process)


@dataclass(frozen=True)
class Dev:
    """A running `stepline dev`: its URL, process, log and its steps' effects file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    effects: Path


@contextmanager
def dev_serving(tmp_path: Path, app: Path, *options: str) -> Iterator[Dev]:
    """`stepline dev APP --db <tmp>/dev.db OPTIONS` on a free port, its steps' effects written
    to <tmp>/effects.txt (`SCALE_EFFECTS`, tests/scale/app.py); stopped by its PID afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log, effects = tmp_path / "dev.log", tmp_path / "effects.txt"
    env = {**cli_env(url), "SCALE_EFFECTS": str(effects), "PYTHONUNBUFFERED": "1"}
    args = ["dev", str(app), "--db", str(tmp_path / "dev.db"), "--port", str(port), *options]
    with serving(url, *args, log=log, env=env, cwd=tmp_path) as process:
        yield Dev(url=url, process=process, log=log, effects=effects)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def run_in_terminal(
    url: str, *args: str, columns: int = 80, timeout: float = 15.0
) -> tuple[int, str]:
    """Run `stepline ARGS` in a pseudo-terminal `columns` wide; its exit code and output.

    The output is stdout and stderr as the terminal got them, escape sequences included. A
    process still running after `timeout` seconds is killed by its PID and fails the test.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**cli_env(url), "COLUMNS": str(columns), "TERM": "xterm"}
    process = subprocess.Popen(
        [*COMMAND, *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end closed, the process is gone
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        else:
            raise TimeoutError(f"stepline {' '.join(args)} still running after {timeout:g}s")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
    return process.returncode, output.decode()


def screen_lines(output: str) -> list[str]:
    """The lines a terminal showed over time, escape sequences removed (a redraw repeats them)."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    return [line for line in re.split(r"\r\n|\r|\n", plain) if line.strip()]

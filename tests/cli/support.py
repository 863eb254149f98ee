"""Run the real `stepline` command in a subprocess, and a free loopback port to point it at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMAND = [sys.executable, "-m", "stepline.cli.main"]
APP_FILE = Path(__file__).with_name("cli_app.py")


def cli_env(url: str) -> dict[str, str]:
    """The environment for a CLI subprocess: the server from STEPLINE_URL, wide tables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    env.update(STEPLINE_URL=url, COLUMNS="200", NO_COLOR="1")
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

"""A throwaway PostgreSQL cluster for tests that restart or stop the server.

`initdb` + `pg_ctl` in a temporary folder, on a free loopback port, run as the `postgres` user
when the tests run as root (PostgreSQL refuses root). Restarting it disturbs nothing else: the
machine's own server, and every other test session on it, carry on.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.loopback import free_port

PG_BIN_ROOT = Path("/usr/lib/postgresql")
COMMAND_SECONDS = 60


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(PG_BIN_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class ThrowawayPostgres:
    """A PostgreSQL server of its own: `start`, `restart` (fast mode), `stop`, `url`."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="stepline-pg-"))
        self._data = self._root / "data"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=COMMAND_SECONDS)

    def _ctl(self, action: str, *args: str) -> None:
        log = str(self._root / "server.log")
        self._run("pg_ctl", action, "-D", str(self._data), "-l", log, "-w", "-t", "30", *args)

    def start(self) -> None:
        """Create the cluster and start it, listening on 127.0.0.1 only."""
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.resume()

    def halt(self) -> None:
        """Stop the server in fast mode (every session terminated), keeping its data."""
        self._ctl("stop", "-m", "fast")

    def resume(self) -> None:
        """Start the (created) server again; accepting connections when this returns."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self._root} -c fsync=off"
        )
        self._ctl("start", "-o", options)

    def restart(self) -> None:
        """Restart in fast mode: every session is terminated; back when this returns."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop the server (by its data folder's postmaster PID) and delete the cluster."""
        try:
            if (self._data / "postmaster.pid").exists():
                self._ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

"""`stepline dev --workers N`: N-1 `stepline worker` processes beside dev's own worker.

They share dev's database (on SQLite, the file: its writers take turns on a lock file, so
several processes use both cores) and get dev's settings through their environment, so a
signing key never shows in a process list. Each prints its own run lines. One that exits is
started again after a pause; on shutdown each gets SIGTERM, then SIGKILL once the grace
period is over, by its PID. On Linux they also die with dev if it is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from stepline._child_process import child_preexec

logger = logging.getLogger("stepline.dev")
RESTART_SECONDS = 1.0


class WorkerProcesses:
    """`count` `stepline worker APPS` children with `env` added to this process's environment.

    Args:
        count: Processes to keep running.
        apps: The APPS arguments, as dev was given them.
        env: Settings for the children (STEPLINE_DB, STEPLINE_WORKER_SLOTS, ...).
        cpus: The CPU each child runs on (`stepline worker --cpu`), or None.
    """

    def __init__(
        self,
        count: int,
        apps: Sequence[str],
        env: Mapping[str, str],
        *,
        cpus: Sequence[int] | None = None,
    ) -> None:
        self._count = count
        self._argv = [sys.executable, "-m", "stepline.cli.main", "worker", *apps]
        self._env = {**os.environ, **env}
        self._cpus = cpus  # each child's CPU (STEPLINE_WORKER_CPU), if they are pinned
        self._children: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the children, and a thread that restarts any that exits."""
        with self._lock:
            self._children = [self._spawn(i) for i in range(self._count)]
        self._watcher = threading.Thread(target=self._watch, name="stepline-dev-workers")
        self._watcher.start()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = self._env
        if self._cpus is not None:
            env = {**env, "STEPLINE_WORKER_CPU": str(self._cpus[index])}
        return subprocess.Popen(  # noqa: S603  (our own CLI, with dev's arguments)
            self._argv, env=env, stdin=subprocess.DEVNULL, preexec_fn=child_preexec()
        )

    def _watch(self) -> None:
        while not self._stopping.wait(RESTART_SECONDS):
            with self._lock:
                for i, child in enumerate(self._children):
                    code = child.poll()
                    if code is not None and not self._stopping.is_set():
                        logger.warning(
                            "worker process %d exited with %d: restarting", child.pid, code
                        )
                        self._children[i] = self._spawn(i)

    def stop(self, grace_seconds: float) -> None:
        """SIGTERM every child, then SIGKILL those still running after `grace_seconds`."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=grace_seconds + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

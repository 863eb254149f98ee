"""Real `stepline server` and `stepline worker` processes on the test's database, stopped by PID.

Side effects are counted outside the engine: `app.py` appends one line per step execution.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import text

from stepline.store.base import Store
from stepline.store.postgres import PostgresStore
from stepline.store.sql import SqlStore
from stepline.store.sqlite import SqliteStore
from tests.loopback import free_port, wait_healthy

T = TypeVar("T")
COMMAND = [sys.executable, "-m", "stepline.cli.main"]
APP_FILE = Path(__file__).with_name("app.py")
START_SECONDS = 20.0
STOP_SECONDS = 10.0
EVENT = "scale/steps"


def database_of(store: Store) -> str:
    """How another process opens the test's database."""
    if isinstance(store, SqliteStore):
        return str(store.path)
    assert isinstance(store, PostgresStore)
    return store.url


def is_postgres(store: Store) -> bool:
    """True for the PostgreSQL store."""
    return isinstance(store, PostgresStore)


def eventually(
    probe: Callable[[], T | None], *, what: str, timeout: float, pause: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(pause)


@dataclass(frozen=True)
class Effect:
    """One execution of a step, as the step itself recorded it."""

    run: str
    step: str
    pid: int
    at: float


def read_effects(path: Path) -> list[Effect]:
    """Every step execution recorded so far, in the order they began."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        run, step, pid, at = line.split()
        found.append(Effect(run, step, int(pid), float(at)))
    return found


def executions(effects: list[Effect]) -> Counter[tuple[str, str]]:
    """How many times each (run, step) was executed."""
    return Counter((e.run, e.step) for e in effects)


def status_counts(store: Store) -> dict[str, int]:
    """Runs per status, straight from the database."""
    assert isinstance(store, SqlStore)
    with store._read() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM runs GROUP BY status"))
        return {str(status): int(n) for status, n in rows}


def run_event_ids(store: Store) -> dict[str, str]:
    """Each run's triggering event id → run id."""
    assert isinstance(store, SqlStore)
    with store._read() as conn:
        rows = conn.execute(text("SELECT event_id, id FROM runs WHERE event_id IS NOT NULL"))
        return {str(event_id): str(run_id) for event_id, run_id in rows}


def child_env(effects: Path) -> dict[str, str]:
    """The environment of a child: no STEPLINE_* settings leak in; side effects to `effects`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    env.update(SCALE_EFFECTS=str(effects), COLUMNS="200", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def stop(process: subprocess.Popen[bytes], seconds: float = STOP_SECONDS) -> int:
    """SIGTERM the process by its PID, then SIGKILL it if it has not exited in `seconds`."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(seconds)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
    return process.wait(seconds)


class Cluster:
    """The processes of one test: a server and workers on one database.

    Every process it starts is stopped by its own PID in `close()` (the fixture's finalizer).
    """

    def __init__(self, db: str, tmp: Path) -> None:
        self.db = db
        self.tmp = tmp
        self.effects = tmp / "effects.txt"
        self.url = ""
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: dict[int, Path] = {}

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `stepline ARGS`, its output in a log file named after `name`."""
        with self._lock:
            log = self.tmp / f"{name}-{len(self._processes)}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*COMMAND, *args],
                    env=child_env(self.effects),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.tmp,
                )
            self._processes.append(process)
            self._logs[process.pid] = log
        return process

    def worker(
        self, *, slots: int = 8, lease_seconds: float = 10.0, grace_seconds: float = 30.0
    ) -> subprocess.Popen[bytes]:
        """Start `stepline worker` for the scale app."""
        return self.spawn(
            "worker",
            "worker",
            str(APP_FILE),
            "--db",
            self.db,
            "--slots",
            str(slots),
            "--lease-seconds",
            str(lease_seconds),
            "--grace-seconds",
            str(grace_seconds),
        )

    def server(self) -> str:
        """Start `stepline server --insecure` on a free loopback port; its URL once healthy."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = self.spawn(
            "server", "server", "--insecure", "--host", "127.0.0.1", "--port", str(port),
            "--db", self.db,
        )  # fmt: skip
        wait_healthy(url, process, self._logs[process.pid])
        self.url = url
        return url

    def log(self, process: subprocess.Popen[bytes]) -> str:
        """What a process printed."""
        return self._logs[process.pid].read_text(errors="replace")

    def logs(self) -> str:
        """What every process printed, for a failure message."""
        with self._lock:
            processes = list(self._processes)
        return "\n".join(f"--- pid {p.pid}\n{self.log(p)[-4000:]}" for p in processes)

    def close(self) -> None:
        """Stop every process by its PID (SIGTERM, then SIGKILL)."""
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(STOP_SECONDS)

    # -- HTTP ----------------------------------------------------------------------------------

    def send(self, data: dict[str, Any], *, event_id: str | None = None) -> str:
        """POST one event to /e/{key}; the id the server returns."""
        event: dict[str, Any] = {"name": EVENT, "data": data}
        if event_id is not None:
            event["id"] = event_id
        response = httpx.post(f"{self.url}/e/test-key", json=event, timeout=10)
        response.raise_for_status()
        [accepted] = response.json()["ids"]
        return str(accepted)

    def get(self, path: str) -> Any:
        """GET a /v1 path; its `data`."""
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def workers(self) -> list[dict[str, Any]]:
        """GET /v1/workers."""
        found: list[dict[str, Any]] = self.get("/v1/workers")
        return found


def registered(store: Store, pids: set[int]) -> bool:
    """True once workers with all of `pids` are registered."""
    return pids <= {w.pid for w in store.list_workers()}


def functions_registered(store: Store) -> bool:
    """True once the scale app's function is in the registry."""
    return any(fn.id == "steps" for fn in store.list_functions())


def start_workers(
    store: Store,
    cluster: Cluster,
    count: int,
    *,
    slots: int = 8,
    lease_seconds: float = 10.0,
    grace_seconds: float = 30.0,
) -> list[subprocess.Popen[bytes]]:
    """Start `count` workers and wait until they are registered with their functions."""
    workers = [
        cluster.worker(slots=slots, lease_seconds=lease_seconds, grace_seconds=grace_seconds)
        for _ in range(count)
    ]
    eventually(
        lambda: registered(store, {w.pid for w in workers}) and functions_registered(store),
        what=f"{count} workers to register",
        timeout=20,
    )
    return workers


class Sender(threading.Thread):
    """Posts `total` events (sender ids `ev-0`, `ev-1`, ...) in batches, retrying a batch that
    fails (server or database down) with the same ids until it is accepted.

    `accepted` maps each sender id to the id the server returned for it.
    """

    def __init__(
        self,
        cluster: Cluster,
        total: int,
        data: dict[str, Any],
        *,
        batch: int = 1,
        pause: float = 0.0,
        seconds: float = 120.0,
    ) -> None:
        super().__init__(name="sender", daemon=True)
        self.accepted: dict[str, str] = {}
        self.failures = 0
        self._cluster = cluster
        self._total = total
        self._data = data
        self._batch = batch
        self._pause = pause
        self._deadline = time.monotonic() + seconds
        self._halt = threading.Event()

    def run(self) -> None:
        for first in range(0, self._total, self._batch):
            ids = [f"ev-{i}" for i in range(first, min(first + self._batch, self._total))]
            events = [{"name": EVENT, "id": i, "data": self._data} for i in ids]
            while not self._halt.is_set() and time.monotonic() < self._deadline:
                try:
                    response = httpx.post(
                        f"{self._cluster.url}/e/test-key", json=events, timeout=10
                    )
                    response.raise_for_status()
                except httpx.HTTPError:
                    self.failures += 1
                    self._halt.wait(0.2)
                    continue
                self.accepted.update(zip(ids, response.json()["ids"], strict=True))
                break
            if self._halt.wait(self._pause):
                return

    def finish(self, seconds: float) -> None:
        """Wait (bounded) for every event to be accepted."""
        self.join(seconds)
        self._halt.set()
        assert len(self.accepted) == self._total, (
            f"only {len(self.accepted)} of {self._total} events accepted"
        )


def stepline_cli(cluster: Cluster, *args: str) -> str:
    """Run `stepline ARGS --url <the cluster's server>`; its standard output."""
    return subprocess.run(
        [*COMMAND, *args, "--url", cluster.url],
        env=child_env(cluster.effects),
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout

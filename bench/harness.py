"""Helpers shared by the benchmark parts: percentiles, waiting, ports, child processes."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
STEPLINE = Path(sys.executable).parent / "stepline"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="stepline-bench-") as name:
        yield Path(name)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, every_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout_s:g}s")
        time.sleep(every_s)


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set (VmHWM), in MiB; 0.0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


class Child:
    """A child process started by the benchmark and stopped by its PID.

    stdout is a pipe (for a readiness line); stderr goes to a file, read back on failure.
    `stop()` sends SIGTERM, waits, then SIGKILLs; it records the peak RSS (VmHWM) first.
    """

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.log = log
        self._err: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            cwd=BENCH.parent,
            env={**os.environ, **(env or {})},
        )
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss_mb = 0.0
        self.cpu_s = 0.0
        self.metrics_url = ""  # where it serves its metrics, if it does

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_line(self, startswith: str, timeout_s: float = 60.0) -> str:
        """Read stdout lines until one starts with `startswith` (killing the child on timeout)."""
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout_s, self._kill)
        timer.start()
        try:
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.cmd[:3]} exited before {startswith!r}: {tail}")
                if line.startswith(startswith):
                    return line.strip()
        finally:
            timer.cancel()

    def cpu_seconds(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return self.cpu_s
        return float(times.user + times.system)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.peak_rss_mb = peak_rss_mb(self.proc.pid)
            self.cpu_s = self.cpu_seconds()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


def stop_all(children: list[Child]) -> None:
    """Stop every child by its PID: SIGTERM to all first, then wait for each."""
    for child in children:
        if child.proc.poll() is None:
            child.peak_rss_mb = peak_rss_mb(child.pid)
            child.cpu_s = child.cpu_seconds()
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.stop()


def store_counts(metrics_url: str) -> tuple[int, int]:
    """(write transactions, statements) a process's store ran, from its `/metrics`."""
    text = httpx.get(metrics_url, timeout=10).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("stepline_store_transactions_total", "stepline_store_statements_total"):
            found[name] = int(float(value))
    return found["stepline_store_transactions_total"], found["stepline_store_statements_total"]


def per_step(before: tuple[int, int], after: tuple[int, int], steps: int) -> dict[str, float]:
    """Transactions and statements per step between two (transactions, statements) counts."""
    return {
        "store_transactions_per_step": round((after[0] - before[0]) / steps, 3),
        "store_statements_per_step": round((after[1] - before[1]) / steps, 3),
    }


def idle_between_runs() -> None:
    """W2 sends one event at a time, with 50-150 ms of quiet before each."""
    time.sleep(random.uniform(0.05, 0.15))


def wait_for_health(http: httpx.Client, exited: Callable[[], str | None]) -> None:
    """Wait until the server answers /health; `exited` names why its process died, if it did."""

    def healthy() -> bool:
        reason = exited()
        if reason is not None:
            raise RuntimeError(reason)
        try:
            return http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout_s=60, every_s=0.1, what="server start")


def http_first_step_latencies(
    http: httpx.Client,
    event_key: str,
    event_name: str,
    first_output: Callable[[str], Any],
    *,
    n: int,
    warmup: int,
    every_s: float,
) -> tuple[list[float], list[float]]:
    """W2 over HTTP: POST events one at a time and wait for each one's first step.

    `first_output(event_id)` returns the stored output of the run's first step, or None; the
    step wrote its start time as "t". Returns (latencies, POST round trips) in ms, warm-up dropped.
    """
    latencies: list[float] = []
    posts: list[float] = []
    for seq in range(warmup + n):
        idle_between_runs()
        t0 = time.time()
        response = http.post(f"/e/{event_key}", json={"name": event_name, "data": {"seq": seq}})
        t_sent = time.time()
        response.raise_for_status()
        event_id = response.json()["ids"][0]
        found: list[Any] = []

        def started(eid: str = event_id, out: list[Any] = found) -> bool:
            output = first_output(eid)
            if output is not None:
                out.append(output)
            return output is not None

        wait_until(started, timeout_s=10, every_s=every_s, what=f"W2 run {seq}")
        t1 = float(json.loads(found[0])["t"])
        if seq >= warmup:
            latencies.append(1000 * (t1 - t0))
            posts.append(1000 * (t_sent - t0))
    return latencies, posts

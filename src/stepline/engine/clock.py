"""Time for every engine loop, injectable so tests move it instead of sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads the time, and hears when it jumps."""

    def now(self) -> datetime:
        """The current aware UTC time."""
        ...

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever time moves other than by itself (tests)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current aware UTC time."""
        return datetime.now(UTC)

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Real time never jumps; nothing to register."""


class FakeClock:
    """A clock that stands still until `advance` or `set` moves it; wakes the engine's loops."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The fake current time."""
        with self._lock:
            return self._now

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Register a loop to wake when time moves."""
        self._callbacks.append(callback)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move time forward by `delta` (a timedelta or seconds) and wake the loops."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._now += step
            now = self._now
        for callback in self._callbacks:
            callback()
        return now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (aware) and wake the loops."""
        with self._lock:
            self._now = moment.astimezone(UTC)
        for callback in self._callbacks:
            callback()


class Wakeup:
    """A reusable signal a loop sleeps on: set by new work, freed slots or a clock jump."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def signal(self) -> None:
        """Wake the sleeping loop (or make its next wait return at once)."""
        self._event.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until signalled."""
        if self._event.wait(max(0.0, seconds)):
            self._event.clear()

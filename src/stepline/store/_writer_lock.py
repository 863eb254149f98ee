"""SQLite's writers taken in turn: one thread of this process, and one process, at a time.

SQLite lets one transaction write at a time; a second writer that finds the file locked waits
in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries. Several worker processes
on one file would spend most of their time in those sleeps. Here a writer first takes a
thread lock (this process's writers queue there), then an exclusive `flock` on a lock file
beside the database: a process that waits sleeps in the kernel and wakes the moment the
holder lets go. The kernel releases the lock of a process that dies.

Writers that do not take it (another program on the file) are still kept apart by SQLite's
own locking and busy timeout. On Windows only the thread lock is taken.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import TracebackType

if sys.platform != "win32":
    import fcntl


class WriterLock:
    """A context manager held around each write transaction on one SQLite file.

    Args:
        path: The lock file (created if missing; its contents are never used).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0  # the process that opened `_fd` (a forked child opens its own)

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if sys.platform != "win32":
                fcntl.flock(self._lock_file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        try:
            if sys.platform != "win32" and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _lock_file(self) -> int:
        # A forked child shares the parent's open file, and with it the parent's lock.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        """Close the lock file (taken again, it is reopened)."""
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

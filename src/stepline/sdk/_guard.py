"""The leader of a `step.exec` command's process group: runs the command, stops the group.

Usage: python -I -S _guard.py GRACE_SECONDS PROGRAM [ARGS...]

It runs the command as its child and exits as the command did (same code, or killed by the
same signal). On SIGTERM (the worker stopping the step, or its parent-death signal on Linux) or
once its parent (the worker) is gone, it sends SIGTERM to the whole group, waits up to
GRACE_SECONDS for the command, then SIGKILLs the group, itself included. So a worker that
dies, even by SIGKILL, leaves no command or child of one running. Standard library only: it
starts with `-I -S`, without Stepline on its path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from types import FrameType

PARENT_POLL_SECONDS = 0.5


def _start(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:  # the command; the SIGTERM handler is not inherited past exec
        try:
            os.execvp(argv[0], argv)  # noqa: S606  (running the user's command is the point)
        except OSError as exc:
            os.write(2, f"stepline: could not start {argv[0]!r}: {exc.strerror}\n".encode())
        os._exit(127)
    return pid


def _stop_group(command: int, grace: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's SIGTERM reaches this process too
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(command, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        time.sleep(0.02)
    os.killpg(0, signal.SIGKILL)


def _watch_parent(parent: int) -> None:
    """Where there is no parent-death signal: SIGTERM this process once the worker is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> None:
    """Run the command `argv[1:]`, stopping its group with a grace of `argv[0]` seconds."""
    grace = float(argv[0])
    parent = os.getppid()
    command = _start(argv[1:])

    def on_term(signum: int, frame: FrameType | None) -> None:
        _stop_group(command, grace)

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _, status = os.waitpid(command, 0)
    if os.WIFSIGNALED(status):  # die of the same signal, so the worker sees what happened
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's action cannot be set
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])

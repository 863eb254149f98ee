"""Processes Stepline starts: they die with it (Linux), and run on every CPU it may use.

A worker process may be pinned to one CPU (`pin_to_cpu`): its threads then hand the GIL to each
other on one core, which costs about half the CPU of handing it across cores. The commands it
starts (`step.exec`, dev's worker children) get the CPUs it had before, not that one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

from stepline import errors

_PR_SET_PDEATHSIG = 1
_unpinned: set[int] | None = None  # the CPUs this process had before `pin_to_cpu`


def pin_to_cpu(cpu: int) -> None:
    """Run this process (its threads) on CPU `cpu` only (Linux).

    Raises:
        ConfigurationError: Not Linux, or `cpu` is not one this process may use.
    """
    global _unpinned
    if not hasattr(os, "sched_setaffinity"):
        raise errors.ConfigurationError("pinning a worker to a CPU needs Linux (sched_setaffinity)")
    allowed = _unpinned if _unpinned is not None else os.sched_getaffinity(0)
    if cpu not in allowed:
        raise errors.ConfigurationError(
            f"CPU {cpu} is not one this process may use (it may use {sorted(allowed)})"
        )
    os.sched_setaffinity(0, {cpu})
    _unpinned = allowed


def child_preexec() -> Callable[[], None] | None:
    """A pre-exec hook for a child process (Linux; elsewhere None, no hook).

    The child gets SIGTERM when the spawning thread ends, and the CPUs this process had
    before it was pinned.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    cpus = _unpinned

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return arm

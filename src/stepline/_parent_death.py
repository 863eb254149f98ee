"""Children that die with the process that started them (Linux: a parent-death signal)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook giving the child SIGTERM when the spawning thread ends.

    Elsewhere None (no hook): children outlive a parent that is killed.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm

"""One pooled connection per thread at a time: a store method never takes a second one.

A method that holds a pooled connection while checking out another deadlocks under load: once
every connection is held by a caller waiting for a second, none is ever returned. Helpers
therefore receive the caller's connection instead of opening their own, and this guard turns
any nesting into an immediate error instead of a hang that needs a full pool to show.
"""

from __future__ import annotations

import threading


class NestedConnectionError(RuntimeError):
    """A store method asked for a pooled connection while its thread already held one."""


class ConnectionGuard:
    """Tracks, per thread, whether a store connection is held; `enter` refuses a second."""

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = threading.local()

    def enter(self) -> None:
        """Mark this thread as holding a connection; raise if it already does."""
        local = self._local
        if getattr(local, "held", False):
            raise NestedConnectionError(
                "a store method took a second pooled connection while holding one "
                "(a deadlock under load): pass the held connection down instead"
            )
        local.held = True

    def leave(self) -> None:
        """The thread's connection went back to its pool."""
        self._local.held = False

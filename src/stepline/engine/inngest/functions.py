"""The SDK apps' functions a worker can run, read from the registry and kept fresh.

Functions are synced by whichever process serves `/fn/register`, so a worker reads the
registry again at most every `refresh_seconds` (and at once when told it changed here).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from stepline.sdk.app import DEFAULT_RETRIES
from stepline.store.base import FunctionRecord, Store


@dataclass(frozen=True, kw_only=True, slots=True)
class SdkTarget:
    """An SDK function: where to call it, and its attempts per request (retries + 1)."""

    id: str
    url: str
    max_attempts: int
    config: str


def sdk_target(fn: FunctionRecord) -> SdkTarget | None:
    """The function as the HTTP driver calls it; None for a Python function."""
    config = json.loads(fn.config)
    url = config.get("url")
    if not isinstance(url, str):
        return None
    retries = config.get("retries", DEFAULT_RETRIES)
    return SdkTarget(id=fn.id, url=url, max_attempts=int(retries) + 1, config=fn.config)


class SdkFunctions:
    """The registry's SDK functions by id, read again when older than `refresh_seconds`."""

    def __init__(self, store: Store, refresh_seconds: float = 1.0) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._targets: Mapping[str, SdkTarget] = {}

    def current(self) -> Mapping[str, SdkTarget]:
        """The SDK functions, read from the store if the copy is stale (may raise StoreError)."""
        with self._lock:
            if time.monotonic() - self._read_at < self._refresh_seconds:
                return self._targets
        targets = {}
        for fn in self._store.list_functions():
            target = sdk_target(fn)
            if target is not None:
                targets[fn.id] = target
        with self._lock:
            self._targets, self._read_at = targets, time.monotonic()
        return targets

    def known(self) -> Mapping[str, SdkTarget]:
        """The last copy read, without touching the store."""
        with self._lock:
            return self._targets

    def invalidate(self) -> None:
        """Read the registry again at the next `current()` (an app synced in this process)."""
        with self._lock:
            self._read_at = float("-inf")

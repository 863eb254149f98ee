"""Keep SDK apps synced by URL: ask each to sync now, and again every few seconds.

As the Inngest dev server does (`-u URL`), so that an app started after the server, restarted,
or changed while it runs is registered without anyone asking. An identical re-sync changes
nothing. Only changes are logged: the first success, a new error, a recovery.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import httpx

from stepline.engine.inngest.sync import AppSyncer, SyncFailed

logger = logging.getLogger("stepline.apps")
POLL_SECONDS = 5.0


class AppPoller:
    """Syncs `urls` every `interval` seconds on a background thread, once `server_url` is up."""

    def __init__(
        self,
        syncer: AppSyncer,
        urls: Sequence[str],
        *,
        server_url: str,
        interval: float = POLL_SECONDS,
    ) -> None:
        self._syncer = syncer
        self._urls = list(urls)
        self._server_url = server_url
        self._interval = interval
        self._stopping = threading.Event()
        self._last: dict[str, str] = {}  # url → the last outcome logged
        self._thread = threading.Thread(target=self._loop, name="stepline-apps", daemon=True)

    def start(self) -> None:
        """Start polling (returns at once)."""
        if self._urls:
            self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        self._await_server()
        while not self._stopping.is_set():
            for url in self._urls:
                self._sync(url)
            self._stopping.wait(self._interval)

    def _await_server(self) -> None:
        """The app registers through our server: wait until it answers."""
        while not self._stopping.is_set():
            try:
                httpx.get(f"{self._server_url}/health", timeout=2)
                return
            except httpx.HTTPError:
                self._stopping.wait(0.2)

    def _sync(self, url: str) -> None:
        try:
            synced = asyncio.run(self._syncer.sync_url(url))
        except SyncFailed as exc:
            self._note(url, f"error: {exc}", logging.WARNING, f"could not sync {url}: {exc}")
            return
        described = "synced" if synced is None else f"synced app {synced.app_id!r}"
        self._note(url, "ok", logging.INFO, f"{described} from {url}")

    def _note(self, url: str, outcome: str, level: int, message: str) -> None:
        if self._last.get(url) != outcome:
            logger.log(level, "%s", message)
        self._last[url] = outcome

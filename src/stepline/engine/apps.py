"""The app registry as clients see it: each app with its functions; an SDK app synced by URL.

The REST API, the dashboard and `Client.local` list and sync apps through these, so all three
find the same app after a sync and say the same when it cannot be found.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from stepline import errors
from stepline.engine import views
from stepline.engine.inngest.sync import AppSyncer, Synced, SyncFailed
from stepline.store.base import AppRecord, Store


def functions_by_app(store: Store) -> dict[str, list[str]]:
    """The ids of each app's functions, sorted, by app id."""
    grouped: dict[str, list[str]] = {}
    for fn in sorted(store.list_functions(), key=lambda f: f.id):
        grouped.setdefault(fn.app_id, []).append(fn.id)
    return grouped


def app_views(store: Store) -> list[dict[str, Any]]:
    """Every app, by id, as the API shows it (with its function ids)."""
    functions = functions_by_app(store)
    return [views.app_view(app, functions.get(app.id, [])) for app in store.list_apps()]


def app_view(store: Store, app: AppRecord) -> dict[str, Any]:
    """One app as the API shows it."""
    return views.app_view(app, functions_by_app(store).get(app.id, []))


def serve_url_problem(url: str) -> str | None:
    """What is wrong with `url` as an SDK app's serve URL (http or https, a host); None if fine."""
    example = "e.g. http://localhost:3000/api/inngest"
    if any(c.isspace() for c in url):
        return f"must be a URL without spaces, {example}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc}), {example}"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return f"must be an http(s) URL with a host, {example}"
    return None


def _address(url: str) -> tuple[str, str, str]:
    """What identifies a serve URL: scheme, host and port, path without a trailing slash."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def synced_app(store: Store, url: str, synced: Synced | None) -> AppRecord:
    """The app a sync of `url` registered: by id if it answered in-band, else by its URL.

    An app syncing out-of-band registers itself with the server it is configured for, under
    the URL it is served at; of several apps with that URL, the last synced is the one.

    Raises:
        SyncFailed: No app here has that id or URL (it registered somewhere else).
    """
    apps = store.list_apps()
    if synced is not None:
        found = [app for app in apps if app.id == synced.app_id]
    else:
        wanted = _address(url)
        found = [app for app in apps if app.url is not None and _address(app.url) == wanted]
    if not found:
        raise SyncFailed(
            f"{url} answered the sync, but no app registered here with that URL: is the app "
            "pointed at another server (INNGEST_BASE_URL, INNGEST_DEV) or served under "
            "another URL (INNGEST_SERVE_ORIGIN)?"
        )
    return max(found, key=lambda app: app.synced_at)


async def sync_by_url(syncer: AppSyncer, store: Store, url: str) -> AppRecord:
    """Ask the app served at `url` to sync; the app as now stored.

    Raises:
        InvalidInput: `url` is not an http(s) URL with a host (see `serve_url_problem`).
        SyncFailed: The app could not be reached, refused, or registered somewhere else.
    """
    problem = serve_url_problem(url)
    if problem is not None:
        raise errors.InvalidInput(problem, "url")
    synced = await syncer.sync_url(url)
    return await asyncio.to_thread(synced_app, store, url, synced)

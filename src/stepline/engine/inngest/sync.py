"""Sync an SDK app: read its registration and replace its function set (protocol §5).

Two ways in. Out-of-band: the app POSTs its registration to `/fn/register` (after a PUT to its
serve URL asked it to, or on its own). In-band: Stepline PUTs the serve URL with a signed
request and the app answers with its registration (only when Stepline has a signing key: the
Python SDK refuses unsigned in-band syncs). `sync_url` starts either by URL; `register` takes
a registration body, wherever it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from stepline import errors
from stepline._checks import is_text
from stepline.engine.clock import Clock
from stepline.engine.inngest.config import sdk_functions
from stepline.engine.inngest.signing import SigningKeys, canonical
from stepline.engine.operations import Operations
from stepline.engine.routing import Routing
from stepline.store.base import AppRecord, AppSync, FunctionRecord, Store

ServerKind = Literal["dev", "cloud"]
SYNC_TIMEOUT_SECONDS = 30.0


class SyncFailed(Exception):
    """A sync by URL did not register the app; the message says why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Synced:
    """A sync that succeeded: the app, whether anything changed, and the functions removed."""

    app_id: str
    modified: bool
    removed: tuple[str, ...] = ()
    functions: int = 0


def _field(body: Mapping[str, Any], *names: str) -> Any:
    """A body field by any of its spellings, case-insensitively (as Go decodes JSON)."""
    wanted = {name.lower() for name in names}
    return next((value for key, value in body.items() if key.lower() in wanted), None)


def _optional_text(body: Mapping[str, Any], *names: str, limit: int = 255) -> str | None:
    value = _field(body, *names)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise errors.InvalidInput(f"must be a string of at most {limit} characters", names[0])
    return value


def _sdk_name(body: Mapping[str, Any]) -> str | None:
    """`sdk` ("py:v0.5.19"), or one built from an in-band body's language and version."""
    sdk = _optional_text(body, "sdk", limit=64)
    if sdk:
        return sdk
    language = _optional_text(body, "sdk_language", limit=16)
    version = _optional_text(body, "sdk_version", limit=40)
    return f"{language}:v{version}" if language and version else None


def read_registration(body: Any, now: Any) -> tuple[AppRecord, list[FunctionRecord]]:
    """The app and its functions from a registration body (out-of-band or in-band).

    Raises:
        InvalidInput: naming the field, e.g. `appName` or `functions[0] (id 'x').triggers`.
    """
    if not isinstance(body, dict):
        raise errors.InvalidInput("expected a JSON object", "body")
    app_id = _field(body, "appName", "app_id")
    if not is_text(app_id) or len(app_id) > 255:
        raise errors.InvalidInput("is required: the app's id, a non-empty string", "appName")
    url = _field(body, "url")
    if not is_text(url) or not url.startswith(("http://", "https://")):
        raise errors.InvalidInput("must be the app's http(s) serve URL", "url")
    functions = sdk_functions(_field(body, "functions") or [])
    checksum = hashlib.sha256(
        canonical({"url": url, "functions": _field(body, "functions") or []})
    ).hexdigest()
    app = AppRecord(
        id=app_id,
        kind="sdk",
        synced_at=now,
        url=url,
        sdk=_sdk_name(body),
        framework=_optional_text(body, "framework", limit=64),
        app_version=_optional_text(body, "appVersion", "app_version"),
        checksum=checksum,
    )
    records = [
        FunctionRecord(id=fn.id, app_id=app_id, name=fn.name, config=fn.config) for fn in functions
    ]
    return app, records


class AppSyncer:
    """Registers SDK apps in the store (see the module docstring).

    Args:
        on_change: Called after a sync changed the registry (workers here read it again).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        routing: Routing,
        *,
        keys: SigningKeys | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._routing = routing
        self._keys = keys
        self._on_change = on_change

    @property
    def kind(self) -> ServerKind:
        """The server kind the SDKs see: cloud with a signing key (calls are signed), else dev."""
        return "cloud" if self._keys is not None else "dev"

    def register(self, body: Any) -> Synced:
        """Register an app from its registration body, all or nothing.

        Raises:
            InvalidInput: The body or a function config is invalid (nothing is stored).
            Conflict: The app or a function id belongs to another app.
        """
        now = self._clock.now()
        app, functions = read_registration(body, now)
        result: AppSync = self._store.sync_app(app, functions, now, self._routing)
        if result.modified and self._on_change is not None:
            self._on_change()
        return Synced(
            app_id=app.id,
            modified=result.modified,
            removed=result.removed,
            functions=len(functions),
        )

    async def sync_url(self, url: str) -> Synced | None:
        """Ask the app served at `url` to sync; the result if it answered in-band.

        Out-of-band, the app registers itself through `/fn/register` before answering (with
        whichever server it is configured for); this returns None then (read the apps to see
        the result).

        Raises:
            SyncFailed: The app could not be reached, or answered with an error.
        """
        if not is_text(url) or not url.startswith(("http://", "https://")):
            raise SyncFailed(f"{url!r} is not an http(s) URL")
        body = canonical({"url": url})
        headers = {"content-type": "application/json", "x-inngest-server-kind": self.kind}
        if self._keys is not None:
            headers["x-inngest-sync-kind"] = "in_band"
            headers["x-inngest-signature"] = self._keys.sign(body, self._clock.now())
        try:
            async with httpx.AsyncClient(timeout=SYNC_TIMEOUT_SECONDS) as client:
                response = await client.put(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SyncFailed(f"could not reach {url}: {str(exc) or type(exc).__name__}") from None
        return self._answer(url, response)

    def _answer(self, url: str, response: httpx.Response) -> Synced | None:
        """Read the app's answer to the sync PUT."""
        try:
            answer = response.json()
        except ValueError:
            answer = None
        in_band = response.headers.get("x-inngest-sync-kind") == "in_band"
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise SyncFailed(
                f"{url} answered the sync with HTTP {response.status_code}: "
                f"{_reason(answer, response.text)}"
            )
        if not in_band:
            status = answer.get("status", 200)
            if (isinstance(status, int) and status >= 400) or answer.get("ok") is False:
                raise SyncFailed(f"{url} could not register: {_reason(answer, response.text)}")
            return None
        if self._keys is not None:
            signature = response.headers.get("x-inngest-signature")
            if not self._keys.verify(signature, response.content, self._clock.now()):
                raise SyncFailed(f"{url} answered in-band without a valid signature")
        try:
            return self.register(answer)
        except errors.InvalidInput as exc:
            raise SyncFailed(f"{url}: {exc}") from None
        except errors.Conflict as exc:
            raise SyncFailed(f"{url}: {exc}") from None


def _reason(answer: Any, text: str) -> str:
    if isinstance(answer, dict):
        for key in ("error", "message"):
            if isinstance(answer.get(key), str) and answer[key]:
                return str(answer[key])
        return json.dumps(answer)[:500]
    return text.strip()[:500] or "(no body)"


def syncer_for(operations: Operations, keys: SigningKeys | None) -> AppSyncer:
    """The syncer of a server over `operations`: its syncs notify the registry's listeners."""

    def changed() -> None:
        for listener in operations.registry_listeners:
            listener()

    return AppSyncer(
        operations.store, operations.clock, operations.routing, keys=keys, on_change=changed
    )

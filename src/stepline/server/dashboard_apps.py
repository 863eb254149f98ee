"""The Apps page's view models: each app with its SDK, URL, last sync, functions and forms.

Pure functions over store records, as in `dashboard_models`; templates print what these say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from stepline.server.dashboard_models import Moment, function_href, moment
from stepline.store.base import AppRecord

# The language before the ":" of an SDK app's `sdk` ("py:v0.5.19", "js:v4.18.1").
SDK_NAMES = {"py": "Python", "js": "TS", "ts": "TS", "go": "Go", "java": "Java", "kt": "Kotlin"}
SYNC_ACTION = "/apps"


def sdk_name(sdk: str | None) -> str:
    """An SDK app's SDK in words: "py:v0.5.19" → "Python SDK"; unknown → "SDK"."""
    language = (sdk or "").partition(":")[0]
    if not language:
        return "SDK"
    return f"{SDK_NAMES.get(language.lower(), language)} SDK"


def sdk_text(sdk: str | None) -> str:
    """An SDK with its version: "py:v0.5.19" → "Python SDK v0.5.19"."""
    version = (sdk or "").partition(":")[2]
    return f"{sdk_name(sdk)} {version}" if version else sdk_name(sdk)


def synced_href(app_id: str) -> str:
    """The Apps page saying that `app_id` was just synced (where a sync form redirects)."""
    return f"/apps?{urlencode({'synced': app_id})}#app-{quote(app_id, safe='')}"


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionLink:
    """A function of an app, linked to its card on the Functions page."""

    id: str
    href: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AppCard:
    """An app: kind, SDK, framework, version, URL, last sync, functions; SDK apps re-sync."""

    id: str
    anchor: str
    sdk: bool
    kind: str
    sdk_text: str | None
    framework: str | None
    app_version: str | None
    url: str | None
    synced: Moment
    synced_label: str
    functions: list[FunctionLink]


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncForm:
    """The "Sync an app" form: where it posts, the URL typed, and why a sync failed."""

    action: str
    value: str
    error: str | None


def app_card(app: AppRecord, functions: Sequence[str]) -> AppCard:
    """An app's card; `functions` are its function ids."""
    sdk = app.kind == "sdk"
    return AppCard(
        id=app.id,
        anchor=f"app-{app.id}",
        sdk=sdk,
        kind=sdk_name(app.sdk) if sdk else "Python",
        sdk_text=sdk_text(app.sdk) if sdk else None,
        framework=app.framework,
        app_version=app.app_version,
        url=app.url,
        synced=moment(app.synced_at),
        synced_label="Last sync" if sdk else "Registered",
        functions=[FunctionLink(id=fn, href=function_href(fn)) for fn in functions],
    )


def app_cards(apps: Sequence[AppRecord], functions: Mapping[str, Sequence[str]]) -> list[AppCard]:
    """A card per app, in the order given; `functions` holds the function ids by app id."""
    return [app_card(app, functions.get(app.id, [])) for app in apps]


def synced_notice(app_id: str | None, cards: Sequence[AppCard]) -> str | None:
    """What the page says after a sync redirected to it: "Synced app shop: 2 functions."."""
    card = next((c for c in cards if c.id == app_id), None)
    if card is None:
        return None
    count = len(card.functions)
    return f"Synced app {card.id}: {count} function{'' if count == 1 else 's'}."

"""The Apps page without a browser: apps listed with their SDK, URL, last sync and functions,
a sync by URL answered with a redirect and a notice, failures in words; SDK functions marked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from stepline.engine.engine import Engine
from stepline.server.dashboard_apps import sdk_name, sdk_text
from tests.loopback import Servers, free_port
from tests.server.conftest import Served
from tests.server.sdk_app import SHOP_FUNCTIONS, python_shop, serve_shop

pytestmark = pytest.mark.timeout(30)
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    yield running
    running.stop()


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(python_shop()))


def _card(page: str, anchor: str) -> str:
    """The HTML of the card with this id."""
    start = page.index(f'id="{anchor}"')
    end = page.find('<section class="card', start)
    return page[start : end if end != -1 else None]


def test_the_apps_page_lists_python_apps_and_says_how_to_add_an_sdk_app(served: Served) -> None:
    page = served.http.get("/apps")

    assert page.status_code == 200
    assert '<a href="/apps" aria-current="page">Apps</a>' in page.text
    card = _card(page.text, "app-py-shop")
    assert '<span class="tag">Python</span>' in card
    assert "Registered" in card and "Re-sync" not in card and "URL" not in card
    assert '<a href="/functions#function-py-echo"><code>py-echo</code></a>' in card
    assert 'name="url" type="url"' in page.text  # the "Sync an app" form


def test_syncing_an_app_redirects_to_its_card_saying_so(served: Served, servers: Servers) -> None:
    url = serve_shop(servers, served.url)

    posted = served.http.post("/apps", content=f"url={url}", headers=FORM)

    assert posted.status_code == 303
    assert posted.headers["location"] == "/apps?synced=shop#app-shop"
    page = served.http.get(posted.headers["location"])
    assert '<p class="flash" role="status">Synced app shop: 2 functions.</p>' in page.text
    card = _card(page.text, "app-shop")
    assert '<span class="tag">Python SDK</span>' in card
    assert re.search(r'<dd class="sdk">Python SDK v\d+\.\d+\.\d+</dd>', card), card
    assert f'<dd class="app-url"><code>{url}</code></dd>' in card
    assert "<dt>Last sync</dt>" in card and "<time datetime=" in card
    assert "<dt>Framework</dt><dd>fast_api</dd>" in card
    for fn in SHOP_FUNCTIONS:
        assert f'<a href="/functions#function-{fn}"><code>{fn}</code></a>' in card
    assert f'<input type="hidden" name="url" value="{url}">' in card
    assert "Re-sync" in card
    resynced = served.http.post("/apps", content=f"url={url}", headers=FORM)
    assert resynced.headers["location"] == "/apps?synced=shop#app-shop"


def test_the_functions_page_names_each_functions_app_and_marks_sdk_ones(
    served: Served, servers: Servers
) -> None:
    url = serve_shop(servers, served.url)
    assert served.http.post("/v1/apps", json={"url": url}).status_code == 200

    page = served.http.get("/functions").text

    greet = _card(page, "function-shop-greet")
    assert '<a href="/apps#app-shop">shop</a> <span class="tag sdk-tag">Python SDK</span>' in greet
    echo = _card(page, "function-py-echo")
    assert '<a href="/apps#app-py-shop">py-shop</a></dd>' in echo
    assert "sdk-tag" not in echo


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("localhost:3000/api/inngest", 400, "url: must be an http(s) URL with a host"),
        ("", 400, "url: must be an http(s) URL with a host"),
        ("http://127.0.0.1:{port}/api/inngest", 502, "could not reach http://127.0.0.1:"),
    ],
)
def test_a_failed_sync_shows_why_and_keeps_the_url(
    served: Served, url: str, status: int, words: str
) -> None:
    url = url.format(port=free_port())

    page = served.http.post("/apps", content=f"url={url}", headers=FORM)

    assert page.status_code == status
    assert '<p class="form-error" id="app-url-error" role="alert">' in page.text
    assert words in page.text
    assert f'value="{url}" required' in page.text
    assert 'aria-invalid="true"' in page.text
    assert "flash" not in page.text


@pytest.mark.parametrize(
    ("sdk", "name", "text"),
    [
        ("py:v0.5.19", "Python SDK", "Python SDK v0.5.19"),
        ("js:v4.18.1", "TS SDK", "TS SDK v4.18.1"),
        ("go:v0.7.4", "Go SDK", "Go SDK v0.7.4"),
        ("rb:v1.0", "rb SDK", "rb SDK v1.0"),
        ("py", "Python SDK", "Python SDK"),
        (None, "SDK", "SDK"),
    ],
)
def test_an_sdk_is_named_in_words(sdk: str | None, name: str, text: str) -> None:
    assert (sdk_name(sdk), sdk_text(sdk)) == (name, text)

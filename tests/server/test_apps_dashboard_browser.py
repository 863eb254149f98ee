"""The Apps page in Chromium: sync an inngest-py app by URL, see it with its SDK and functions,
re-sync it, follow a function to its card, and read a failed sync's reason in the form.
Screenshots at 1280 px and 360 px go to test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from stepline.engine.engine import Engine
from tests.loopback import Servers, free_port
from tests.server.conftest import Served, shoot
from tests.server.sdk_app import SHOP_FUNCTIONS, python_shop, serve_shop

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    yield running
    running.stop()


@pytest.fixture
def served(make_engine: Callable[..., Engine], serve: Callable[..., Served]) -> Served:
    return serve(make_engine(python_shop()))


def test_sync_an_app_by_url_then_re_sync_it_and_follow_a_function(
    served: Served, servers: Servers, page: Page
) -> None:
    url = serve_shop(servers, served.url)
    page.goto(served.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    expect(page.get_by_role("heading", name="Apps", level=1)).to_be_visible()
    expect(page.locator("#app-py-shop")).to_contain_text("Registered")

    page.get_by_label("App URL").fill(url)
    page.get_by_role("button", name="Sync app").click()

    page.wait_for_url(re.compile(r"/apps\?synced=shop#app-shop$"))
    expect(page.get_by_role("status")).to_have_text("Synced app shop: 2 functions.")
    card = page.locator("#app-shop")
    expect(card.locator(".tag")).to_have_text("Python SDK")
    expect(card.locator(".sdk")).to_have_text(re.compile(r"^Python SDK v\d+\.\d+\.\d+$"))
    expect(card.locator(".app-url")).to_have_text(url)
    # "N s ago", the exact time in the viewer's zone on hover
    expect(card.locator(".synced time")).to_have_attribute("title", re.compile(r"GMT\+2"))
    expect(card.locator(".app-functions a")).to_have_text(SHOP_FUNCTIONS)
    shoot(page, "apps-synced")

    page.goto(served.url + "/apps")
    expect(page.get_by_role("status")).to_have_count(0)
    page.get_by_role("button", name="Re-sync shop").click()
    page.wait_for_url(re.compile(r"/apps\?synced=shop#app-shop$"))
    expect(page.get_by_role("status")).to_have_text("Synced app shop: 2 functions.")

    card.get_by_role("link", name="shop-greet").click()
    page.wait_for_url(re.compile(r"/functions#function-shop-greet$"))
    function = page.locator("#function-shop-greet")
    expect(function.locator(".sdk-tag")).to_have_text("Python SDK")
    expect(page.locator("#function-py-echo .sdk-tag")).to_have_count(0)
    shoot(page, "functions-with-sdk-app")
    function.get_by_role("link", name="shop", exact=True).click()
    page.wait_for_url(re.compile(r"/apps#app-shop$"))


def test_a_sync_that_fails_says_why_in_the_form(served: Served, page: Page) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/inngest"
    page.goto(served.url + "/apps")

    page.get_by_label("App URL").fill(url)
    page.get_by_role("button", name="Sync app").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"could not reach {url}")
    expect(page.get_by_label("App URL")).to_have_value(url)
    expect(page.get_by_label("App URL")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#app-shop")).to_have_count(0)
    shoot(page, "apps-sync-failed")
